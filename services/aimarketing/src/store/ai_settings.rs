//! A tenant's AI settings: one row, made on the first change; until then the
//! defaults (the platform's provider, every model allowed) at version 0.

use fusion_db::TenantTx;

use crate::error::AiMarketingError;

/// The settings as stored; the API key sealed (see `settings::cipher`).
#[derive(Clone, Debug, Default)]
pub(crate) struct SettingsRow {
    pub base_url: Option<String>,
    pub api_key: Option<Vec<u8>>,
    pub default_model: Option<String>,
    /// Empty allows every model.
    pub allowed_models: Vec<String>,
    /// 0 until the first change.
    pub version: i64,
}

/// The row as read (the models a JSON array).
#[derive(sqlx::FromRow)]
struct Stored {
    base_url: Option<String>,
    api_key: Option<Vec<u8>>,
    default_model: Option<String>,
    allowed_models: sqlx::types::Json<Vec<String>>,
    version: i64,
}

/// The transaction's tenant's settings (the defaults when it has none); `lock` holds
/// the row until the transaction ends.
pub(crate) async fn read(tx: &mut TenantTx, lock: bool) -> Result<SettingsRow, AiMarketingError> {
    let sql = if lock {
        "SELECT base_url, api_key, default_model, allowed_models, version
           FROM ai_marketing.ai_settings FOR UPDATE"
    } else {
        "SELECT base_url, api_key, default_model, allowed_models, version
           FROM ai_marketing.ai_settings"
    };
    let stored: Option<Stored> = sqlx::query_as(sql).fetch_optional(&mut **tx).await?;
    Ok(stored.map_or_else(SettingsRow::default, |s| SettingsRow {
        base_url: s.base_url,
        api_key: s.api_key,
        default_model: s.default_model,
        allowed_models: s.allowed_models.0,
        version: s.version,
    }))
}

/// Writes `row` as the transaction's tenant's settings, one version after `row.version`.
pub(crate) async fn write(tx: &mut TenantTx, row: &SettingsRow) -> Result<i64, AiMarketingError> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO ai_marketing.ai_settings
             (tenant_id, base_url, api_key, default_model, allowed_models, version)
         VALUES ($1, $2, $3, $4, $5, $6 + 1)
         ON CONFLICT (tenant_id) DO UPDATE
            SET base_url = EXCLUDED.base_url, api_key = EXCLUDED.api_key,
                default_model = EXCLUDED.default_model,
                allowed_models = EXCLUDED.allowed_models,
                version = ai_settings.version + 1, updated_at = now()
         RETURNING version",
    )
    .bind(tx.tenant_id())
    .bind(&row.base_url)
    .bind(&row.api_key)
    .bind(&row.default_model)
    .bind(sqlx::types::Json(&row.allowed_models))
    .bind(row.version)
    .fetch_one(&mut **tx)
    .await?;
    Ok(version)
}
