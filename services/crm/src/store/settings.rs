//! The tenant's CRM settings (its default country for phone numbers).

use chrono::{DateTime, Utc};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::{etag, ts};

use crate::AppState;
use crate::error::CrmError;

#[derive(sqlx::FromRow)]
pub(crate) struct SettingsRow {
    default_country: String,
    pub version: i64,
    updated_at: DateTime<Utc>,
}

/// The tenant's settings, or the defaults (version 0) while it has none stored.
pub(crate) async fn read_settings(
    state: &AppState,
    tx: &mut fusion_db::TenantTx,
    tenant: i64,
) -> Result<pb::CrmSettings, CrmError> {
    let row: Option<SettingsRow> =
        sqlx::query_as("SELECT default_country, version, updated_at FROM crm.tenant_settings")
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match row {
        Some(r) => pb::CrmSettings {
            tenant_id: tenant,
            default_region_code: r.default_country,
            update_time: Some(ts(r.updated_at)),
            etag: etag(r.version),
        },
        None => pb::CrmSettings {
            tenant_id: tenant,
            default_region_code: state.config.default_country.as_ref().to_owned(),
            update_time: None,
            etag: etag(0),
        },
    })
}

/// The tenant's stored settings, locked (when there are any) so concurrent updates see
/// each other.
pub(crate) async fn lock_settings(
    tx: &mut fusion_db::TenantTx,
) -> Result<Option<SettingsRow>, CrmError> {
    sqlx::query_as(
        "SELECT default_country, version, updated_at FROM crm.tenant_settings FOR UPDATE",
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(Into::into)
}

/// Stores the tenant's default country (an ISO 3166 code, already checked).
pub(crate) async fn save_default_country(
    tx: &mut fusion_db::TenantTx,
    tenant: i64,
    code: &str,
) -> Result<(), CrmError> {
    sqlx::query(
        "INSERT INTO crm.tenant_settings (tenant_id, default_country) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE
            SET default_country = EXCLUDED.default_country, updated_at = now(),
                version = crm.tenant_settings.version + 1",
    )
    .bind(tenant)
    .bind(code)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
