//! A tenant's finance settings: the invoice number prefix and counter, and whether an
//! approved invoice is pushed to Xero. One row per tenant, made on first use (the
//! first invoice, or the first change of a setting).

use fusion_db::TenantTx;

use crate::error::FinanceError;

/// The row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct SettingsRow {
    pub invoice_number_prefix: String,
    pub next_invoice_number: i64,
    pub sync_on_approval: bool,
    pub version: i64,
}

/// The tenant's settings, locked for the transaction (made with defaults when missing).
pub(crate) async fn lock(tx: &mut TenantTx) -> Result<SettingsRow, FinanceError> {
    sqlx::query("INSERT INTO finance.settings (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(tx.tenant_id())
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_as(
        "SELECT invoice_number_prefix, next_invoice_number, sync_on_approval, version
           FROM finance.settings WHERE tenant_id = $1 FOR UPDATE",
    )
    .bind(tx.tenant_id())
    .fetch_one(&mut **tx)
    .await?)
}

/// The tenant's settings as they are (defaults when never changed).
pub(crate) async fn read(tx: &mut TenantTx) -> Result<SettingsRow, FinanceError> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT invoice_number_prefix, next_invoice_number, sync_on_approval, version
           FROM finance.settings WHERE tenant_id = $1",
    )
    .bind(tx.tenant_id())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.unwrap_or(SettingsRow {
        invoice_number_prefix: "INV-".to_owned(),
        next_invoice_number: 1,
        sync_on_approval: false,
        version: 1,
    }))
}

/// Sets the prefix and the approval sync, bumping the version (etag).
pub(crate) async fn write(
    tx: &mut TenantTx,
    prefix: &str,
    sync_on_approval: bool,
) -> Result<SettingsRow, FinanceError> {
    Ok(sqlx::query_as(
        "UPDATE finance.settings
            SET invoice_number_prefix = $2, sync_on_approval = $3, version = version + 1,
                updated_at = now()
          WHERE tenant_id = $1
      RETURNING invoice_number_prefix, next_invoice_number, sync_on_approval, version",
    )
    .bind(tx.tenant_id())
    .bind(prefix)
    .bind(sync_on_approval)
    .fetch_one(&mut **tx)
    .await?)
}
