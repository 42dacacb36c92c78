//! AIP-155 request ids: a retried Create with the same `request_id` returns the first
//! result instead of creating twice. The response is saved in the same tenant-bound
//! transaction as the write, so either both happen or neither does.
//!
//! A request id names one request: it is saved with a SHA-256 digest of the request
//! message, and the same id sent with a different request is INVALID_ARGUMENT
//! (`REQUEST_ID_REUSED`) rather than a replay of an unrelated answer. Ids are kept for
//! [`RETENTION`].
//!
//! Each schema has:
//!
//! ```sql
//! CREATE TABLE <schema>.idempotency_keys (
//!     tenant_id  bigint      NOT NULL,
//!     method     text        NOT NULL,
//!     request_id uuid        NOT NULL,
//!     response   bytea       NOT NULL,
//!     request_digest bytea,  -- NULL only for ids saved before digests were kept
//!     created_at timestamptz NOT NULL DEFAULT now(),
//!     PRIMARY KEY (tenant_id, method, request_id)
//! );
//! ```
//! with row-level security like every tenant table.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use fusion_proto::errors::FieldViolation;

use crate::error::{Error, Kind};

/// How long a request id is remembered (AIP-155 asks for at least a day).
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a reused request id is refused.
pub const REUSED_REASON: &str = "REQUEST_ID_REUSED";

/// A client's request id together with a digest of the request it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestKey {
    /// The client's UUID.
    pub id: Uuid,
    digest: [u8; 32],
}

impl RequestKey {
    /// The SHA-256 of the request as encoded on the wire (the Fusion protos have no
    /// map fields, so equal messages encode to equal bytes).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// Parses a request id: empty means "not idempotent"; anything else must be a UUID.
pub fn parse_request_id(domain: &'static str, raw: &str) -> Result<Option<Uuid>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| Error::invalid(domain, "request_id", "must be a UUID"))
}

/// The key of `request` (which carries the raw id `raw`): `None` when no id was sent.
pub fn request_key<M: prost::Message>(
    domain: &'static str,
    raw: &str,
    request: &M,
) -> Result<Option<RequestKey>, Error> {
    Ok(parse_request_id(domain, raw)?.map(|id| RequestKey {
        id,
        digest: Sha256::digest(request.encode_to_vec()).into(),
    }))
}

/// Removes request ids older than [`RETENTION`] from `table` (a trusted constant),
/// across tenants: run on a pool connected as the owner role, which each schema's
/// `prune_expired` policy lets see exactly those rows. Returns how many went.
pub async fn prune(owner_pool: &sqlx::PgPool, table: &str) -> Result<u64, sqlx::Error> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(RETENTION).unwrap_or(chrono::Duration::MAX);
    let sql = format!("DELETE FROM {table} WHERE created_at < $1");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .execute(owner_pool)
        .await?
        .rows_affected())
}

fn reused(domain: &'static str) -> Error {
    Error::new(
        domain,
        Kind::InvalidBecause(
            REUSED_REASON,
            vec![FieldViolation::new(
                "request_id",
                "was already used for a different request; send a new request_id",
            )],
        ),
    )
}

/// The saved response of an earlier call with this request id, if any; INVALID_ARGUMENT
/// when the id was saved with a different request. Takes a lock on the key for the
/// rest of the transaction so concurrent retries wait for the first.
pub async fn lookup(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &str,
    tenant_id: i64,
    method: &str,
    key: &RequestKey,
) -> Result<Option<Vec<u8>>, Error> {
    // Serialise concurrent calls with the same key within this transaction.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(format!("{table}:{method}:{}", key.id))
        .bind(tenant_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| Error::from_sqlx(domain, e))?;
    let sql = format!(
        "SELECT response, request_digest FROM {table} \
         WHERE tenant_id = $1 AND method = $2 AND request_id = $3"
    );
    let saved: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(method)
        .bind(key.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| Error::from_sqlx(domain, e))?;
    match saved {
        Some((_, Some(digest))) if digest.as_slice() != key.digest.as_slice() => {
            Err(reused(domain))
        }
        Some((response, _)) => Ok(Some(response)),
        None => Ok(None),
    }
}

/// Records the response of the first call with this request id.
pub async fn save(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &str,
    tenant_id: i64,
    method: &str,
    key: &RequestKey,
    response: &[u8],
) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO {table} (tenant_id, method, request_id, request_digest, response) \
         VALUES ($1, $2, $3, $4, $5)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(method)
        .bind(key.id)
        .bind(key.digest.as_slice())
        .bind(response)
        .execute(&mut *conn)
        .await
        .map_err(|e| Error::from_sqlx(domain, e))?;
    Ok(())
}

/// The decoded response an earlier call with this request id returned, if any
/// ([`lookup`] for a protobuf response). `None` request id: nothing to replay.
pub async fn replay<M: prost::Message + Default>(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &str,
    tenant_id: i64,
    method: &str,
    key: Option<RequestKey>,
) -> Result<Option<M>, Error> {
    let Some(key) = key else {
        return Ok(None);
    };
    match lookup(conn, domain, table, tenant_id, method, &key).await? {
        Some(saved) => M::decode(saved.as_slice())
            .map(Some)
            .map_err(|e| Error::new(domain, Kind::Internal(Box::new(e)))),
        None => Ok(None),
    }
}

/// Records the protobuf response of the first call with this request id ([`save`]),
/// in the caller's transaction. `None` request id: nothing to record.
pub async fn remember<M: prost::Message>(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &str,
    tenant_id: i64,
    method: &str,
    key: Option<RequestKey>,
    response: &M,
) -> Result<(), Error> {
    match key {
        Some(key) => {
            save(
                conn,
                domain,
                table,
                tenant_id,
                method,
                &key,
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
        key: Option<RequestKey>,
    ) -> Result<Option<M>, Error> {
        let tenant = tx.tenant_id();
        replay(tx, self.domain, self.table, tenant, method, key).await
    }

    /// Records the response of the first call with this request id, in the same
    /// transaction (see [`remember`]).
    pub async fn remember<M: prost::Message>(
        &self,
        tx: &mut crate::TenantTx,
        method: &str,
        key: Option<RequestKey>,
        response: &M,
    ) -> Result<(), Error> {
        let tenant = tx.tenant_id();
        remember(tx, self.domain, self.table, tenant, method, key, response).await
    }
}
