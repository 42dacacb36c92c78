//! The Xero side of the store: the tenant's connection (tokens sealed, never
//! plaintext), the single-use OAuth states of connections being made, the Xero ids
//! kept on invoices and their lines, and the two cross-tenant reads the webhook and the
//! poll make as the jobs role (policy `xero_jobs`: connected rows only).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use fusion_db::TenantTx;

use crate::error::FinanceError;
use crate::store::invoices::{InvoiceRow, TABLE};

/// The connection's columns.
const CONNECTION: &str = "tenant_id, status, xero_tenant_id, xero_connection_id, \
    organisation_name, access_token, refresh_token, access_expires_at, connected_by_user_id, \
    connected_at, last_poll_at";

/// `status` of a connection in use.
pub(crate) const CONNECTED: &str = "connected";

/// A tenant's connection to its Xero organisation.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct ConnectionRow {
    pub tenant_id: i64,
    pub status: String,
    pub xero_tenant_id: String,
    pub xero_connection_id: Option<String>,
    pub organisation_name: String,
    /// Sealed (`crate::xero::TokenCipher`); none once disconnected.
    pub access_token: Option<Vec<u8>>,
    /// Sealed, like the access token.
    pub refresh_token: Option<Vec<u8>>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub connected_by_user_id: Option<i64>,
    pub connected_at: DateTime<Utc>,
    pub last_poll_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ConnectionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRow")
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .field("xero_tenant_id", &self.xero_tenant_id)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// The tenant's connection, if it ever connected; `lock` takes the row for the rest of
/// the transaction (one token refresher at a time).
pub(crate) async fn connection(
    tx: &mut TenantTx,
    lock: bool,
) -> Result<Option<ConnectionRow>, FinanceError> {
    let sql = format!(
        "SELECT {CONNECTION} FROM finance.xero_connections WHERE tenant_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.tenant_id())
        .fetch_optional(&mut **tx)
        .await?)
}

/// Keeps a new single-use `state` for `user_id` until `expires_at`, and forgets the
/// tenant's states that expired a day ago or more.
pub(crate) async fn insert_state(
    tx: &mut TenantTx,
    state: &str,
    user_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), FinanceError> {
    sqlx::query(
        "DELETE FROM finance.xero_states
          WHERE tenant_id = $1 AND expires_at < now() - interval '1 day'",
    )
    .bind(tx.tenant_id())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO finance.xero_states (state, tenant_id, user_id, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(state)
    .bind(tx.tenant_id())
    .bind(user_id)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Uses `state` up: true when it was this tenant's, unused and not expired (another
/// tenant's state is invisible here, as unknown as a forged one).
pub(crate) async fn take_state(tx: &mut TenantTx, state: &str) -> Result<bool, FinanceError> {
    let taken = sqlx::query(
        "UPDATE finance.xero_states SET used_at = now()
          WHERE state = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(state)
    .bind(tx.tenant_id())
    .execute(&mut **tx)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// A connection just made, its tokens sealed.
pub(crate) struct NewConnection<'a> {
    pub xero_tenant_id: &'a str,
    pub xero_connection_id: &'a str,
    pub organisation_name: &'a str,
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub user_id: i64,
}

/// Stores the tenant's connection (replacing any earlier one). When it is to another
/// organisation than before, the Xero ids of the tenant's invoices and lines point
/// into the old one: they are forgotten, so the next push creates them afresh there.
pub(crate) async fn connect(
    tx: &mut TenantTx,
    new: NewConnection<'_>,
) -> Result<ConnectionRow, FinanceError> {
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT xero_tenant_id FROM finance.xero_connections WHERE tenant_id = $1 FOR UPDATE",
    )
    .bind(tx.tenant_id())
    .fetch_optional(&mut **tx)
    .await?;
    let sql = format!(
        "INSERT INTO finance.xero_connections
             (tenant_id, status, xero_tenant_id, xero_connection_id, organisation_name,
              access_token, refresh_token, access_expires_at, connected_by_user_id)
         VALUES ($1, 'connected', $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id) DO UPDATE
            SET status = 'connected', xero_tenant_id = EXCLUDED.xero_tenant_id,
                xero_connection_id = EXCLUDED.xero_connection_id,
                organisation_name = EXCLUDED.organisation_name,
                access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
                access_expires_at = EXCLUDED.access_expires_at,
                connected_by_user_id = EXCLUDED.connected_by_user_id, connected_at = now(),
                last_poll_at = CASE WHEN finance.xero_connections.xero_tenant_id
                                         = EXCLUDED.xero_tenant_id
                                    THEN finance.xero_connections.last_poll_at END,
                version = finance.xero_connections.version + 1, updated_at = now()
         RETURNING {CONNECTION}"
    );
    let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.tenant_id())
        .bind(new.xero_tenant_id)
        .bind(new.xero_connection_id)
        .bind(new.organisation_name)
        .bind(new.access_token)
        .bind(new.refresh_token)
        .bind(new.access_expires_at)
        .bind(new.user_id)
        .fetch_one(&mut **tx)
        .await?;
    if previous.is_some_and(|previous| previous != new.xero_tenant_id) {
        forget_xero_ids(tx).await?;
    }
    Ok(row)
}

/// Forgets every Xero id of the tenant's invoices and lines (they belonged to an
/// organisation no longer connected).
async fn forget_xero_ids(tx: &mut TenantTx) -> Result<(), FinanceError> {
    sqlx::query(
        "UPDATE finance.invoice_items SET xero_line_item_id = NULL, updated_at = now()
          WHERE tenant_id = $1 AND xero_line_item_id IS NOT NULL",
    )
    .bind(tx.tenant_id())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE finance.invoices
            SET xero_invoice_id = NULL, xero_contact_id = NULL, xero_sync_status = 'not_synced',
                xero_sync_error = NULL, version = version + 1, updated_at = now()
          WHERE tenant_id = $1
            AND (xero_invoice_id IS NOT NULL OR xero_contact_id IS NOT NULL
                 OR xero_sync_status <> 'not_synced')",
    )
    .bind(tx.tenant_id())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces both tokens in one statement: Xero's refresh tokens are single use, so the
/// new one is stored with the access token it came with, or neither is.
pub(crate) async fn store_tokens(
    tx: &mut TenantTx,
    access_token: Vec<u8>,
    refresh_token: Vec<u8>,
    access_expires_at: DateTime<Utc>,
) -> Result<(), FinanceError> {
    sqlx::query(
        "UPDATE finance.xero_connections
            SET access_token = $2, refresh_token = $3, access_expires_at = $4,
                version = version + 1, updated_at = now()
          WHERE tenant_id = $1",
    )
    .bind(tx.tenant_id())
    .bind(access_token)
    .bind(refresh_token)
    .bind(access_expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets the tokens: the connection is `disconnected`.
pub(crate) async fn disconnect(tx: &mut TenantTx) -> Result<ConnectionRow, FinanceError> {
    let sql = format!(
        "UPDATE finance.xero_connections
            SET status = 'disconnected', access_token = NULL, refresh_token = NULL,
                access_expires_at = NULL, version = version + 1, updated_at = now()
          WHERE tenant_id = $1
      RETURNING {CONNECTION}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.tenant_id())
        .fetch_one(&mut **tx)
        .await?)
}

/// Records a poll that asked for the changes since `at`'s predecessor, started at `at`.
pub(crate) async fn set_last_poll(
    tx: &mut TenantTx,
    at: DateTime<Utc>,
) -> Result<(), FinanceError> {
    sqlx::query(
        "UPDATE finance.xero_connections SET last_poll_at = $2, updated_at = now()
          WHERE tenant_id = $1",
    )
    .bind(tx.tenant_id())
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The Xero contact another invoice of the tenant already has for crm contact
/// `contact_id`, the most recently pushed first.
pub(crate) async fn known_contact(
    tx: &mut TenantTx,
    contact_id: i64,
) -> Result<Option<String>, FinanceError> {
    Ok(sqlx::query_scalar(
        "SELECT xero_contact_id FROM finance.invoices
          WHERE tenant_id = $1 AND contact_id = $2 AND xero_contact_id IS NOT NULL
          ORDER BY last_synced_at DESC NULLS LAST, id DESC
          LIMIT 1",
    )
    .bind(tx.tenant_id())
    .bind(contact_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The live invoice pushed to Xero as `xero_invoice_id`, locked for the transaction.
pub(crate) async fn lock_by_xero_id(
    tx: &mut TenantTx,
    xero_invoice_id: &str,
) -> Result<Option<InvoiceRow>, FinanceError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE tenant_id = $1 AND xero_invoice_id = $2 AND deleted_at IS NULL
            FOR UPDATE",
        TABLE.select, TABLE.name
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.tenant_id())
        .bind(xero_invoice_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Whether the tenant has a live invoice pushed as `xero_invoice_id`.
pub(crate) async fn has_xero_invoice(
    tx: &mut TenantTx,
    xero_invoice_id: &str,
) -> Result<bool, FinanceError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM finance.invoices
                         WHERE tenant_id = $1 AND xero_invoice_id = $2 AND deleted_at IS NULL)",
    )
    .bind(tx.tenant_id())
    .bind(xero_invoice_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Sets each line's Xero id: `(line id, Xero line item id)`.
pub(crate) async fn set_line_ids(
    tx: &mut TenantTx,
    lines: &[(i64, String)],
) -> Result<(), FinanceError> {
    let (ids, xero_ids): (Vec<i64>, Vec<String>) = lines.iter().cloned().unzip();
    sqlx::query(
        "UPDATE finance.invoice_items li
            SET xero_line_item_id = v.xero_id, updated_at = now()
           FROM unnest($2::bigint[], $3::text[]) AS v(id, xero_id)
          WHERE li.tenant_id = $1 AND li.id = v.id
            AND li.xero_line_item_id IS DISTINCT FROM v.xero_id",
    )
    .bind(tx.tenant_id())
    .bind(ids)
    .bind(xero_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tenants connected to Xero organisation `xero_tenant_id` (several tenants may
/// share one), read across tenants as the jobs role.
pub(crate) async fn tenants_of(
    jobs: &PgPool,
    xero_tenant_id: &str,
) -> Result<Vec<i64>, FinanceError> {
    Ok(sqlx::query_scalar(
        "SELECT tenant_id FROM finance.xero_connections
          WHERE xero_tenant_id = $1 AND status = 'connected'
          ORDER BY tenant_id",
    )
    .bind(xero_tenant_id)
    .fetch_all(jobs)
    .await?)
}

/// A connected tenant as the poll sees it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Polled {
    pub tenant_id: i64,
    /// The changes to ask for: since the last poll, or since the connection was made.
    pub since: DateTime<Utc>,
}

/// Every connected tenant, read across tenants as the jobs role.
pub(crate) async fn connected(jobs: &PgPool) -> Result<Vec<Polled>, FinanceError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, coalesce(last_poll_at, connected_at) AS since
           FROM finance.xero_connections
          WHERE status = 'connected'
          ORDER BY tenant_id",
    )
    .fetch_all(jobs)
    .await?)
}
