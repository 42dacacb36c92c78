//! Writing events inside the tenant-bound unit of work of the change they announce.

use fusion_db::{Error, Kind, TenantTx};
use uuid::Uuid;

use crate::Event;

/// The error domain of the event plumbing itself.
pub(crate) const DOMAIN: &str = fusion_proto::errors::PLATFORM_DOMAIN;

/// Checks a schema name before it is put into SQL (schemas are constants of each
/// service, never input).
pub(crate) fn table(schema: &str, table: &str) -> String {
    assert!(
        !schema.is_empty() && schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name {schema:?} must be lowercase letters and underscores"
    );
    format!("{schema}.{table}")
}

/// Appends `event` to `<schema>.outbox_events` in `tx`, for the tenant `tx` is bound
/// to, with the W3C trace context of the current span; returns the event's id. It is
/// published only if `tx` commits.
///
/// Append after locking the aggregate's row (as every state change does): that is what
/// makes one aggregate's outbox ids follow its commit order (see the crate docs).
pub async fn append(tx: &mut TenantTx, schema: &str, event: Event) -> Result<Uuid, Error> {
    let event_id = Uuid::now_v7();
    let (traceparent, tracestate) = current_trace_context();
    // The notification is delivered when (and only if) the transaction commits, and
    // wakes the relay at once instead of at its next poll.
    let sql = format!(
        "WITH appended AS (
             INSERT INTO {} (event_id, tenant_id, event_type, aggregate_type, aggregate_id,
                             payload, traceparent, tracestate)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING 1)
         SELECT pg_notify($9, '') FROM appended",
        table(schema, "outbox_events")
    );
    let tenant = tx.tenant_id();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(event_id)
        .bind(tenant)
        .bind(&event.event_type)
        .bind(&event.aggregate_type)
        .bind(event.aggregate_id)
        .bind(&event.payload)
        .bind(traceparent)
        .bind(tracestate)
        .bind(channel(schema))
        .execute(&mut **tx)
        .await
        .map_err(|e| Error::from_sqlx(DOMAIN, e))?;
    Ok(event_id)
}

/// The notification channel a commit that appended to `schema`'s outbox signals.
pub(crate) fn channel(schema: &str) -> String {
    format!("fusion_outbox_{schema}")
}

/// The current span's `traceparent` and `tracestate` (empty when it is not traced).
pub(crate) fn current_trace_context() -> (String, String) {
    let mut headers = http::HeaderMap::new();
    fusion_telemetry::inject_context(&mut headers);
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (get("traceparent"), get("tracestate"))
}

/// A database error that is worth retrying later rather than blaming the event for.
pub(crate) fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<Error>()
            .is_some_and(|e| matches!(e.kind(), Kind::Unavailable(..)))
            || cause.downcast_ref::<sqlx::Error>().is_some_and(|e| {
                matches!(
                    e,
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
                )
            })
    })
}
