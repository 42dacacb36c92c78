//! Pruning consumers' inboxes.
//!
//! An inbox row is what makes a redelivered event a no-op, so it must outlive every way
//! the same event can come back: JetStream redelivers an unacknowledged message, and a
//! consumer reset replays whatever the stream still holds (`max_age`, 7 days by
//! default). The default retention is the stream's age plus a day; rows older than
//! that belong to events the stream itself has dropped.
//!
//! Rows are deleted in bounded batches (each its own short statement), so pruning a
//! large backlog never holds long locks or one huge transaction. It runs as the owner
//! role, whose `housekeeping` policy on `<schema>.inbox_events` is its only view of
//! other tenants' rows there.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::outbox::table;
use crate::stream::Topology;

/// How [`InboxPruner`] runs.
#[derive(Clone, Debug)]
pub struct InboxPruneConfig {
    /// The schema whose `inbox_events` are pruned.
    pub schema: String,
    /// Rows older than this are deleted.
    pub retention: Duration,
    /// Rows deleted per statement.
    pub batch: i64,
    /// Time between runs.
    pub every: Duration,
}

impl InboxPruneConfig {
    /// The stream's `max_age` plus a day, batches of 5,000, hourly.
    pub fn new(schema: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            retention: Topology::default().max_age + Duration::from_secs(86_400),
            batch: 5_000,
            every: Duration::from_secs(3600),
        }
    }
}

/// Deletes inbox rows past their retention.
#[derive(Clone, Debug)]
pub struct InboxPruner {
    owner: PgPool,
    config: InboxPruneConfig,
}

impl InboxPruner {
    /// A pruner over `owner`, a pool of the schema's owner role.
    pub fn new(owner: PgPool, config: InboxPruneConfig) -> Self {
        Self { owner, config }
    }

    /// Deletes every row older than the retention, a batch at a time; returns how many.
    pub async fn prune(&self) -> anyhow::Result<u64> {
        let inbox = table(&self.config.schema, "inbox_events");
        let sql = format!(
            "DELETE FROM {inbox} WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM {inbox}
                  WHERE created_at < now() - make_interval(secs => $1)
                  LIMIT $2))"
        );
        let mut total = 0;
        loop {
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(self.config.retention.as_secs_f64())
                .bind(self.config.batch.max(1))
                .execute(&self.owner)
                .await?;
            total += done.rows_affected();
            if done.rows_affected() < self.config.batch.max(1) as u64 {
                return Ok(total);
            }
        }
    }

    /// Prunes every `every` until `stop` turns true; a failed run is logged and tried
    /// again next time.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, schema = %self.config.schema,
                        "pruned inbox events"),
                    Err(e) => tracing::warn!(error = %e, schema = %self.config.schema,
                        "pruning inbox events"),
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(self.config.every) => {}
                }
            }
        })
    }
}
