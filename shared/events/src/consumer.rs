//! Durable JetStream pull consumers that apply each event once, in its tenant.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use fusion_db::{Db, TenantTx};
use fusion_proto::common::v1::EventEnvelope;

use crate::credentials::{CredentialsError, ServiceCredentials};
use crate::metrics::consumer_labels;
use crate::outbox::{DOMAIN, is_transient, table};
use crate::{EventMetrics, Topology, decode_envelope};

/// An event as a handler sees it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The envelope; its `tenant_id` is the tenant the handler's transaction is bound to.
    pub envelope: EventEnvelope,
    /// How many times JetStream has delivered it, this time included.
    pub delivered: i64,
    /// The service account the consumer acts as in the event's tenant, when the
    /// consumer has service credentials: its audit fields name this account, and its
    /// calls to other services carry this token.
    pub caller: Option<ServiceCaller>,
}

/// A service account of the event's tenant, with an access token issued for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCaller {
    /// The service account's id (the token's `sub`), for audit fields.
    pub account_id: i64,
    /// A bearer access token for it, valid for a while yet.
    pub access_token: String,
    /// The tenant's IANA time zone (e.g. "Australia/Brisbane"): what "today" is for
    /// the event's work.
    pub time_zone: String,
}

impl Delivery {
    /// The id audit fields written by the handler name: the consumer's service
    /// account in the event's tenant, or `None` when the consumer runs without one.
    pub fn actor_id(&self) -> Option<i64> {
        self.caller.as_ref().map(|c| c.account_id)
    }

    /// The payload decoded as `M`.
    pub fn payload<M: prost::Message + Default>(&self) -> anyhow::Result<M> {
        M::decode(self.envelope.payload.as_slice()).map_err(|e| {
            anyhow::anyhow!(
                "payload of {} is not a valid message: {e}",
                self.envelope.event_type
            )
        })
    }
}

/// What a consumer does with an event, inside the transaction bound to the event's
/// tenant that also records it in the inbox. An error rolls both back; an error whose
/// cause is the database being unavailable is retried without counting against the
/// event, any other is retried until `max_deliver` and then dead-lettered.
pub trait Handler: Send + Sync + 'static {
    /// Applies `event`'s effect with `tx`.
    fn handle(
        &self,
        tx: &mut TenantTx,
        event: &Delivery,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// One durable consumer.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Durable name, `<service>-<purpose>` (`property-lot-sales`); also the `consumer`
    /// of its inbox and dead-letter rows.
    pub name: String,
    /// The schema holding the consumer's `inbox_events` and `dead_letters`.
    pub schema: String,
    /// Event types it receives (`crm.deal.won`); subjects are made with the topology.
    /// Several are filtered with one wildcard subject ([`ConsumerConfig::filter_subject`])
    /// and the other types that subject matches are acknowledged without effect.
    pub event_types: Vec<String>,
    /// The stream and subject prefix.
    pub topology: Topology,
    /// Deliveries of an event whose handler fails before it is dead-lettered.
    pub max_deliver: i64,
    /// How long JetStream waits for an ack before redelivering; well above the
    /// handler's p99 (one short transaction, a few milliseconds). While a handler runs
    /// the consumer tells JetStream it is still working every half of this, so a slow
    /// one is not redelivered under it. It is also how long a message delivered just
    /// before a broker crash (whose ack the broker lost) holds up the ones behind it.
    pub ack_wait: Duration,
    /// Unacknowledged messages allowed at once; 1 keeps one aggregate's events in
    /// order across replicas (crate docs).
    pub max_ack_pending: i64,
    /// Wait before a failed event is redelivered, times the deliveries so far.
    pub retry_delay: Duration,
    /// Longest wait of a pull request with nothing to deliver.
    pub fetch_wait: Duration,
}

impl ConsumerConfig {
    /// Defaults: 5 deliveries, 5 s AckWait, one message in flight, 500 ms retry delay.
    pub fn new(name: &str, schema: &str, event_types: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            schema: schema.to_owned(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            topology: Topology::default(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(5),
            max_ack_pending: 1,
            retry_delay: Duration::from_millis(500),
            fetch_wait: Duration::from_secs(1),
        }
    }

    /// JetStream's own bound on deliveries: far above `max_deliver`, so that only a
    /// long database outage (whose retries do not count against the event) can reach
    /// it; then JetStream stops and the event stays in the stream for a replay.
    fn broker_max_deliver(&self) -> i64 {
        self.max_deliver.max(1) * 200
    }

    fn pull_config(&self) -> pull::Config {
        let mut config = pull::Config {
            durable_name: Some(self.name.clone()),
            description: Some(format!("{} (fusion-events)", self.name)),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.broker_max_deliver(),
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        };
        // One filter subject, which every JetStream server knows: Debian's nats-server
        // is 2.9, which refuses `filter_subjects` (2.10+). Several types share their
        // common subject prefix with wildcards for the rest, and the consumer drops the
        // types it did not list (`Outcome::Ignored`).
        config.filter_subject = self.filter_subject();
        config
    }

    /// The subject the consumer filters on: its one event type's subject, or for
    /// several the tokens their subjects share followed by a `*` for each other token
    /// (`fusion.crm.deal.*` for `crm.deal.won`, `crm.deal.lost` and
    /// `crm.deal.reopened`; `fusion.crm.*.*` for `crm.deal.won` and
    /// `crm.lead.converted`).
    pub fn filter_subject(&self) -> String {
        let mut subjects: Vec<String> = self
            .event_types
            .iter()
            .map(|t| self.topology.subject(t))
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        if subjects.len() <= 1 {
            return subjects.pop().unwrap_or_default();
        }
        let split: Vec<Vec<&str>> = subjects.iter().map(|s| s.split('.').collect()).collect();
        let first = &split[0];
        let common = (0..first.len())
            .take_while(|&i| split.iter().all(|s| s.get(i) == Some(&first[i])))
            .count();
        let mut tokens: Vec<&str> = first[..common].to_vec();
        if split.iter().all(|s| s.len() == first.len()) {
            tokens.extend(std::iter::repeat_n("*", first.len() - common));
        } else {
            tokens.push(">");
        }
        tokens.join(".")
    }

    /// Whether the consumer listed `event_type`.
    pub fn receives(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }
}

/// What became of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The handler's effect committed with the inbox row.
    Applied,
    /// The inbox already had it: no second effect.
    Duplicate,
    /// It failed and will be delivered again.
    Retry,
    /// It failed `max_deliver` times and is now a dead letter.
    DeadLettered,
    /// It is not a valid envelope (no tenant to record it under): dropped and logged.
    Malformed,
    /// Its type is not one the consumer listed (a sibling its wildcard filter also
    /// matches): acknowledged without effect and without an inbox row.
    Ignored,
}

/// A consumer; [`Consumer::spawn`] runs it until stopped.
pub struct Consumer<H> {
    db: Db,
    client: async_nats::Client,
    js: jetstream::Context,
    config: ConsumerConfig,
    handler: Arc<H>,
    metrics: EventMetrics,
    credentials: Option<ServiceCredentials>,
}

impl<H> std::fmt::Debug for Consumer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.config.name)
            .finish()
    }
}

impl<H: Handler> Consumer<H> {
    /// A consumer writing with `db` (the application role: every effect runs in a
    /// transaction bound to the event's tenant) and reading with `client`.
    pub fn new(
        db: Db,
        client: async_nats::Client,
        config: ConsumerConfig,
        handler: H,
        metrics: EventMetrics,
    ) -> Self {
        let js = crate::stream::jetstream(client.clone(), Duration::from_secs(5));
        Self {
            db,
            client,
            js,
            config,
            handler: Arc::new(handler),
            metrics,
            credentials: None,
        }
    }

    /// Acts as the service's system account in each event's tenant: before the handler
    /// runs, [`Delivery::caller`] is set to that account and a token for it, from
    /// `credentials`. When none can be had (identity down, the tenant's admin
    /// deactivated the account) the event is retried later, like a database outage:
    /// it is not the event's fault, so it is never dead-lettered for it.
    pub fn with_credentials(mut self, credentials: ServiceCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    async fn pull(&self) -> anyhow::Result<pull::Stream> {
        self.config.topology.ensure_stream(&self.js).await?;
        let stream = self
            .js
            .get_stream(&self.config.topology.stream)
            .await
            .map_err(|e| anyhow::anyhow!("getting stream: {e}"))?;
        let config = self.durable_config(&stream).await?;
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .create_consumer(config)
            .await
            .map_err(|e| anyhow::anyhow!("creating consumer {}: {e}", self.config.name))?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.max_ack_pending.clamp(1, 256) as usize)
            .expires(self.config.fetch_wait)
            .heartbeat(self.config.fetch_wait / 2)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("pulling from {}: {e}", self.config.name))
    }

    /// The configuration to create or update the durable consumer with. An existing
    /// one keeps where it started. One whose filter differs (its service now receives
    /// more or fewer types) is deleted and made again from where it had got to, as an
    /// update would carry on: nats-server 2.9 accepts a changed filter but then matches
    /// nothing with it. Messages of the new types that it had already passed over,
    /// when they were not its business, stay passed over.
    async fn durable_config(
        &self,
        stream: &jetstream::stream::Stream,
    ) -> anyhow::Result<pull::Config> {
        let mut config = self.config.pull_config();
        let info = match stream.consumer_info(&self.config.name).await {
            Ok(info) => info,
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                return Ok(config);
            }
            Err(e) => anyhow::bail!("reading consumer {}: {e}", self.config.name),
        };
        config.deliver_policy = info.config.deliver_policy;
        if info.config.filter_subject != config.filter_subject
            || !info.config.filter_subjects.is_empty()
        {
            tracing::info!(consumer = %self.config.name, from = %info.config.filter_subject,
                to = %config.filter_subject, "the consumer's filter changed: making it again");
            stream
                .delete_consumer(&self.config.name)
                .await
                .map_err(|e| anyhow::anyhow!("deleting consumer {}: {e}", self.config.name))?;
            // Where a working update would carry on: past what it has looked at, unless
            // something it delivered is unacknowledged (delivered again; the inbox
            // absorbs what was applied).
            let start_sequence =
                if info.ack_floor.consumer_sequence >= info.delivered.consumer_sequence {
                    info.delivered.stream_sequence + 1
                } else {
                    info.ack_floor.stream_sequence + 1
                };
            config.deliver_policy =
                jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence };
        }
        Ok(config)
    }

    /// Handles one message and acknowledges it as its outcome says.
    pub async fn process(&self, message: &jetstream::Message) -> Outcome {
        let labels = consumer_labels(&self.config.name);
        self.metrics.deliveries.get_or_create(&labels).inc();
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        if !self.lists_subject(&message.subject) {
            return self.ignore(message, &message.subject).await;
        }
        let envelope = match decode_envelope(&message.payload) {
            Ok(envelope) => envelope,
            Err(reason) => {
                tracing::error!(consumer = %self.config.name, subject = %message.subject,
                    %reason, "dropping a message that is not a valid event");
                self.metrics.dead_letters.get_or_create(&labels).inc();
                ack(message, AckKind::Term).await;
                return Outcome::Malformed;
            }
        };
        if !self.config.receives(&envelope.event_type) {
            return self.ignore(message, &envelope.event_type).await;
        }
        let span = consume_span(&self.config.name, &envelope);
        let caller = match &self.credentials {
            None => Ok(None),
            Some(credentials) => credentials
                .for_tenant(envelope.tenant_id)
                .instrument(span.clone())
                .await
                .map(Some),
        };
        let outcome = async {
            match caller {
                Ok(caller) => {
                    let event = Delivery {
                        envelope,
                        delivered,
                        caller,
                    };
                    match self.while_working(message, self.apply(&event)).await {
                        Ok(true) => Outcome::Applied,
                        Ok(false) => Outcome::Duplicate,
                        // A database outage is not the event's fault: it waits.
                        Err(err) => self.failed(&event, &err, !is_transient(&err)).await,
                    }
                }
                Err(err) => {
                    // A tenant identity does not know (never was, or deleted) will not
                    // come back: like a failing handler, its event is dead-lettered
                    // after the bounded deliveries. Anything else (identity down, the
                    // account deactivated) waits, however long it takes.
                    let gone = matches!(err, CredentialsError::NoTenant(_))
                        || err.code() == Some(tonic::Code::NotFound);
                    let event = Delivery {
                        envelope,
                        delivered,
                        caller: None,
                    };
                    let err = anyhow::Error::new(err)
                        .context("no service account token for the event's tenant");
                    self.failed(&event, &err, gone).await
                }
            }
        }
        .instrument(span)
        .await;
        match outcome {
            Outcome::Retry => self.retry_later(message, delivered).await,
            Outcome::DeadLettered => ack(message, AckKind::Term).await,
            _ => ack(message, AckKind::Ack).await,
        }
        outcome
    }

    /// Whether `subject` is the subject of a type the consumer listed.
    fn lists_subject(&self, subject: &str) -> bool {
        self.config
            .event_types
            .iter()
            .any(|t| self.config.topology.subject(t) == subject)
    }

    /// Acknowledges a message of a type the consumer did not list, without effect.
    async fn ignore(&self, message: &jetstream::Message, what: &str) -> Outcome {
        let labels = consumer_labels(&self.config.name);
        self.metrics.ignored.get_or_create(&labels).inc();
        tracing::debug!(consumer = %self.config.name, %what,
            "acknowledging an event type the consumer does not receive");
        ack(message, AckKind::Ack).await;
        Outcome::Ignored
    }

    /// Has JetStream deliver `message` again after the retry delay times the
    /// deliveries so far. The consumer waits out the delay itself, telling JetStream it
    /// is still working on the message, and then asks for an immediate redelivery:
    /// nats-server 2.9 can lose the redelivery of a NAK with a delay on a pull
    /// consumer, which then holds the message unacknowledged, and everything behind it
    /// (`max_ack_pending = 1`), for good. Nothing else could be delivered meanwhile
    /// anyway: this message comes first.
    async fn retry_later(&self, message: &jetstream::Message, delivered: i64) {
        let factor = u32::try_from(delivered.clamp(1, 20)).unwrap_or(1);
        let delay = tokio::time::sleep(self.config.retry_delay * factor);
        self.while_working(message, delay).await;
        ack(message, AckKind::Nak(None)).await;
    }

    /// Runs `work` to its end, telling JetStream every half AckWait that `message` is
    /// still being worked on, so it is not redelivered meanwhile.
    async fn while_working<T>(
        &self,
        message: &jetstream::Message,
        work: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut working = tokio::time::interval(self.config.ack_wait / 2);
        working.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = working.tick() => ack(message, AckKind::Progress).await,
            }
        }
    }

    /// What becomes of `event` when it failed with `err`: a dead letter once it has had
    /// its `max_deliver` deliveries, if the failure is `permanent` (the event's own
    /// fault) and the dead letter is recorded; otherwise another delivery.
    async fn failed(&self, event: &Delivery, err: &anyhow::Error, permanent: bool) -> Outcome {
        let labels = consumer_labels(&self.config.name);
        self.metrics.failures.get_or_create(&labels).inc();
        let delivered = event.delivered;
        if permanent && delivered >= self.config.max_deliver {
            match self.dead_letter(event, err).await {
                Ok(()) => {
                    self.metrics.dead_letters.get_or_create(&labels).inc();
                    tracing::error!(error = format!("{err:#}"), delivered, "event dead-lettered");
                    return Outcome::DeadLettered;
                }
                Err(e) => tracing::warn!(error = %e, "recording a dead letter"),
            }
        } else {
            tracing::warn!(
                error = format!("{err:#}"),
                delivered,
                "event failed; it will be delivered again"
            );
        }
        Outcome::Retry
    }

    /// Binds the envelope's tenant, records the event in the inbox and applies it, in
    /// one transaction; `false` when the inbox already had it.
    async fn apply(&self, event: &Delivery) -> anyhow::Result<bool> {
        let envelope = &event.envelope;
        let mut tx = self.db.begin(envelope.tenant_id).await?;
        let inbox = table(&self.config.schema, "inbox_events");
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {inbox} (consumer, event_id, tenant_id, event_type)
             VALUES ($1, $2::uuid, $3, $4)
             ON CONFLICT (consumer, event_id) DO NOTHING"
        )))
        .bind(&self.config.name)
        .bind(&envelope.event_id)
        .bind(envelope.tenant_id)
        .bind(&envelope.event_type)
        .execute(&mut *tx)
        .await
        .map_err(|e| fusion_db::Error::from_sqlx(DOMAIN, e))?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter(&self, event: &Delivery, err: &anyhow::Error) -> anyhow::Result<()> {
        let envelope = &event.envelope;
        let mut tx = self.db.begin(envelope.tenant_id).await?;
        let dead = table(&self.config.schema, "dead_letters");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {dead} (tenant_id, consumer, event_id, event_type, event, error, attempts)
             VALUES ($1, $2, $3::uuid, $4, $5, left($6, 2000), $7)
             ON CONFLICT (consumer, event_id)
             DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,
                           created_at = now()"
        )))
        .bind(envelope.tenant_id)
        .bind(&self.config.name)
        .bind(&envelope.event_id)
        .bind(&envelope.event_type)
        .bind(envelope.encode_to_vec())
        .bind(format!("{err:#}"))
        .bind(i32::try_from(event.delivered).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pulls and handles messages one at a time until `stop` turns true; reconnects
    /// with backoff while NATS is away.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                if *stop.borrow() {
                    return;
                }
                let mut messages = match self.pull().await {
                    Ok(messages) => messages,
                    Err(e) => {
                        tracing::warn!(error = %e, consumer = %self.config.name,
                            "consumer cannot pull yet");
                        // With NATS away, pull again as soon as it is back.
                        let down = !crate::stream::connected(&self.client);
                        tokio::select! {
                            _ = stop.wait_for(|s| *s) => return,
                            _ = tokio::time::sleep(backoff) => {}
                            () = crate::stream::reconnected(&self.client), if down => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                loop {
                    let next = tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(message)) => {
                            self.process(&message).await;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, consumer = %self.config.name,
                                "pull failed; pulling again");
                            break;
                        }
                        None => break,
                    }
                }
            }
        })
    }
}

/// What a service's consumers share: the database, the NATS connection, the event
/// metrics and, when the service has them, its credentials. Starting a consumer is
/// then one line:
///
/// ```ignore
/// background.push(consumers.spawn(ConsumerConfig::new(CONSUMER, SCHEMA, EVENTS), Handler, background.stopped()));
/// ```
#[derive(Clone, Debug)]
pub struct Consumers {
    db: Db,
    client: async_nats::Client,
    metrics: EventMetrics,
    credentials: Option<ServiceCredentials>,
}

impl Consumers {
    /// Consumers writing with `db` and reading with `client`; with `credentials`, each
    /// acts as the service's system account in its events' tenants
    /// ([`Consumer::with_credentials`]).
    pub fn new(
        db: Db,
        client: async_nats::Client,
        metrics: EventMetrics,
        credentials: Option<ServiceCredentials>,
    ) -> Self {
        Self {
            db,
            client,
            metrics,
            credentials,
        }
    }

    /// Consumers of service `service` (`crm`) over NATS at `nats_url` (connected in the
    /// background, so a service starts while NATS is down).
    pub async fn connect(
        db: Db,
        nats_url: &str,
        service: &str,
        metrics: EventMetrics,
        credentials: Option<ServiceCredentials>,
    ) -> anyhow::Result<Self> {
        let client = crate::connect(nats_url, &format!("fusion-{service}")).await?;
        Ok(Self::new(db, client, metrics, credentials))
    }

    /// Whether the consumers act as the service's system accounts.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Starts consumer `config` with `handler`, until `stop` turns true.
    pub fn spawn<H: Handler>(
        &self,
        config: ConsumerConfig,
        handler: H,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let mut consumer = Consumer::new(
            self.db.clone(),
            self.client.clone(),
            config,
            handler,
            self.metrics.clone(),
        );
        if let Some(credentials) = &self.credentials {
            consumer = consumer.with_credentials(credentials.clone());
        }
        consumer.spawn(stop)
    }
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    // A lost ack only means a redelivery, which the inbox absorbs.
    if let Err(e) = message.ack_with(kind).await {
        tracing::debug!(error = %e, "acknowledging a message");
    }
}

/// A span for one delivery that continues the producing request's trace.
fn consume_span(consumer: &str, envelope: &EventEnvelope) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!(
        "event consume",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.consumer.group.name = %consumer,
        messaging.message.id = %envelope.event_id,
        event.type = %envelope.event_type,
        tenant.id = envelope.tenant_id,
    );
    if !envelope.traceparent.is_empty() {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&envelope.traceparent) {
            headers.insert("traceparent", v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&envelope.tracestate) {
            headers.insert("tracestate", v);
        }
        let _ = span.set_parent(fusion_telemetry::extract_context(&headers));
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(types: &[&str]) -> String {
        ConsumerConfig::new("property-test", "property", types).filter_subject()
    }

    #[test]
    fn one_type_is_its_own_subject_and_several_share_their_prefix() {
        assert_eq!(filter(&["crm.deal.won"]), "fusion.crm.deal.won");
        assert_eq!(
            filter(&["crm.deal.won", "crm.deal.won"]),
            "fusion.crm.deal.won"
        );
        assert_eq!(
            filter(&["crm.deal.won", "crm.deal.lost", "crm.deal.reopened"]),
            "fusion.crm.deal.*"
        );
        assert_eq!(
            filter(&["crm.deal.won", "crm.lead.converted"]),
            "fusion.crm.*.*"
        );
        assert_eq!(
            filter(&["crm.deal.won", "property.lot.status_changed"]),
            "fusion.*.*.*"
        );
    }

    #[test]
    fn a_consumer_receives_only_the_types_it_lists() {
        let config = ConsumerConfig::new("property-test", "property", &["crm.deal.won"]);
        assert!(config.receives("crm.deal.won"));
        assert!(!config.receives("crm.deal.lost"));
    }
}
