//! The connection to NATS and the one stream every event goes through.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// The stream and its subject prefix. Production uses [`Topology::default`] (`FUSION`,
/// `fusion.>`); tests that share a server use a unique one each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// The stream's name: `FUSION`.
    pub stream: String,
    /// The first subject token: `fusion`; subjects are `<prefix>.<event_type>`.
    pub prefix: String,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a republish.
    pub duplicate_window: Duration,
    /// How long the stream keeps events (consumers that were away longer miss them).
    pub max_age: Duration,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            stream: "FUSION".to_owned(),
            prefix: "fusion".to_owned(),
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Topology {
    /// A topology of its own: stream `<NAME>`, subjects `<name>.>` (tests).
    pub fn named(name: &str) -> Self {
        Self {
            stream: name.to_uppercase(),
            prefix: name.to_lowercase(),
            ..Self::default()
        }
    }

    /// `fusion.crm.deal.won` for `crm.deal.won`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.prefix)
    }

    /// What the stream should look like.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }

    /// Creates the stream, or brings an existing one to [`Topology::stream_config`];
    /// safe to call from every replica at every start.
    pub async fn ensure_stream(&self, js: &jetstream::Context) -> anyhow::Result<()> {
        js.create_or_update_stream(self.stream_config())
            .await
            .map_err(|e| anyhow::anyhow!("creating or updating stream {}: {e}", self.stream))?;
        Ok(())
    }
}

/// A client of `url` that connects (and reconnects) in the background, so a service
/// starts while NATS is down and its events wait in the outbox.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        // NATS is close by (loopback, the cluster): retry soon, at most a second
        // apart, so events flow again within a second of its return.
        .reconnect_delay_callback(reconnect_delay)
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS_URL {url:?}: {e}"))
}

/// The wait before reconnection attempt `attempts`: none for the first, then 100 ms
/// doubling to at most 1 s.
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        Duration::ZERO
    } else {
        let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(4);
        (Duration::from_millis(100) * 2_u32.pow(doublings)).min(Duration::from_secs(1))
    }
}

/// Whether `client`'s connection is up.
pub(crate) fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Returns once `client`'s connection is up (checked every 50 ms): a task that failed
/// because NATS was away waits for this rather than its whole backoff.
pub(crate) async fn reconnected(client: &async_nats::Client) {
    while !connected(client) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JetStream context whose requests (PubAcks included) give up after `timeout`.
pub fn jetstream(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    let mut js = jetstream::new(client);
    js.set_timeout(timeout);
    js
}
