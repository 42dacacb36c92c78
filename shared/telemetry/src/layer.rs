//! One span per RPC, named and attributed per the OpenTelemetry RPC conventions.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::extract_context;

/// Wraps a gRPC server: each call gets a span continuing the caller's trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTraceService { inner }
    }
}

/// The service [`GrpcTraceLayer`] builds.
#[derive(Clone, Debug)]
pub struct GrpcTraceService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> Service<Request<B>> for GrpcTraceService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path, ""));
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            tenant.id = tracing::field::Empty,
            request.id = %request_id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let parent = extract_context(req.headers());
        let parent_trace = parent.span().span_context().trace_id();
        let _ = span.set_parent(parent);
        // Log lines carry the ids (the JSON formatter prints the current span's fields):
        // this span's own when spans are exported, else at least the caller's trace.
        let own = span.context().span().span_context().clone();
        if own.is_valid() {
            span.record("trace_id", tracing::field::display(own.trace_id()));
            span.record("span_id", tracing::field::display(own.span_id()));
        } else if parent_trace != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(parent_trace));
        }
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let record_on = span.clone();
        Box::pin(
            async move {
                let result = fut.await;
                if let Ok(response) = &result {
                    // Trailers-only responses (every error) carry grpc-status in the
                    // headers; a successful stream reports it in trailers, which is 0.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    record_on.record("rpc.grpc.status_code", code);
                }
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[test]
    fn a_valid_traceparent_is_extracted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = extract_context(&headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    /// Collects what the JSON formatter writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_lines_inside_a_call_carry_the_callers_trace_and_the_rpc_attributes() {
        use tower::{Layer as _, Service as _, ServiceExt as _};
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            tracing::info!("handling");
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
        let mut svc = GrpcTraceLayer.layer(inner);
        let req = http::Request::builder()
            .uri("/fusion.crm.v1.LeadService/GetLead")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header("x-request-id", "req-7")
            .body(())
            .unwrap();
        svc.ready().await.unwrap().call(req).await.unwrap();
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        let span = &line["span"];
        assert_eq!(
            span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{out}"
        );
        assert_eq!(span["rpc.service"], "fusion.crm.v1.LeadService");
        assert_eq!(span["rpc.method"], "GetLead");
        assert_eq!(span["request.id"], "req-7");
    }

    #[test]
    fn garbage_traceparent_yields_an_empty_context() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "nonsense".parse().unwrap());
        assert!(!extract_context(&headers).span().span_context().is_valid());
    }
}
