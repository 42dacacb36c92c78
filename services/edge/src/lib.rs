//! The edge: the one door into Fusion CRM.
//!
//! A call meets, outermost first: tracing and metrics (the shared service kit), the
//! access log, the request id, reading a single-message request whole (bounded in time
//! and size, before it may take a call slot), the concurrency limits (overall and per
//! source address), authentication and header
//! hygiene, the per-tenant rate limit, the deadline, and finally the [`proxy`], which
//! forwards it by proto package to a balanced, health-checked upstream. The edge also
//! answers server reflection for every Fusion API (all of them are compiled into one
//! descriptor set) and `grpc.health.v1.Health` for itself and each upstream service.

pub mod config;
pub mod layers;
pub mod middleware;
pub mod proxy;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use fusion_proto::identity::v1::PACKAGE as IDENTITY_PACKAGE;
use fusion_service::{Readiness, Server, ServerOptions};
use fusion_tenancy::{JwksCache, JwtVerifier, Revocations};

pub use config::{EdgeConfig, Route};

/// A running edge.
#[derive(Debug)]
pub struct Edge {
    server: Server,
    stop_background: watch::Sender<bool>,
}

impl Edge {
    /// Resolves and probes the upstreams, then serves on the given listeners.
    pub async fn build(
        config: EdgeConfig,
        grpc: TcpListener,
        admin: TcpListener,
    ) -> anyhow::Result<Self> {
        let (stop_background, stopped) = watch::channel(false);
        let mut upstreams = Vec::new();
        for route in &config.routes {
            upstreams.push(upstream::spawn(route, &config, stopped.clone()).await?);
        }
        let identity = upstreams
            .iter()
            .find(|u| u.package == IDENTITY_PACKAGE)
            .with_context(|| {
                format!(
                    "the route table must include {IDENTITY_PACKAGE}: it publishes the signing keys"
                )
            })?
            .clone();
        let keys = JwksCache::new(
            Arc::new(fusion_tenancy::IdentityJwks::new(identity.channel())),
            Duration::from_secs(5),
        );
        let mut verifier = JwtVerifier::new(config.jwt.clone(), Arc::new(keys));
        // Revoked tokens stop at the door, not only at the services behind it. The feed
        // ends with the other background work.
        if let Some(nats_url) = &config.nats_url {
            let revocations = Arc::new(Revocations::new(config.jwt.leeway));
            fusion_service::follow_revocations(
                nats_url,
                "edge",
                revocations.clone(),
                stopped.clone(),
            )
            .await?;
            verifier = verifier.with_revocations(revocations);
        }
        let verifier = Arc::new(verifier);

        let proxy = proxy::Proxy::new(upstreams.clone(), config.max_message_bytes);
        let fallback = tower::ServiceBuilder::new()
            .map_request(|req: http::Request<axum::body::Body>| req.map(tonic::body::Body::new))
            .service(proxy);
        let routes = Routes::from(
            Routes::default()
                .into_axum_router()
                .fallback_service(fallback),
        );

        let stack = tower::ServiceBuilder::new()
            .layer(layers::access_log())
            .layer(layers::request_id())
            .layer(layers::read_request(
                config.body_read_timeout,
                config.max_message_bytes,
            ))
            .layer(layers::concurrency_limit(
                config.max_concurrency,
                config.max_concurrency_per_source,
            ))
            .layer(layers::authenticate(
                verifier,
                config.forwarding_key.clone(),
            ))
            .layer(layers::rate_limit(
                config.rate_per_second,
                config.rate_burst,
            ))
            .layer(layers::deadline(config.default_timeout, config.max_timeout))
            .into_inner();

        let fronted: Vec<(upstream::Upstream, Vec<String>)> = upstreams
            .iter()
            .map(|u| (u.clone(), fusion_proto::descriptor::services_of(&u.package)))
            .collect();
        let mut health_services = vec!["fusion.edge".to_owned()];
        health_services.extend(fronted.iter().flat_map(|(_, names)| names.iter().cloned()));
        let readiness: Readiness = {
            let identity = identity.clone();
            Arc::new(move || {
                let live = identity.live_endpoints() > 0;
                Box::pin(async move { live })
            })
        };
        let server = Server::start_with(
            grpc,
            admin,
            routes,
            stack,
            readiness,
            ServerOptions {
                health_services,
                file_descriptor_sets: vec![fusion_proto::FILE_DESCRIPTOR_SET],
                drain: config.drain,
                shutdown_deadline: config.shutdown_deadline,
                // The edge bounds its calls with its own per-route limits.
                max_in_flight: None,
            },
        )
        .await?;

        // Each upstream service is reported as its endpoints are: serving while any is.
        let reporter = server.health();
        let interval = config.probe_interval;
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.changed() => break,
                }
                for (upstream, names) in &fronted {
                    let status = if upstream.live_endpoints() > 0 {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for name in names {
                        reporter.set_service_status(name, status).await;
                    }
                }
            }
        });
        Ok(Self {
            server,
            stop_background,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until Ctrl-C or SIGTERM, then drains and stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self
            .server
            .run_until(fusion_service::shutdown_signal())
            .await;
        let _ = self.stop_background.send(true);
        result
    }

    /// Stops gracefully and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Health probes stop first so the shutdown's NOT_SERVING is the last word.
        let _ = self.stop_background.send(true);
        self.server.stop();
        self.server.wait().await
    }
}
