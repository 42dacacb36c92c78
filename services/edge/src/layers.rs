//! The edge's concerns, one layer each, in the order a call meets them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request};
use http_body_util::BodyExt as _;
use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;

use fusion_proto::errors;
use fusion_tenancy::forwarded::CLIENT_ADDR;
use fusion_tenancy::headers::{REQUEST_ID, TENANT_ID, USER_ID, bearer_token};
use fusion_tenancy::{ForwardingKey, JwtVerifier};

use crate::middleware::{FnLayer, Fut, Next, reply};

/// Who the edge verified the caller to be, for the layers after authentication.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The token's tenant.
    pub tenant_id: i64,
}

fn peer_ip(req: &Request<Body>) -> Option<IpAddr> {
    req.extensions()
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .map(|a| a.ip())
}

fn is_health(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// JSON access log line per call (health checks skipped).
pub fn access_log() -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    FnLayer::new(|req: Request<Body>, next: Next| -> Fut {
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let started = Instant::now();
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let response = next.run(req).await;
            if !is_health(&path) {
                let tenant = response.extensions().get::<Caller>().map(|c| c.tenant_id);
                let status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0");
                tracing::info!(
                    target: "fusion_edge::access",
                    method = %path,
                    status = %status,
                    tenant = ?tenant,
                    latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                    request_id = %request_id,
                    "call"
                );
            }
            response
        })
    })
}

/// Gives every call an `x-request-id` (the caller's, or a new one) and echoes it.
pub fn request_id() -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    FnLayer::new(|mut req: Request<Body>, next: Next| -> Fut {
        Box::pin(async move {
            let id = match req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()) {
                Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
                _ => uuid::Uuid::new_v4().to_string(),
            };
            let value = HeaderValue::from_str(&id).expect("a request id is a valid header value");
            req.headers_mut().insert(REQUEST_ID, value.clone());
            let mut response = next.run(req).await;
            response.headers_mut().insert(REQUEST_ID, value);
            response
        })
    })
}

/// Reads a single-message request (every Fusion method but the client-streaming ones) whole
/// before the call may take a slot: a client that sends its headers and then trickles
/// or withholds its body holds nothing shared, and is answered DEADLINE_EXCEEDED
/// (`REQUEST_BODY_TIMEOUT`) after `timeout`. Larger than `max_message_bytes`:
/// RESOURCE_EXHAUSTED (`MESSAGE_TOO_LARGE`), without reading the rest.
pub fn read_request(
    timeout: Duration,
    max_message_bytes: usize,
) -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    // Only Fusion's own single-message methods: anything else (client streams,
    // reflection's bidirectional stream) passes through as it comes.
    let single: Arc<HashSet<String>> = Arc::new(
        fusion_proto::descriptor::rpcs()
            .into_iter()
            .filter(|rpc| !rpc.client_streaming)
            .map(|rpc| rpc.path)
            .collect(),
    );
    FnLayer::new(move |req: Request<Body>, next: Next| -> Fut {
        let single = single.clone();
        Box::pin(async move {
            if !single.contains(req.uri().path()) {
                return next.run(req).await;
            }
            let (parts, body) = req.into_parts();
            // The gRPC frame header (5 bytes) comes on top of the message.
            let limited = http_body_util::Limited::new(body, max_message_bytes + 5);
            let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(_)) => {
                    return reply(errors::resource_exhausted_with(
                        errors::PLATFORM_DOMAIN,
                        "MESSAGE_TOO_LARGE",
                        Duration::ZERO,
                    ));
                }
                Err(_) => {
                    return reply(errors::deadline_exceeded(
                        errors::PLATFORM_DOMAIN,
                        "REQUEST_BODY_TIMEOUT",
                        format!(
                            "the request was not sent whole within {} ms",
                            timeout.as_millis()
                        ),
                    ));
                }
            };
            let body = Body::new(http_body_util::Full::new(bytes));
            next.run(Request::from_parts(parts, body)).await
        })
    })
}

/// Calls in flight per source address; a guard gives its slot back when dropped.
#[derive(Default)]
struct PerSource {
    in_flight: Mutex<HashMap<IpAddr, usize>>,
}

struct SourceSlot {
    sources: Arc<PerSource>,
    ip: IpAddr,
}

impl PerSource {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut in_flight = self.in_flight.lock().expect("per-source lock");
        let count = in_flight.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut in_flight = self.sources.in_flight.lock().expect("per-source lock");
        if let Some(count) = in_flight.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Only sources with calls in flight are kept: the map stays bounded.
                in_flight.remove(&self.ip);
            }
        }
    }
}

/// Sheds load with UNAVAILABLE once `max` calls are in flight, instead of queueing; a
/// source address with `max_per_source` calls in flight has its next ones refused
/// with RESOURCE_EXHAUSTED (`SOURCE_AT_CAPACITY`), so one source cannot take the
/// capacity every other caller shares. Health checks take no slot.
pub fn concurrency_limit(
    max: usize,
    max_per_source: usize,
) -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    let permits = Arc::new(Semaphore::new(max));
    let sources = Arc::new(PerSource::default());
    FnLayer::new(move |req: Request<Body>, next: Next| -> Fut {
        let permits = permits.clone();
        let sources = sources.clone();
        Box::pin(async move {
            if is_health(req.uri().path()) {
                return next.run(req).await;
            }
            let _source = match peer_ip(&req) {
                Some(ip) => match sources.take(ip, max_per_source) {
                    Some(slot) => Some(slot),
                    None => {
                        return reply(errors::resource_exhausted_with(
                            errors::PLATFORM_DOMAIN,
                            "SOURCE_AT_CAPACITY",
                            Duration::from_secs(1),
                        ));
                    }
                },
                None => None,
            };
            let Ok(_permit) = permits.try_acquire_owned() else {
                return reply(errors::unavailable(
                    errors::PLATFORM_DOMAIN,
                    "the gateway is at capacity; retry later",
                ));
            };
            next.run(req).await
        })
    })
}

/// Headers only the edge may set; a client's copies are dropped.
const INTERNAL_HEADERS: &[&str] = &[TENANT_ID, USER_ID, "x-forwarded-for", CLIENT_ADDR];

/// Drops client-sent internal headers, records the client's address (`x-forwarded-for`
/// for logs, and with `forwarding` the signed `x-fusion-client-addr` identity trusts),
/// verifies the bearer token of every non-public call and sets `x-tenant-id` /
/// `x-user-id` from it.
pub fn authenticate(
    verifier: Arc<JwtVerifier>,
    forwarding: Option<ForwardingKey>,
) -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    FnLayer::new(move |mut req: Request<Body>, next: Next| -> Fut {
        let verifier = verifier.clone();
        let forwarding = forwarding.clone();
        Box::pin(async move {
            let headers = req.headers_mut();
            for name in INTERNAL_HEADERS {
                headers.remove(*name);
            }
            headers.retain_internal();
            if let Some(ip) = peer_ip(&req) {
                let signed = forwarding.as_ref().map(|key| {
                    key.sign(req.uri().path(), ip, fusion_tenancy::forwarded::now_secs())
                });
                let headers = req.headers_mut();
                headers.insert(
                    "x-forwarded-for",
                    HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header"),
                );
                if let Some(signed) = signed {
                    headers.insert(CLIENT_ADDR, signed);
                }
            }
            // The same token-free methods the services' policies make public.
            if fusion_tenancy::is_public(req.uri().path()) {
                return next.run(req).await;
            }
            let verified = match bearer_token(req.headers()) {
                Ok(token) => verifier.verify(token).await,
                Err(status) => Err(status),
            };
            let claims = match verified {
                Ok(claims) => claims,
                Err(status) => return reply(status),
            };
            let headers = req.headers_mut();
            headers.insert(TENANT_ID, HeaderValue::from(claims.tid));
            headers.insert(
                USER_ID,
                HeaderValue::from_str(&claims.sub).unwrap_or(HeaderValue::from_static("0")),
            );
            let caller = Caller {
                tenant_id: claims.tid,
            };
            req.extensions_mut().insert(caller);
            let mut response = next.run(req).await;
            response.extensions_mut().insert(caller);
            response
        })
    })
}

/// Removes headers prefixed as internal (`x-internal-*`, `x-fusion-*`).
trait RetainInternal {
    fn retain_internal(&mut self);
}

impl RetainInternal for http::HeaderMap {
    fn retain_internal(&mut self) {
        let doomed: Vec<http::HeaderName> = self
            .keys()
            .filter(|k| {
                k.as_str().starts_with("x-internal-") || k.as_str().starts_with("x-fusion-")
            })
            .cloned()
            .collect();
        for name in doomed {
            self.remove(name);
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// A token bucket per tenant (per source address for anonymous calls), in this edge
/// replica's memory: the limit a tenant sees is per replica.
pub fn rate_limit(
    per_second: f64,
    burst: f64,
) -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    let buckets: Arc<Mutex<HashMap<String, Bucket>>> = Arc::new(Mutex::new(HashMap::new()));
    FnLayer::new(move |req: Request<Body>, next: Next| -> Fut {
        let buckets = buckets.clone();
        Box::pin(async move {
            if is_health(req.uri().path()) || req.uri().path().starts_with("/grpc.reflection.") {
                return next.run(req).await;
            }
            let key = match req.extensions().get::<Caller>() {
                Some(caller) => format!("tenant:{}", caller.tenant_id),
                None => format!(
                    "source:{}",
                    peer_ip(&req).map(|ip| ip.to_string()).unwrap_or_default()
                ),
            };
            let (allowed, remaining, reset) = {
                let mut buckets = buckets.lock().expect("rate limit lock");
                if buckets.len() > 100_000 {
                    // Forget idle buckets rather than grow without bound.
                    buckets.retain(|_, b| b.refilled.elapsed() < Duration::from_secs(60));
                }
                let bucket = buckets.entry(key).or_insert(Bucket {
                    tokens: burst,
                    refilled: Instant::now(),
                });
                let now = Instant::now();
                bucket.tokens = (bucket.tokens
                    + now.duration_since(bucket.refilled).as_secs_f64() * per_second)
                    .min(burst);
                bucket.refilled = now;
                let allowed = bucket.tokens >= 1.0;
                if allowed {
                    bucket.tokens -= 1.0;
                }
                let reset = if bucket.tokens >= 1.0 {
                    0.0
                } else {
                    (1.0 - bucket.tokens) / per_second
                };
                (allowed, bucket.tokens.floor(), reset)
            };
            let mut response = if allowed {
                next.run(req).await
            } else {
                reply(errors::resource_exhausted(Duration::from_secs_f64(
                    reset.max(0.001),
                )))
            };
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining as u64));
            headers.insert("x-ratelimit-reset", HeaderValue::from(reset.ceil() as u64));
            response
        })
    })
}

/// Applies a default deadline, caps the caller's, and answers DEADLINE_EXCEEDED when
/// the upstream has not answered in time.
pub fn deadline(
    default: Duration,
    max: Duration,
) -> FnLayer<impl Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static> {
    FnLayer::new(move |mut req: Request<Body>, next: Next| -> Fut {
        Box::pin(async move {
            let asked = req
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(fusion_proto::deadline::parse_grpc_timeout);
            let timeout = asked.unwrap_or(default).min(max);
            req.headers_mut().insert(
                fusion_proto::deadline::GRPC_TIMEOUT,
                HeaderValue::from_str(&fusion_proto::deadline::format_grpc_timeout(
                    timeout.max(Duration::from_millis(1)),
                ))
                .expect("digits and a unit"),
            );
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(response) => response,
                Err(_) => reply(tonic::Status::deadline_exceeded("deadline exceeded")),
            }
        })
    })
}
