//! Event metrics, registered into a service's `/metrics` registry.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SchemaLabels {
    pub schema: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConsumerLabels {
    pub consumer: String,
}

/// What the relay and the consumers of one service count.
#[derive(Clone, Debug, Default)]
pub struct EventMetrics {
    pub(crate) relayed: Family<SchemaLabels, Counter>,
    pub(crate) duplicates: Family<SchemaLabels, Counter>,
    pub(crate) relay_failures: Family<SchemaLabels, Counter>,
    pub(crate) relay_lag: Family<SchemaLabels, Gauge<f64, AtomicU64>>,
    pub(crate) deliveries: Family<ConsumerLabels, Counter>,
    pub(crate) failures: Family<ConsumerLabels, Counter>,
    pub(crate) dead_letters: Family<ConsumerLabels, Counter>,
    pub(crate) ignored: Family<ConsumerLabels, Counter>,
}

impl EventMetrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every metric to `registry` (the service's `/metrics`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "fusion_events_relayed",
            "Events the relay published and JetStream acknowledged",
            self.relayed.clone(),
        );
        registry.register(
            "fusion_events_relay_duplicates",
            "Republished events JetStream recognised as duplicates",
            self.duplicates.clone(),
        );
        registry.register(
            "fusion_events_relay_failures",
            "Relay rounds that failed (broker or database unavailable)",
            self.relay_failures.clone(),
        );
        registry.register(
            "fusion_events_relay_lag_seconds",
            "Age of the oldest event not yet relayed (0 when none waits)",
            self.relay_lag.clone(),
        );
        registry.register(
            "fusion_events_consumer_deliveries",
            "Messages delivered to a consumer, redeliveries included",
            self.deliveries.clone(),
        );
        registry.register(
            "fusion_events_consumer_failures",
            "Deliveries whose handling failed",
            self.failures.clone(),
        );
        registry.register(
            "fusion_events_dead_letters",
            "Events a consumer gave up on and recorded as dead letters",
            self.dead_letters.clone(),
        );
        registry.register(
            "fusion_events_consumer_ignored",
            "Deliveries of an event type the consumer does not receive (matched by its \
             wildcard filter), acknowledged without effect",
            self.ignored.clone(),
        );
    }

    /// Events relayed from `schema` so far (tests and benchmarks read it).
    pub fn relayed(&self, schema: &str) -> u64 {
        self.relayed.get_or_create(&schema_labels(schema)).get()
    }

    /// Republishes JetStream dropped as duplicates.
    pub fn duplicates(&self, schema: &str) -> u64 {
        self.duplicates.get_or_create(&schema_labels(schema)).get()
    }

    /// The relay's last measured lag, in seconds.
    pub fn relay_lag(&self, schema: &str) -> f64 {
        self.relay_lag.get_or_create(&schema_labels(schema)).get()
    }

    /// Deliveries to `consumer`.
    pub fn deliveries(&self, consumer: &str) -> u64 {
        self.deliveries
            .get_or_create(&consumer_labels(consumer))
            .get()
    }

    /// Failed deliveries to `consumer`.
    pub fn failures(&self, consumer: &str) -> u64 {
        self.failures
            .get_or_create(&consumer_labels(consumer))
            .get()
    }

    /// Dead letters of `consumer`.
    pub fn dead_letters(&self, consumer: &str) -> u64 {
        self.dead_letters
            .get_or_create(&consumer_labels(consumer))
            .get()
    }

    /// Deliveries `consumer` acknowledged without effect: types it does not receive.
    pub fn ignored(&self, consumer: &str) -> u64 {
        self.ignored.get_or_create(&consumer_labels(consumer)).get()
    }
}

pub(crate) fn schema_labels(schema: &str) -> SchemaLabels {
    SchemaLabels {
        schema: schema.to_owned(),
    }
}

pub(crate) fn consumer_labels(consumer: &str) -> ConsumerLabels {
    ConsumerLabels {
        consumer: consumer.to_owned(),
    }
}
