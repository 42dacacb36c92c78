//! Following identity's `identity.access.revoked` events into a process's deny list
//! ([`fusion_tenancy::Revocations`]), so a token revoked anywhere is refused
//! everywhere within moments.
//!
//! Every process that checks tokens (the edge, every service) must see every
//! revocation, so each reads the subject with an ordered consumer of its own: an
//! ephemeral consumer that no other replica shares, acknowledges nothing and is gone
//! when the process is. It starts [`RevocationFeed::replay`] ago, so a replica started
//! after a revocation still learns of it; entries whose tokens have all expired are
//! dropped as they arrive.
//!
//! When NATS is unreachable revocations arrive late: calls are not failed for it; the
//! feed starts again (from `replay` ago) once NATS is back, and tokens keep expiring
//! on their own meanwhile.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use fusion_proto::identity::v1::AccessRevoked;
use fusion_tenancy::{Revocation, Revocations, Subject};

use crate::{Topology, decode_envelope};

/// The event identity publishes when tokens must stop working.
pub const EVENT_TYPE: &str = "identity.access.revoked";

/// How a process follows revocations.
#[derive(Clone, Debug)]
pub struct RevocationFeed {
    /// The stream and subject prefix.
    pub topology: Topology,
    /// How far back a (re)started feed reads: at least the longest access-token
    /// lifetime identity issues (`IDENTITY_ACCESS_TOKEN_TTL_SECONDS`), so every
    /// revocation whose tokens may still be alive is seen.
    pub replay: Duration,
    /// The wait before starting again after the feed failed (NATS away).
    pub retry: Duration,
}

impl Default for RevocationFeed {
    /// The `FUSION` stream, a day back, retried every second.
    fn default() -> Self {
        Self {
            topology: Topology::default(),
            replay: Duration::from_secs(24 * 3600),
            retry: Duration::from_secs(1),
        }
    }
}

/// The revocation an event's body announces.
pub fn decode(body: &[u8]) -> Result<Revocation, String> {
    let envelope = decode_envelope(body)?;
    if envelope.event_type != EVENT_TYPE {
        return Err(format!("{} is not {EVENT_TYPE}", envelope.event_type));
    }
    let event = AccessRevoked::decode(envelope.payload.as_slice())
        .map_err(|e| format!("not an AccessRevoked: {e}"))?;
    if event.tenant_id <= 0 {
        return Err("a revocation without a tenant".to_owned());
    }
    let subject = if event.user_id > 0 {
        Subject::User {
            tenant_id: event.tenant_id,
            user_id: event.user_id,
        }
    } else if !event.role_name.is_empty() {
        Subject::Role {
            tenant_id: event.tenant_id,
            name: event.role_name,
        }
    } else {
        Subject::Tenant(event.tenant_id)
    };
    let millis = |t: Option<prost_types::Timestamp>, what: &str| {
        let t = t.ok_or_else(|| format!("a revocation without {what}"))?;
        let secs = u64::try_from(t.seconds).map_err(|_| format!("{what} before the epoch"))?;
        Ok::<u64, String>(secs * 1000 + u64::try_from(t.nanos / 1_000_000).unwrap_or(0))
    };
    Ok(Revocation {
        subject,
        not_before_ms: millis(event.not_before_time, "not_before_time")?,
        expires_ms: millis(event.expire_time, "expire_time")?,
    })
}

/// Follows revocations over `client` into `revocations` until `stopped`.
pub fn follow(
    client: async_nats::Client,
    feed: RevocationFeed,
    revocations: Arc<Revocations>,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                result = read(&client, &feed, &revocations) => {
                    if let Err(e) = result {
                        tracing::warn!(
                            error = %e,
                            "following token revocations failed; they arrive late until it resumes"
                        );
                    }
                }
                _ = stopped.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(feed.retry) => {}
                _ = stopped.changed() => return,
            }
        }
    })
}

/// One run of the feed: from `replay` ago until it fails.
async fn read(
    client: &async_nats::Client,
    feed: &RevocationFeed,
    revocations: &Revocations,
) -> anyhow::Result<()> {
    crate::stream::reconnected(client).await;
    let js = crate::stream::jetstream(client.clone(), Duration::from_secs(5));
    // Identity may not have relayed anything yet: the stream is made as every
    // producer makes it.
    feed.topology.ensure_stream(&js).await?;
    let stream = js
        .get_stream(&feed.topology.stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {}: {e}", feed.topology.stream))?;
    let since = time::OffsetDateTime::now_utc()
        - time::Duration::try_from(feed.replay).unwrap_or(time::Duration::DAY);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: feed.topology.subject(EVENT_TYPE),
            deliver_policy: DeliverPolicy::ByStartTime { start_time: since },
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("revocation consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("revocation messages: {e}"))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!("revocation feed: {e}"))?;
        match decode(&message.payload) {
            Ok(revocation) => {
                if revocations.revoke(revocation.clone()) {
                    tracing::info!(subject = ?revocation.subject, "access tokens revoked");
                }
            }
            // Nothing can be done with it; the next one may be fine.
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed revocation"),
        }
    }
    anyhow::bail!("the revocation feed ended")
}
