//! Integration events between Fusion's contexts: a transactional outbox, a relay to
//! NATS JetStream, and idempotent consumers.
//!
//! ```text
//!  producer's request ──▶ TenantTx: change + outbox::append ──commit──▶ <schema>.outbox_events
//!                                                                         │ relay (FOR UPDATE SKIP LOCKED,
//!                                                                         ▼  id order, mark after PubAck)
//!                           JetStream stream FUSION, subjects fusion.<context>.<aggregate>.<event>
//!                                                                         │ durable pull consumer
//!                                                                         ▼  (explicit ack)
//!  consumer: Db::begin(envelope.tenant_id): inbox row + handler's effect ──commit──▶ ack
//! ```
//!
//! - [`outbox::append`] writes an [`Event`] inside the tenant-bound unit of work of the
//!   change it announces, so the event exists if and only if the change commits. It
//!   records the W3C trace context of the current span.
//! - [`relay`]: one background task per producing service. It claims unsent rows with
//!   `FOR UPDATE SKIP LOCKED` (never "rows past a cursor": a transaction that took a
//!   smaller id and committed later is still seen), publishes each as an
//!   [`EventEnvelope`](fusion_proto::common::v1::EventEnvelope) with `Nats-Msg-Id` set
//!   to the event's UUID, and marks a row sent only after its PubAck. While the broker
//!   is down it retries with exponential backoff and the rows wait; writes never fail
//!   for it. A republish after a crash between PubAck and mark falls inside the stream's
//!   duplicate window and is dropped by JetStream. Sent rows are pruned after a
//!   retention. It connects as the owner role, whose only cross-tenant policy on these
//!   tables is `relay` on `<schema>.outbox_events`.
//! - [`consumer`]: a durable JetStream pull consumer per (service, purpose). For each
//!   message it opens a transaction bound to the envelope's tenant, inserts
//!   `(consumer, event_id)` into `<schema>.inbox_events` and runs the [`Handler`] in
//!   the same transaction, so a redelivery finds the inbox row and has no second
//!   effect. A handler that keeps failing is recorded in `<schema>.dead_letters` after
//!   `max_deliver` deliveries and acknowledged, and later events keep flowing. A
//!   database outage is not the event's fault: it is retried, never dead-lettered.
//!   A consumer of several types filters on one subject, their common prefix with
//!   wildcards (`fusion.crm.deal.*`: nats-server 2.9 knows no `filter_subjects`), and
//!   acknowledges the other types that subject matches without effect or inbox row.
//! - [`inbox`]: deletes inbox rows once the stream can no longer deliver their events
//!   again (the stream's age plus a day), in bounded batches, as the owner role.
//! - [`credentials`]: a consumer with [`ServiceCredentials`] acts in each event's
//!   tenant as its service's system account there ([`Delivery::caller`]): audit fields
//!   it writes name that account, calls it makes carry its token. A token that cannot
//!   be had is retried like a database outage, never dead-lettered.
//! - [`revocations`]: follows identity's `identity.access.revoked` into a process's
//!   deny list of tokens, with an ordered consumer per process (every replica sees
//!   every revocation).
//! - [`stream`]: connects to NATS and creates or updates the stream idempotently.
//! - [`EventMetrics`]: events relayed, relay lag (age of the oldest unsent event),
//!   consumer deliveries, failures and dead letters, for the service's `/metrics`.
//!
//! # Order per aggregate
//!
//! One aggregate's events are applied in the order they were committed:
//!
//! 1. **Ids follow commit order per aggregate.** A producer appends an event after it
//!    has locked the aggregate's row (`SELECT … FOR UPDATE`, as every state change in
//!    Fusion does), so a second transaction on the same aggregate takes its outbox id
//!    only after the first committed. (Across aggregates ids and commits may
//!    interleave; that is why the relay selects unsent rows rather than a cursor.)
//! 2. **The relay publishes in id order, one relay at a time.** Each claim holds a
//!    transaction-level advisory lock per schema, so a second replica of the service
//!    waits instead of publishing a later batch first. Publishes of a batch are
//!    pipelined on one connection (so they reach the stream in order) and marked up to
//!    the first one that failed; the rest are published again, in order, next round.
//! 3. **The consumer applies one message at a time.** By default a consumer allows one
//!    unacknowledged message (`max_ack_pending = 1`), so JetStream redelivers a failed
//!    message before it delivers anything after it, across all replicas of the
//!    consumer. A consumer whose effects do not depend on order may allow more.
//!
//! The price of (3) is throughput per consumer: one database transaction per event,
//! in sequence. That is ample for CRM events; a consumer that needs more can be split
//! by subject.

pub mod consumer;
pub mod credentials;
mod envelope;
pub mod inbox;
mod metrics;
pub mod outbox;
pub mod relay;
pub mod revocations;
pub mod stream;

pub use consumer::{ConsumerConfig, Consumers, Delivery, Handler, ServiceCaller};
pub use credentials::{CredentialsError, ServiceCredentials};
pub use envelope::{Event, decode_envelope};
pub use inbox::{InboxPruneConfig, InboxPruner};
pub use metrics::EventMetrics;
pub use relay::RelayConfig;
pub use revocations::RevocationFeed;
pub use stream::{Topology, connect};

/// Where services find NATS unless `NATS_URL` says otherwise.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
