//! The client-side twin: calls made while handling a request carry the caller's
//! identity, trace and deadline to the next service.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower::{Layer, Service};

use fusion_proto::deadline::{GRPC_TIMEOUT, format_grpc_timeout, parse_grpc_timeout};

use crate::TenantContext;
use crate::headers::{AUTHORIZATION, REQUEST_ID, TENANT_ID, USER_ID};

/// Wraps an outbound channel: `ServiceBuilder::new().layer(ForwardContextLayer).service(channel)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardContextLayer;

impl<S> Layer<S> for ForwardContextLayer {
    type Service = ForwardContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardContext { inner }
    }
}

/// The service [`ForwardContextLayer`] builds.
#[derive(Clone, Debug)]
pub struct ForwardContext<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ForwardContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let headers = req.headers_mut();
        if let Some(ctx) = TenantContext::current() {
            let mut set = |name: &'static str, value: String| {
                // Metadata the caller set explicitly wins.
                if !headers.contains_key(name)
                    && let Ok(value) = HeaderValue::from_str(&value)
                {
                    headers.insert(name, value);
                }
            };
            if let Some(bearer) = &ctx.bearer {
                set(AUTHORIZATION, format!("Bearer {bearer}"));
            }
            set(TENANT_ID, ctx.tenant_id.to_string());
            set(USER_ID, ctx.user_id.to_string());
            if let Some(request_id) = &ctx.request_id {
                set(REQUEST_ID, request_id.clone());
            }
        }
        // What is left of the served call's deadline bounds the call it makes: a
        // downstream service never works for a caller that stopped waiting. A
        // shorter timeout the caller set on this call stands.
        if let Some(left) = fusion_proto::deadline::remaining() {
            let own = headers
                .get(GRPC_TIMEOUT)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout);
            if own.is_none_or(|own| left < own)
                && let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(left))
            {
                headers.insert(GRPC_TIMEOUT, value);
            }
        }
        fusion_telemetry::inject_context(headers);
        self.inner.call(req)
    }
}
