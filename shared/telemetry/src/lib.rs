//! Tracing for every Fusion service.
//!
//! - [`init`]: JSON log lines (with the current span's fields, such as `tenant.id` and
//!   `request.id`), `RUST_LOG` filtering, and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//!   span export over OTLP/gRPC through `tracing-opentelemetry`.
//! - [`GrpcTraceLayer`]: one span per RPC, following the OpenTelemetry RPC conventions,
//!   continuing the caller's W3C `traceparent`.
//! - [`inject_context`]: writes the current span's context as `traceparent` on
//!   outbound calls (used by the tenancy crate's client layer).

mod layer;
mod propagation;

pub use layer::{GrpcTraceLayer, GrpcTraceService};
pub use propagation::{extract_context, inject_context};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes and stops span export when dropped (at the end of `main`).
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

/// Installs logging and tracing for `service_name`. A second call (tests that start
/// several services in one process) leaves the first subscriber in place.
pub fn init(service_name: &str) -> anyhow::Result<TelemetryGuard> {
    init_with_filter(service_name, "info")
}

/// [`init`] with another default log filter when `RUST_LOG` is unset (the local stack
/// keeps its terminal for the lines it prints).
pub fn init_with_filter(
    service_name: &str,
    default_filter: &str,
) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true);

    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    let Some(_endpoint) = endpoint else {
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(json)
            .try_init();
        return Ok(TelemetryGuard::default());
    };
    // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service_name.to_owned());
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    if tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(otel)
        .try_init()
        .is_err()
    {
        return Ok(TelemetryGuard::default());
    }
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}
