//! gRPC server metrics in Prometheus text format, one registry per server (tests run
//! several servers in one process).

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// The metrics one server records.
#[derive(Clone)]
pub struct GrpcMetrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram>,
}

impl std::fmt::Debug for GrpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcMetrics")
    }
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcMetrics {
    /// A fresh registry with `grpc_server_requests_total` and `grpc_server_request_duration_seconds`.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<CallLabels, Counter>::default();
        let duration = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "grpc_server_requests",
            "gRPC calls by method and status code",
            requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "Time to the response headers of a gRPC call",
            duration.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            duration,
        }
    }

    /// Adds metrics of the service's own (events, jobs) to the same `/metrics`.
    pub fn register(&self, add: impl FnOnce(&mut Registry)) {
        let mut registry = self.registry.lock().expect("metrics registry lock");
        add(&mut registry);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String");
        out
    }

    fn record(&self, method: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&CallLabels {
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }
}

/// Records every call into a [`GrpcMetrics`].
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: GrpcMetrics,
}

impl MetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] builds.
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, R> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            if let Ok(response) = &result {
                // Errors are trailers-only responses with grpc-status in the headers;
                // a response without it is a success whose status follows in trailers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                metrics.record(&method, &code, started.elapsed().as_secs_f64());
            }
            result
        })
    }
}
