//! Upstreams: one balanced HTTP/2 channel per route over every address its host name
//! resolves to (a Kubernetes headless Service gives one per pod). A prober resolves the
//! name again and health-checks each endpoint on an interval; an endpoint that fails
//! several probes in a row is ejected from the balancer and probed again after a
//! cool-down, and returns once it answers SERVING.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::config::{EdgeConfig, Route};

/// A route's balanced channel and how many endpoints are serving behind it.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The proto package routed here.
    pub package: String,
    channel: Channel,
    live: Arc<AtomicUsize>,
}

impl Upstream {
    /// The channel requests are sent on.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Endpoints currently in the balancer.
    pub fn live_endpoints(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct EndpointState {
    failures: u32,
    in_balancer: bool,
    ejected_until: Option<Instant>,
}

struct Prober {
    host: String,
    port: u16,
    changes: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    states: HashMap<SocketAddr, EndpointState>,
    live: Arc<AtomicUsize>,
    eject_after: u32,
    cooldown: Duration,
}

async fn probe(addr: SocketAddr) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let endpoint = endpoint
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    matches!(
        HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await,
        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32
    )
}

fn endpoint_for(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid URI")
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
}

impl Prober {
    async fn round(&mut self) {
        let resolved: Vec<SocketAddr> =
            match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "upstream name does not resolve");
                    Vec::new()
                }
            };
        // Addresses that disappeared from DNS leave the balancer.
        let gone: Vec<SocketAddr> = self
            .states
            .keys()
            .filter(|a| !resolved.contains(a))
            .copied()
            .collect();
        for addr in gone {
            if self.states.remove(&addr).is_some_and(|s| s.in_balancer) {
                let _ = self.changes.send(Change::Remove(addr)).await;
            }
        }
        for addr in resolved {
            let state = self.states.entry(addr).or_default();
            if state
                .ejected_until
                .is_some_and(|until| Instant::now() < until)
            {
                continue;
            }
            if probe(addr).await {
                state.failures = 0;
                state.ejected_until = None;
                if !state.in_balancer {
                    state.in_balancer = true;
                    tracing::info!(upstream = %addr, "endpoint serving; in the balancer");
                    let _ = self
                        .changes
                        .send(Change::Insert(addr, endpoint_for(addr)))
                        .await;
                }
            } else {
                state.failures += 1;
                if state.in_balancer && state.failures >= self.eject_after {
                    tracing::warn!(upstream = %addr, failures = state.failures, "endpoint ejected");
                    let _ = self.changes.send(Change::Remove(addr)).await;
                    state.in_balancer = false;
                    state.ejected_until = Some(Instant::now() + self.cooldown);
                }
            }
        }
        self.live.store(
            self.states.values().filter(|s| s.in_balancer).count(),
            Ordering::SeqCst,
        );
    }
}

/// Starts the balancer and prober for `route`; the first probe round has run when
/// this returns.
pub async fn spawn(
    route: &Route,
    cfg: &EdgeConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Upstream> {
    let uri: http::Uri = route
        .upstream
        .parse()
        .with_context(|| format!("upstream {:?}", route.upstream))?;
    let host = uri.host().context("upstream has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let live = Arc::new(AtomicUsize::new(0));
    let mut prober = Prober {
        host,
        port,
        changes,
        states: HashMap::new(),
        live: live.clone(),
        eject_after: cfg.eject_after_failures.max(1),
        cooldown: cfg.eject_cooldown,
    };
    prober.round().await;
    let interval = cfg.probe_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => prober.round().await,
                _ = shutdown.changed() => break,
            }
        }
    });
    Ok(Upstream {
        package: route.package.clone(),
        channel,
        live,
    })
}
