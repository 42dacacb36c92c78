//! AIP-155 request ids: a retried Create with the same `request_id` returns the first
//! result instead of creating twice. The response is saved in the same tenant-bound
//! transaction as the write, so either both happen or neither does.
//!
//! Each schema has:
//!
//! ```sql
//! CREATE TABLE <schema>.idempotency_keys (
//!     tenant_id  bigint      NOT NULL,
//!     method     text        NOT NULL,
//!     request_id uuid        NOT NULL,
//!     response   bytea       NOT NULL,
//!     created_at timestamptz NOT NULL DEFAULT now(),
//!     PRIMARY KEY (tenant_id, method, request_id)
//! );
//! ```
//! with row-level security like every tenant table.

use sqlx::PgConnection;
use tonic::Status;
use uuid::Uuid;

use crate::db_status;

/// Parses a request id: empty means "not idempotent"; anything else must be a UUID.
pub fn parse_request_id(domain: &str, raw: &str) -> Result<Option<Uuid>, Status> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| fusion_proto::errors::invalid_field(domain, "request_id", "must be a UUID"))
}

/// The saved response of an earlier call with this request id, if any. Takes a lock on
/// the key for the rest of the transaction so concurrent retries wait for the first.
pub async fn lookup(
    conn: &mut PgConnection,
    domain: &str,
    table: &str,
    tenant_id: i64,
    method: &str,
    request_id: Uuid,
) -> Result<Option<Vec<u8>>, Status> {
    // Serialise concurrent calls with the same key within this transaction.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(format!("{table}:{method}:{request_id}"))
        .bind(tenant_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_status(domain, e))?;
    let sql = format!(
        "SELECT response FROM {table} WHERE tenant_id = $1 AND method = $2 AND request_id = $3"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(method)
        .bind(request_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_status(domain, e))
}

/// Records the response of the first call with this request id.
pub async fn save(
    conn: &mut PgConnection,
    domain: &str,
    table: &str,
    tenant_id: i64,
    method: &str,
    request_id: Uuid,
    response: &[u8],
) -> Result<(), Status> {
    let sql = format!(
        "INSERT INTO {table} (tenant_id, method, request_id, response) VALUES ($1, $2, $3, $4)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(method)
        .bind(request_id)
        .bind(response)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_status(domain, e))?;
    Ok(())
}

/// The decoded response an earlier call with this request id returned, if any
/// ([`lookup`] for a protobuf response). `None` request id: nothing to replay.
pub async fn replay<M: prost::Message + Default>(
    conn: &mut PgConnection,
    domain: &str,
    table: &str,
    tenant_id: i64,
    method: &str,
    request_id: Option<Uuid>,
) -> Result<Option<M>, Status> {
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    match lookup(conn, domain, table, tenant_id, method, request_id).await? {
        Some(saved) => M::decode(saved.as_slice())
            .map(Some)
            .map_err(|_| fusion_proto::errors::internal(domain)),
        None => Ok(None),
    }
}

/// Records the protobuf response of the first call with this request id ([`save`]),
/// in the caller's transaction. `None` request id: nothing to record.
pub async fn remember<M: prost::Message>(
    conn: &mut PgConnection,
    domain: &str,
    table: &str,
    tenant_id: i64,
    method: &str,
    request_id: Option<Uuid>,
    response: &M,
) -> Result<(), Status> {
    match request_id {
        Some(request_id) => {
            save(
                conn,
                domain,
                table,
                tenant_id,
                method,
                request_id,
                &response.encode_to_vec(),
            )
            .await
        }
        None => Ok(()),
    }
}

/// A context's request-id bookkeeping: its error domain and its idempotency table (a
/// trusted constant), used inside a tenant-bound transaction.
#[derive(Clone, Copy, Debug)]
pub struct RequestIds {
    domain: &'static str,
    table: &'static str,
}

impl RequestIds {
    /// Request ids kept in `table`, errors in `domain`.
    pub const fn new(domain: &'static str, table: &'static str) -> Self {
        Self { domain, table }
    }

    /// The saved response of an earlier call to `method` with this request id, decoded
    /// (see [`replay`]).
    pub async fn replay<M: prost::Message + Default>(
        &self,
        tx: &mut crate::TenantTx,
        method: &str,
        request_id: Option<Uuid>,
    ) -> Result<Option<M>, Status> {
        let tenant = tx.tenant_id();
        replay(tx, self.domain, self.table, tenant, method, request_id).await
    }

    /// Records the response of the first call with this request id, in the same
    /// transaction (see [`remember`]).
    pub async fn remember<M: prost::Message>(
        &self,
        tx: &mut crate::TenantTx,
        method: &str,
        request_id: Option<Uuid>,
        response: &M,
    ) -> Result<(), Status> {
        let tenant = tx.tenant_id();
        remember(
            tx,
            self.domain,
            self.table,
            tenant,
            method,
            request_id,
            response,
        )
        .await
    }
}
