//! One trace spans producer → relay → consumer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};

use crate::helpers::*;

/// Remembers the trace id of the span it runs in.
#[derive(Clone, Default)]
struct TraceProbe(Arc<Mutex<Vec<String>>>);

impl Handler for TraceProbe {
    async fn handle(&self, _: &mut TenantTx, _: &Delivery) -> anyhow::Result<()> {
        let cx = tracing::Span::current().context();
        let trace_id = cx.span().span_context().trace_id().to_string();
        self.0.lock().unwrap().push(trace_id);
        Ok(())
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Spans get OpenTelemetry contexts, as when a service exports traces: the process's
/// one subscriber, set once for every test of this binary. (A subscriber set for this
/// test's thread alone raced with the other tests' threads, which run in the same
/// process under `cargo test`, over which spans are enabled.)
fn trace_every_span() {
    static INSTALLED: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> =
        std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer().with_tracer(provider.tracer("fusion-events-tests")),
        );
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets the global subscriber");
        provider
    });
}

#[tokio::test]
async fn the_producing_requests_trace_continues_through_the_relay_into_the_consumer() {
    trace_every_span();

    let h = Harness::new().await;
    // The producing request arrived with this traceparent.
    let request = tracing::info_span!("WinDeal");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    request
        .set_parent(fusion_telemetry::extract_context(&headers))
        .unwrap();
    let mut tx = h.producer.begin(1).await.unwrap();
    {
        let _entered = request.enter();
        fusion_events::outbox::append(&mut tx, PRODUCER, won(1, "won"))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let traceparent: String = sqlx::query_scalar("SELECT traceparent FROM crm.outbox_events")
        .fetch_one(&h.admin)
        .await
        .unwrap();
    assert!(traceparent.contains(TRACE_ID), "{traceparent}");

    h.relay().await.run_once().await.unwrap();
    let js = async_nats::jetstream::new(h.client().await);
    let stream = js.get_stream(&h.topology.stream).await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let header = message.headers.get("traceparent").map(|v| v.to_string());
    assert_eq!(header.as_deref(), Some(traceparent.as_str()));

    let probe = TraceProbe::default();
    h.spawn_consumer(h.consumer_config("property-trace"), probe.clone())
        .await;
    eventually(Duration::from_secs(10), "consumed", || async {
        !probe.0.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(probe.0.lock().unwrap().clone(), vec![TRACE_ID.to_owned()]);
}
