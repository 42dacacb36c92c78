//! Edge settings from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EDGE_GRPC_ADDR` / `EDGE_ADMIN_ADDR` | `0.0.0.0:50050` / `0.0.0.0:9000` | listen addresses |
//! | `EDGE_ROUTES` | every context on localhost (API.md ports) | `package=http://host:port,...`; a host name resolving to several addresses (a Kubernetes headless Service) is balanced over all of them |
//! | `EDGE_RATE_LIMIT_PER_SECOND` / `EDGE_RATE_LIMIT_BURST` | `100` / `200` | token bucket per tenant (anonymous calls: per source address) |
//! | `EDGE_DEFAULT_TIMEOUT_MS` / `EDGE_MAX_TIMEOUT_MS` | `30000` / `60000` | deadline when the caller sends none, and the cap on `grpc-timeout` |
//! | `EDGE_MAX_CONCURRENCY` | `1024` | calls in flight before new ones are shed with UNAVAILABLE |
//! | `EDGE_MAX_CONCURRENCY_PER_SOURCE` | `256` | calls in flight from one source address before its new ones are refused with RESOURCE_EXHAUSTED |
//! | `EDGE_BODY_READ_TIMEOUT_MS` | `10000` | time a client has to send a single-message request whole; it holds no call slot meanwhile |
//! | `EDGE_MAX_MESSAGE_BYTES` | `4194304` | largest request message accepted |
//! | `EDGE_PROBE_INTERVAL_MS` / `EDGE_EJECT_AFTER_FAILURES` / `EDGE_EJECT_COOLDOWN_MS` | `1000` / `3` / `5000` | endpoint health probing and ejection |
//! | `FUSION_JWT_ISSUER`, `FUSION_JWT_AUDIENCE` | as the services | token checks |
//! | `NATS_URL` | `nats://127.0.0.1:4222` | NATS JetStream: the edge follows identity's token revocations (`identity.access.revoked`) there and refuses revoked tokens (TOKEN_REVOKED); while it is unreachable revocations arrive late, calls are not failed for it |
//! | `FUSION_FORWARDING_SECRET` | none | shared with identity (at least 32 characters): the edge signs each call's client address with it (`x-fusion-client-addr`) so identity throttles logins by the real source; without it identity sees the edge's address |

use std::net::SocketAddr;
use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{parse_or, var};
use fusion_tenancy::{ForwardingKey, JwtConfig};

/// Requests for `package` go to `upstream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Proto package, e.g. `fusion.crm.v1`.
    pub package: String,
    /// `http://host:port`.
    pub upstream: String,
}

/// Everything the edge reads at start.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin listen address.
    pub admin_addr: SocketAddr,
    /// The route table.
    pub routes: Vec<Route>,
    /// Token checks.
    pub jwt: JwtConfig,
    /// Signs the client address the edge forwards (`x-fusion-client-addr`); none means
    /// the upstreams see only the edge's own address.
    pub forwarding_key: Option<ForwardingKey>,
    /// NATS JetStream, to follow token revocations; `None` (tests without events)
    /// follows none.
    pub nats_url: Option<String>,
    /// Sustained calls per second per tenant.
    pub rate_per_second: f64,
    /// Bucket size.
    pub rate_burst: f64,
    /// Deadline when the caller sets none.
    pub default_timeout: Duration,
    /// Longest deadline honoured.
    pub max_timeout: Duration,
    /// Calls in flight before shedding.
    pub max_concurrency: usize,
    /// Calls in flight from one source address.
    pub max_concurrency_per_source: usize,
    /// Time a client has to send a single-message request whole.
    pub body_read_timeout: Duration,
    /// Largest request message.
    pub max_message_bytes: usize,
    /// How often endpoints are probed.
    pub probe_interval: Duration,
    /// Failed probes in a row before an endpoint is ejected.
    pub eject_after_failures: u32,
    /// How long an ejected endpoint stays out before it is probed again.
    pub eject_cooldown: Duration,
    /// Drain window on shutdown.
    pub drain: Duration,
    /// Deadline for in-flight calls on shutdown.
    pub shutdown_deadline: Duration,
}

/// The route table of a local stack: every context on its API.md port.
pub fn local_routes(host: &str) -> Vec<Route> {
    [
        ("fusion.identity.v1", 50051),
        ("fusion.property.v1", 50052),
        ("fusion.crm.v1", 50053),
        ("fusion.finance.v1", 50054),
        ("fusion.aimarketing.v1", 50055),
    ]
    .into_iter()
    .map(|(package, port)| Route {
        package: package.into(),
        upstream: format!("http://{host}:{port}"),
    })
    .collect()
}

/// Parses `package=http://host:port,...`.
pub fn parse_routes(raw: &str) -> Result<Vec<Route>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|entry| {
            let (package, upstream) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not package=http://host:port"))?;
            if !upstream.starts_with("http://") {
                return Err(format!("upstream {upstream:?} must start with http://"));
            }
            Ok(Route {
                package: package.trim().into(),
                upstream: upstream.trim().into(),
            })
        })
        .collect()
}

impl EdgeConfig {
    /// Defaults for a local stack with upstreams at `routes`.
    pub fn new(routes: Vec<Route>) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50050)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], 9000)),
            routes,
            jwt: JwtConfig::default(),
            forwarding_key: None,
            nats_url: None,
            rate_per_second: 100.0,
            rate_burst: 200.0,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(60),
            max_concurrency: 1024,
            max_concurrency_per_source: 256,
            body_read_timeout: Duration::from_secs(10),
            max_message_bytes: 4 * 1024 * 1024,
            probe_interval: Duration::from_secs(1),
            eject_after_failures: 3,
            eject_cooldown: Duration::from_secs(5),
            drain: Duration::from_secs(5),
            shutdown_deadline: Duration::from_secs(20),
        }
    }

    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let routes = match var("EDGE_ROUTES") {
            Some(raw) => parse_routes(&raw).map_err(|reason| ConfigError::Invalid {
                name: "EDGE_ROUTES".into(),
                value: raw.clone(),
                reason,
            })?,
            None => local_routes("127.0.0.1"),
        };
        let d = Self::new(routes);
        let ms = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(parse_or(
                name,
                u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            )?))
        };
        const FORWARDING: &str = "FUSION_FORWARDING_SECRET";
        let forwarding_key = match var(FORWARDING) {
            Some(secret) => {
                Some(
                    ForwardingKey::new(&secret).ok_or_else(|| ConfigError::Invalid {
                        name: FORWARDING.into(),
                        value: "<redacted>".into(),
                        reason: format!(
                            "must be at least {} characters",
                            fusion_tenancy::forwarded::SECRET_MIN
                        ),
                    })?,
                )
            }
            None => None,
        };
        Ok(Self {
            grpc_addr: parse_or("EDGE_GRPC_ADDR", d.grpc_addr)?,
            forwarding_key,
            nats_url: Some(var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())),
            admin_addr: parse_or("EDGE_ADMIN_ADDR", d.admin_addr)?,
            jwt: JwtConfig {
                issuer: var("FUSION_JWT_ISSUER").unwrap_or(d.jwt.issuer.clone()),
                audience: var("FUSION_JWT_AUDIENCE").unwrap_or(d.jwt.audience.clone()),
                leeway: d.jwt.leeway,
            },
            rate_per_second: parse_or("EDGE_RATE_LIMIT_PER_SECOND", d.rate_per_second)?,
            rate_burst: parse_or("EDGE_RATE_LIMIT_BURST", d.rate_burst)?,
            default_timeout: ms("EDGE_DEFAULT_TIMEOUT_MS", d.default_timeout)?,
            max_timeout: ms("EDGE_MAX_TIMEOUT_MS", d.max_timeout)?,
            max_concurrency: parse_or("EDGE_MAX_CONCURRENCY", d.max_concurrency)?,
            max_concurrency_per_source: parse_or(
                "EDGE_MAX_CONCURRENCY_PER_SOURCE",
                d.max_concurrency_per_source,
            )?,
            body_read_timeout: ms("EDGE_BODY_READ_TIMEOUT_MS", d.body_read_timeout)?,
            max_message_bytes: parse_or("EDGE_MAX_MESSAGE_BYTES", d.max_message_bytes)?,
            probe_interval: ms("EDGE_PROBE_INTERVAL_MS", d.probe_interval)?,
            eject_after_failures: parse_or("EDGE_EJECT_AFTER_FAILURES", d.eject_after_failures)?,
            eject_cooldown: ms("EDGE_EJECT_COOLDOWN_MS", d.eject_cooldown)?,
            drain: Duration::from_secs(parse_or("EDGE_DRAIN_SECONDS", 5)?),
            shutdown_deadline: Duration::from_secs(parse_or("EDGE_SHUTDOWN_DEADLINE_SECONDS", 20)?),
            ..d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_malformed_ones_are_named() {
        let routes = parse_routes(
            "fusion.crm.v1=http://crm:50053, fusion.identity.v1=http://identity:50051",
        )
        .unwrap();
        assert_eq!(
            routes[0],
            Route {
                package: "fusion.crm.v1".into(),
                upstream: "http://crm:50053".into()
            }
        );
        assert_eq!(routes.len(), 2);
        assert!(parse_routes("fusion.crm.v1").is_err());
        assert!(parse_routes("fusion.crm.v1=crm:50053").is_err());
    }
}
