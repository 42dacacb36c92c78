//! Lot status changes, live: every transition queues a PostgreSQL `NOTIFY` inside the
//! transaction that makes it, so an event is delivered exactly when (and only if) the
//! change commits, to every replica listening on the channel. Each replica keeps one
//! listening connection and fans events out to its `WatchLotAvailability` streams,
//! which keep only their own tenant's (and project's) events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};

use crate::error::PropertyError;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "fusion_property_lot_events";

/// How many events a slow watcher may fall behind before its stream is ended.
const BUFFER: usize = 4096;

/// One committed lot status change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotEvent {
    /// Whose lot.
    pub tenant_id: i64,
    /// The lot.
    pub lot_id: i64,
    /// Its project.
    pub project_id: i64,
    /// Its stage.
    pub stage_id: i64,
    /// Its number in the stage.
    pub lot_number: String,
    /// The status before; `None` for a new lot.
    pub from_status: Option<String>,
    /// The status after.
    pub to_status: String,
    /// The lot's list price after the change.
    pub price: Option<Decimal>,
    /// The ISO 4217 currency of `price`.
    #[serde(default)]
    pub currency_code: String,
    /// When it changed.
    pub change_time: DateTime<Utc>,
}

/// The fan-out of committed lot events within this process.
#[derive(Clone, Debug)]
pub struct LotEvents {
    sender: broadcast::Sender<Arc<LotEvent>>,
}

impl Default for LotEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl LotEvents {
    /// An empty feed.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
        }
    }

    /// Events committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LotEvent>> {
        self.sender.subscribe()
    }

    fn publish(&self, event: LotEvent) {
        // No watcher is not an error.
        let _ = self.sender.send(Arc::new(event));
    }
}

/// Queues `event` for delivery when the caller's transaction commits.
pub async fn notify(conn: &mut PgConnection, event: &LotEvent) -> Result<(), PropertyError> {
    let payload = serde_json::to_string(event).map_err(|e| PropertyError::Internal(e.into()))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Starts listening (before it returns, so nothing committed after start-up is missed)
/// and relays notifications into `events` until `stop` turns true. A lost connection
/// is re-established; events committed while it was down are lost to live watchers,
/// who re-list to catch up.
pub async fn spawn_listener(
    database_url: &str,
    events: LotEvents,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(notification) => match serde_json::from_str::<LotEvent>(notification.payload()) {
                        Ok(event) => events.publish(event),
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed lot event"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "lot event listener lost its connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = stop.changed() => break,
            }
        }
    }))
}
