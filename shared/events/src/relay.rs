//! The relay: from a schema's outbox to JetStream, at least once, in id order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use prost::Message as _;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use uuid::Uuid;

use fusion_proto::common::v1::EventEnvelope;

use crate::metrics::schema_labels;
use crate::outbox::table;
use crate::{EventMetrics, Topology};

/// How one service relays one schema's outbox.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The schema whose `outbox_events` is relayed (`crm`).
    pub schema: String,
    /// The stream and subject prefix.
    pub topology: Topology,
    /// Rows claimed (and publishes in flight) per round.
    pub batch_size: i64,
    /// Longest wait between rounds when the outbox is empty; a commit that appends an
    /// event wakes the relay at once (`NOTIFY fusion_outbox_<schema>`), so this only
    /// bounds how late a missed notification is noticed.
    pub idle_poll: Duration,
    /// First wait after a failed round; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between failed rounds.
    pub max_backoff: Duration,
    /// How long a publish waits for its PubAck.
    pub publish_timeout: Duration,
    /// Sent rows are deleted once this old.
    pub retention: Duration,
    /// How often sent rows are pruned.
    pub prune_every: Duration,
}

impl RelayConfig {
    /// Defaults for `schema`: batches of 500, 1 s idle poll, backoff 100 ms → 10 s,
    /// 5 s PubAck timeout, sent rows kept 3 days and pruned hourly.
    pub fn new(schema: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            topology: Topology::default(),
            batch_size: 500,
            idle_poll: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(5),
            retention: Duration::from_secs(3 * 86_400),
            prune_every: Duration::from_secs(3600),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: Uuid,
    tenant_id: i64,
    event_type: String,
    aggregate_type: String,
    aggregate_id: i64,
    payload: Vec<u8>,
    traceparent: String,
    tracestate: String,
    created_at: DateTime<Utc>,
}

impl Row {
    fn envelope(&self) -> EventEnvelope {
        EventEnvelope {
            event_id: self.event_id.to_string(),
            event_type: self.event_type.clone(),
            tenant_id: self.tenant_id,
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id,
            occur_time: Some(prost_types::Timestamp {
                seconds: self.created_at.timestamp(),
                nanos: self.created_at.timestamp_subsec_nanos() as i32,
            }),
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
            payload: self.payload.clone(),
            sequence: self.id,
        }
    }

    fn headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", self.event_id.to_string().as_str());
        if !self.traceparent.is_empty() {
            headers.insert("traceparent", self.traceparent.as_str());
        }
        if !self.tracestate.is_empty() {
            headers.insert("tracestate", self.tracestate.as_str());
        }
        headers
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Rows published and marked sent.
    pub sent: usize,
    /// Of those, republishes JetStream had already stored.
    pub duplicates: usize,
    /// Whether the claim was full (more rows are probably waiting).
    pub full: bool,
}

/// Relays one schema's outbox; [`Relay::spawn`] runs it until stopped.
pub struct Relay {
    pool: PgPool,
    client: async_nats::Client,
    js: jetstream::Context,
    config: RelayConfig,
    metrics: EventMetrics,
    stream_ready: AtomicBool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("schema", &self.config.schema)
            .finish()
    }
}

impl Relay {
    /// A relay reading with `pool` (connected as the owner role, whose `relay` policy
    /// shows it every tenant's outbox rows and nothing else across tenants) and
    /// publishing with `client`.
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        config: RelayConfig,
        metrics: EventMetrics,
    ) -> Self {
        let js = crate::stream::jetstream(client.clone(), config.publish_timeout);
        Self {
            pool,
            client,
            js,
            config,
            metrics,
            stream_ready: AtomicBool::new(false),
        }
    }

    /// One round: claim up to a batch of unsent rows in id order, publish them, and
    /// mark those JetStream acknowledged, up to the first that failed.
    pub async fn run_once(&self) -> anyhow::Result<Round> {
        self.round(true).await
    }

    /// A round that publishes and waits for the PubAcks but never marks the rows:
    /// what a relay killed between the two leaves behind. For fault tests.
    #[doc(hidden)]
    pub async fn run_once_without_marking(&self) -> anyhow::Result<Round> {
        self.round(false).await
    }

    async fn round(&self, mark: bool) -> anyhow::Result<Round> {
        // While the connection is down a publish could only wait out its timeout: the
        // round waits (as long as a publish would) for it instead, with the rows
        // unclaimed, and goes on the moment it is back. If the client still does not
        // say it is connected, the round tries anyway: the publish is the real test.
        if !self.connected() {
            let _ = tokio::time::timeout(
                self.config.publish_timeout,
                crate::stream::reconnected(&self.client),
            )
            .await;
        }
        if !self.stream_ready.load(Ordering::Relaxed) {
            self.config.topology.ensure_stream(&self.js).await?;
            self.stream_ready.store(true, Ordering::Relaxed);
        }
        let outbox = table(&self.config.schema, "outbox_events");
        let mut tx = self.pool.begin().await?;
        // One relay per schema at a time keeps publishes in id order (crate docs).
        let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
            .bind(format!("fusion-events relay {outbox}"))
            .fetch_one(&mut *tx)
            .await?;
        if !leader {
            return Ok(Round::default());
        }
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, event_id, tenant_id, event_type, aggregate_type, aggregate_id, payload,
                    traceparent, tracestate, created_at
               FROM {outbox}
              WHERE sent_at IS NULL
              ORDER BY id
              LIMIT $1
                FOR UPDATE SKIP LOCKED"
        )))
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        let full = rows.len() as i64 >= self.config.batch_size;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Round::default());
        }

        // Pipelined: every publish goes out on the one connection, in order, before
        // the first PubAck is awaited.
        let mut pending = Vec::with_capacity(rows.len());
        let mut failure: Option<anyhow::Error> = None;
        for row in &rows {
            let subject = self.config.topology.subject(&row.event_type);
            let span = publish_span(row);
            let sent = self
                .js
                .publish_with_headers(
                    subject,
                    row.headers(),
                    row.envelope().encode_to_vec().into(),
                )
                .instrument(span)
                .await;
            match sent {
                Ok(ack) => pending.push(ack),
                Err(e) => {
                    failure = Some(anyhow::anyhow!("publishing event {}: {e}", row.event_id));
                    break;
                }
            }
        }
        let mut acked: Vec<i64> = Vec::with_capacity(pending.len());
        let mut duplicates = 0;
        for (row, ack) in rows.iter().zip(pending) {
            match ack.await {
                Ok(ack) => {
                    duplicates += usize::from(ack.duplicate);
                    acked.push(row.id);
                }
                Err(e) => {
                    failure.get_or_insert_with(|| {
                        anyhow::anyhow!("no PubAck for event {}: {e}", row.event_id)
                    });
                    break;
                }
            }
        }
        if failure.is_some() {
            // The broker is in trouble; the stream may need creating again after it.
            self.stream_ready.store(false, Ordering::Relaxed);
        }
        if !mark {
            tx.rollback().await?;
            return Ok(Round {
                sent: 0,
                duplicates,
                full,
            });
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {outbox} SET sent_at = now(), attempts = attempts + 1, last_error = NULL
              WHERE id = ANY($1)"
        )))
        .bind(&acked)
        .execute(&mut *tx)
        .await?;
        if let (Some(err), Some(row)) = (&failure, rows.get(acked.len())) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {outbox} SET attempts = attempts + 1, last_error = left($2, 500)
                  WHERE id = $1"
            )))
            .bind(row.id)
            .bind(err.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let labels = schema_labels(&self.config.schema);
        self.metrics
            .relayed
            .get_or_create(&labels)
            .inc_by(acked.len() as u64);
        self.metrics
            .duplicates
            .get_or_create(&labels)
            .inc_by(duplicates as u64);
        match failure {
            Some(err) if acked.is_empty() => Err(err),
            Some(err) => {
                tracing::warn!(error = %err, sent = acked.len(), "relay round stopped early");
                Ok(Round {
                    sent: acked.len(),
                    duplicates,
                    full: false,
                })
            }
            None => Ok(Round {
                sent: acked.len(),
                duplicates,
                full,
            }),
        }
    }

    /// Age of the oldest unsent event, in seconds (0 when none waits); also recorded
    /// as the `fusion_events_relay_lag_seconds` gauge.
    pub async fn measure_lag(&self) -> anyhow::Result<f64> {
        let outbox = table(&self.config.schema, "outbox_events");
        let lag: Option<f64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp() - created_at)::float8
               FROM {outbox} WHERE sent_at IS NULL ORDER BY id LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?;
        let lag = lag.unwrap_or(0.0).max(0.0);
        self.metrics
            .relay_lag
            .get_or_create(&schema_labels(&self.config.schema))
            .set(lag);
        Ok(lag)
    }

    /// Deletes rows sent longer ago than the retention; returns how many.
    pub async fn prune(&self) -> anyhow::Result<u64> {
        let outbox = table(&self.config.schema, "outbox_events");
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {outbox}
              WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)"
        )))
        .bind(self.config.retention.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Runs rounds until `stop` turns true: at once while batches come back full,
    /// after `idle_poll` when the outbox is empty, with exponential backoff while the
    /// broker or the database fails.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = self.config.min_backoff;
            let mut last_prune: Option<tokio::time::Instant> = None;
            let mut wakeups = self.listen().await;
            loop {
                if *stop.borrow() {
                    return;
                }
                // Whether this round failed with the connection down: then the wait
                // ends as soon as it is back, not after the whole backoff.
                let mut down = false;
                let wait = match self.run_once().await {
                    Ok(round) => {
                        backoff = self.config.min_backoff;
                        if round.full {
                            Duration::ZERO
                        } else {
                            self.config.idle_poll
                        }
                    }
                    Err(e) => {
                        down = !self.connected();
                        self.metrics
                            .relay_failures
                            .get_or_create(&schema_labels(&self.config.schema))
                            .inc();
                        tracing::warn!(error = %e, schema = %self.config.schema,
                            retry_in_ms = backoff.as_millis() as u64, "relay round failed");
                        let wait = backoff;
                        backoff = (backoff * 2).min(self.config.max_backoff);
                        wait
                    }
                };
                if let Err(e) = self.measure_lag().await {
                    tracing::debug!(error = %e, "measuring relay lag");
                }
                if last_prune.is_none_or(|t| t.elapsed() >= self.config.prune_every) {
                    match self.prune().await {
                        Ok(n) if n > 0 => tracing::info!(pruned = n, "pruned sent events"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning sent events"),
                    }
                    last_prune = Some(tokio::time::Instant::now());
                }
                if !wait.is_zero() {
                    let idle = wait == self.config.idle_poll;
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(wait) => {}
                        () = crate::stream::reconnected(&self.client), if down => {}
                        woken = wake(&mut wakeups), if idle => {
                            if let Err(e) = woken {
                                tracing::debug!(error = %e, "outbox notifications lost; polling");
                                wakeups = None;
                            }
                        }
                    }
                    if wakeups.is_none() {
                        wakeups = self.listen().await;
                    }
                }
            }
        })
    }
}

impl Relay {
    fn connected(&self) -> bool {
        crate::stream::connected(&self.client)
    }

    /// Listens for commits that append to the outbox; `None` (polling only) when the
    /// listening connection cannot be had now.
    async fn listen(&self) -> Option<PgListener> {
        let channel = crate::outbox::channel(&self.config.schema);
        let attempt = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match attempt.await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::debug!(error = %e, "not listening for outbox commits; polling");
                None
            }
        }
    }
}

/// Waits for the next outbox notification (forever without a listener).
async fn wake(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => {
            listener.recv().await?;
            // One round serves every commit so far: drop the notifications already here.
            while listener.next_buffered().is_some() {}
            Ok(())
        }
        None => std::future::pending().await,
    }
}

/// A span for one publish that continues the producing request's trace.
fn publish_span(row: &Row) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::debug_span!(
        "event publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.message.id = %row.event_id,
        event.type = %row.event_type,
        tenant.id = row.tenant_id,
    );
    if !row.traceparent.is_empty() {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&row.traceparent) {
            headers.insert("traceparent", v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&row.tracestate) {
            headers.insert("tracestate", v);
        }
        let _ = span.set_parent(fusion_telemetry::extract_context(&headers));
    }
    span
}

/// What a producing service starts beside its server: a relay of `config.schema` that
/// reads with an owner-role connection to `owner_url` (and listens for commits on a
/// second) and publishes to `nats_url`.
/// Neither needs to answer yet: the pool connects lazily and NATS in the background.
pub async fn start(
    owner_url: &str,
    nats_url: &str,
    config: RelayConfig,
    metrics: EventMetrics,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(owner_url)
        .map_err(|e| anyhow::anyhow!("the migration database URL is not valid: {e}"))?;
    let client = crate::connect(nats_url, &format!("fusion-{}-relay", config.schema)).await?;
    Ok(Relay::new(pool, client, config, metrics).spawn(stop))
}
