//! Forwarding a call to the upstream that owns its proto package.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tonic::body::Body;
use tower::retry::budget::{Budget as _, TpsBudget};
use tower::{Service, ServiceExt as _};

use fusion_proto::descriptor::{self, Rpc};
use fusion_proto::errors;

use crate::middleware::reply;
use crate::upstream::Upstream;

/// The innermost service of the edge: routes by package, retries what is safe.
#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<HashMap<String, Upstream>>,
    /// Every Fusion RPC by path, from the descriptor set.
    methods: Arc<HashMap<String, Rpc>>,
    retry_budget: Arc<TpsBudget>,
    max_message_bytes: usize,
}

impl Proxy {
    /// A proxy over `upstreams`, keyed by package.
    pub fn new(upstreams: Vec<Upstream>, max_message_bytes: usize) -> Self {
        Self {
            upstreams: Arc::new(
                upstreams
                    .into_iter()
                    .map(|u| (u.package.clone(), u))
                    .collect(),
            ),
            methods: Arc::new(
                descriptor::rpcs()
                    .into_iter()
                    .map(|rpc| (rpc.path.clone(), rpc))
                    .collect(),
            ),
            // Retries may add at most 20% to the load, with a floor of 10 per second.
            retry_budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            max_message_bytes,
        }
    }
}

fn unavailable() -> Response<Body> {
    reply(errors::unavailable(
        errors::PLATFORM_DOMAIN,
        "service unavailable; retry later",
    ))
}

/// An answer that says the upstream could not be reached (grpc-status 14 in a
/// trailers-only response).
fn is_unavailable(response: &Response<Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|v| v == "14")
}

async fn send(channel: tonic::transport::Channel, req: Request<Body>) -> Response<Body> {
    match channel.oneshot(req).await {
        Ok(response) => response,
        Err(e) => {
            // The cause (which address, which socket error) stays in our logs.
            tracing::warn!(error = %e, "upstream call failed");
            unavailable()
        }
    }
}

impl Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

impl Proxy {
    async fn forward(self, mut req: Request<Body>) -> Response<Body> {
        // The upstream's span becomes a child of the edge's (when tracing is exported).
        fusion_telemetry::inject_context(req.headers_mut());
        let path = req.uri().path().to_owned();
        let Some(info) = self.methods.get(&path) else {
            return reply(tonic::Status::unimplemented(format!(
                "unknown method {path}"
            )));
        };
        let package = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .rsplit_once('.')
            .map_or("", |(p, _)| p);
        let Some(upstream) = self.upstreams.get(package) else {
            return reply(tonic::Status::unimplemented(format!(
                "no service serves {package}"
            )));
        };
        if upstream.live_endpoints() == 0 {
            return unavailable();
        }
        self.retry_budget.deposit();
        if info.client_streaming {
            return send(upstream.channel(), req).await;
        }
        // A single request message: read it (bounded) so it can be sent again.
        let (parts, body) = req.into_parts();
        let limit = self.max_message_bytes + 5;
        let bytes = match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return reply(errors::resource_exhausted_with(
                    errors::PLATFORM_DOMAIN,
                    "MESSAGE_TOO_LARGE",
                    Duration::ZERO,
                ));
            }
        };
        let method = path.rsplit('/').next().unwrap_or("");
        let idempotent =
            !info.server_streaming && (method.starts_with("Get") || method.starts_with("List"));
        let rebuild = || {
            Request::from_parts(
                parts.clone(),
                Body::new(http_body_util::Full::new(bytes.clone())),
            )
        };
        let response = send(upstream.channel(), rebuild()).await;
        if idempotent && is_unavailable(&response) && self.retry_budget.withdraw() {
            tracing::info!(method = %path, "retrying an idempotent call after UNAVAILABLE");
            return send(upstream.channel(), rebuild()).await;
        }
        response
    }
}
