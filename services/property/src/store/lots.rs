//! Lots: the table, its List spec and row, and the statements of the lot lifecycle
//! and its histories.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::types::Json;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;

use fusion_db::list::{ListParams, Page, ScopeValue, list};
use fusion_tenancy::TenantContext;
use sqlx::PgConnection;

use super::Table;
use crate::domain::lifecycle::LotStatus;
use crate::error::PropertyError;
use crate::stock::LotRef;
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.lots",
    select: "id, tenant_id, stage_id, project_id, lot_number, street_number, street_name, price, \
             land_size, land_price, house_price, bedrooms, bathrooms, garage, description, features, \
             status, sale_status, estimated_completion, hold_expires_at, reserved_price, deal_id, \
             version, created_at, updated_at, deleted_at, \
             (SELECT p.currency FROM property.projects p WHERE p.id = lots.project_id) AS currency, \
             ARRAY(SELECT lf.feature_id FROM property.lot_features lf JOIN property.features f ON f.id = lf.feature_id \
             WHERE lf.lot_id = lots.id AND f.deleted_at IS NULL ORDER BY lf.feature_id) AS feature_ids",
    what: "lot",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("stage_id", "stage_id", FieldKind::Int),
    FieldSpec::new("project_id", "project_id", FieldKind::Int),
    FieldSpec::new("lot_number", "lot_number", FieldKind::Text),
    FieldSpec::new("street_name", "street_name", FieldKind::Text),
    FieldSpec::new("price", "price", FieldKind::Decimal),
    FieldSpec::new("land_size", "land_size", FieldKind::Decimal),
    FieldSpec::new("land_price", "land_price", FieldKind::Decimal),
    FieldSpec::new("house_price", "house_price", FieldKind::Decimal),
    FieldSpec::new("bedrooms", "bedrooms", FieldKind::Int),
    FieldSpec::new("bathrooms", "bathrooms", FieldKind::Decimal),
    FieldSpec::new("garage", "garage", FieldKind::Int),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("sale_status", "sale_status", FieldKind::Text),
    FieldSpec::new(
        "estimated_completion_date",
        "estimated_completion",
        FieldKind::Date,
    ),
    FieldSpec::new("features", "features", FieldKind::Tags),
    // The project's location, for a bounding box over lots.
    FieldSpec::new(
        "latitude",
        "(SELECT p.latitude FROM property.projects p WHERE p.id = lots.project_id)",
        FieldKind::Decimal,
    ),
    FieldSpec::new(
        "longitude",
        "(SELECT p.longitude FROM property.projects p WHERE p.id = lots.project_id)",
        FieldKind::Decimal,
    ),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "price",
        "land_size",
        "lot_number",
        "bedrooms",
        "create_time",
        "status",
    ],
    default_order: "lot_number",
    soft_delete: true,
    tenant_scoped: true,
};

/// A lot as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct LotRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: i64,
    pub(crate) stage_id: i64,
    pub(crate) project_id: i64,
    pub(crate) lot_number: String,
    pub(crate) street_number: Option<String>,
    pub(crate) street_name: Option<String>,
    pub(crate) price: Option<Decimal>,
    pub(crate) land_size: Option<Decimal>,
    pub(crate) land_price: Option<Decimal>,
    pub(crate) house_price: Option<Decimal>,
    pub(crate) bedrooms: Option<i32>,
    pub(crate) bathrooms: Option<Decimal>,
    pub(crate) garage: Option<i32>,
    pub(crate) description: Option<String>,
    pub(crate) features: Json<Vec<String>>,
    pub(crate) status: String,
    pub(crate) sale_status: Option<String>,
    pub(crate) estimated_completion: Option<NaiveDate>,
    pub(crate) hold_expires_at: Option<DateTime<Utc>>,
    pub(crate) reserved_price: Option<Decimal>,
    /// The crm deal the lot is held, reserved or sold for (HoldLot and ReserveLot
    /// given a deal, or `crm.deal.won`); cleared when it returns to the market.
    pub(crate) deal_id: Option<i64>,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    pub(crate) feature_ids: Vec<i64>,
    /// The project's currency (not a column of lots).
    pub(crate) currency: String,
}

fusion_db::versioned!(LotRow);

impl LotRow {
    pub(crate) fn status(&self) -> LotStatus {
        // The table's CHECK admits only lifecycle names.
        LotStatus::parse(&self.status).unwrap_or(LotStatus::Withdrawn)
    }

    pub(crate) fn reference(&self) -> LotRef {
        LotRef {
            tenant_id: self.tenant_id,
            lot_id: self.id,
            project_id: self.project_id,
            stage_id: self.stage_id,
            lot_number: self.lot_number.clone(),
            price: self.price,
            currency: self.currency.clone(),
        }
    }
}

/// Records a price that takes effect now.
pub(crate) async fn record_price(
    conn: &mut PgConnection,
    tenant_id: i64,
    lot_id: i64,
    price: Decimal,
    reason: Option<&str>,
    actor_user_id: i64,
) -> Result<(), PropertyError> {
    sqlx::query(
        "INSERT INTO property.lot_price_history
             (tenant_id, lot_id, price, effective_from, applied_at, reason, actor_user_id)
         VALUES ($1, $2, $3, now(), now(), $4, $5)",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .bind(price)
    .bind(reason)
    .bind(actor_user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The project of live lot `lot_id` (NOT_FOUND otherwise); a lot's project never
/// changes, so it is safe to read before taking the project lock.
pub(crate) async fn project_of(conn: &mut PgConnection, lot_id: i64) -> Result<i64, PropertyError> {
    project(
        conn,
        lot_id,
        "SELECT project_id FROM property.lots WHERE id = $1 AND deleted_at IS NULL",
    )
    .await
}

/// The project of lot `lot_id`, live or deleted (for an undelete).
pub(crate) async fn project_of_any(
    conn: &mut PgConnection,
    lot_id: i64,
) -> Result<i64, PropertyError> {
    project(
        conn,
        lot_id,
        "SELECT project_id FROM property.lots WHERE id = $1",
    )
    .await
}

async fn project(
    conn: &mut PgConnection,
    lot_id: i64,
    sql: &'static str,
) -> Result<i64, PropertyError> {
    sqlx::query_scalar(sql)
        .bind(lot_id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| PropertyError::not_found("lot", lot_id))
}

/// The project of live stage `stage_id` (NOT_FOUND if it is not live).
pub(crate) async fn project_of_stage(
    conn: &mut PgConnection,
    stage_id: i64,
) -> Result<i64, PropertyError> {
    sqlx::query_scalar(
        "SELECT project_id FROM property.stages WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(stage_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| PropertyError::not_found("stage", stage_id))
}

/// Sets a lot's lifecycle state (its status, hold expiry and reserved price).
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    lot_id: i64,
    to: LotStatus,
    hold_until: Option<DateTime<Utc>>,
    reserved_price: Option<Decimal>,
) -> Result<(), PropertyError> {
    // A lot back on the market (or off it) belongs to no deal any more.
    sqlx::query(
        "UPDATE property.lots SET status = $2, hold_expires_at = $3, reserved_price = $4,
                deal_id = CASE WHEN $2 IN ('available', 'withdrawn') THEN NULL ELSE deal_id END,
                updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(lot_id)
    .bind(to.as_str())
    .bind(hold_until)
    .bind(reserved_price)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the deal lot `lot_id` is sold to.
pub(crate) async fn set_deal(
    conn: &mut PgConnection,
    lot_id: i64,
    deal_id: Option<i64>,
) -> Result<(), PropertyError> {
    sqlx::query("UPDATE property.lots SET deal_id = $2 WHERE id = $1")
        .bind(lot_id)
        .bind(deal_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The live lots of the transaction's tenant taken for deal `deal_id`, as
/// `(lot, project)`, ordered by project then lot (the order their locks are taken in).
pub(crate) async fn lots_of_deal(
    conn: &mut PgConnection,
    deal_id: i64,
) -> Result<Vec<(i64, i64)>, PropertyError> {
    Ok(sqlx::query_as(
        "SELECT id, project_id FROM property.lots
          WHERE deal_id = $1 AND deleted_at IS NULL
          ORDER BY project_id, id",
    )
    .bind(deal_id)
    .fetch_all(conn)
    .await?)
}

/// A price that takes effect later.
pub(crate) struct FuturePrice<'a> {
    pub(crate) price: Decimal,
    pub(crate) at: DateTime<Utc>,
    pub(crate) reason: Option<&'a str>,
}

/// Records a price dated in the future; the housekeeping job applies it when due.
pub(crate) async fn schedule_price(
    conn: &mut PgConnection,
    ctx: &TenantContext,
    lot_id: i64,
    p: FuturePrice<'_>,
) -> Result<(), PropertyError> {
    sqlx::query(
        "INSERT INTO property.lot_price_history
             (tenant_id, lot_id, price, effective_from, reason, actor_user_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ctx.tenant_id)
    .bind(lot_id)
    .bind(p.price)
    .bind(p.at)
    .bind(p.reason)
    .bind(ctx.user_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatusChangeRow {
    pub(crate) id: i64,
    pub(crate) lot_id: i64,
    pub(crate) from_status: Option<String>,
    pub(crate) to_status: String,
    pub(crate) reason: Option<String>,
    pub(crate) actor_user_id: Option<i64>,
    pub(crate) deal_id: Option<i64>,
    pub(crate) created_at: DateTime<Utc>,
}

const STATUS_CHANGES: ListSpec = ListSpec {
    table: "property.lot_status_history",
    select: "id, lot_id, from_status, to_status, reason, actor_user_id, deal_id, created_at",
    fields: &[FieldSpec::new(
        "change_time",
        "created_at",
        FieldKind::Timestamp,
    )],
    order_fields: &["change_time"],
    default_order: "change_time desc",
    soft_delete: false,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct PriceRow {
    pub(crate) id: i64,
    pub(crate) lot_id: i64,
    pub(crate) price: Decimal,
    pub(crate) effective_from: DateTime<Utc>,
    pub(crate) reason: Option<String>,
    pub(crate) actor_user_id: Option<i64>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) currency: String,
}

const PRICES: ListSpec = ListSpec {
    table: "property.lot_price_history",
    select: "id, lot_id, price, effective_from, reason, actor_user_id, created_at, \
             (SELECT p.currency FROM property.lots l JOIN property.projects p ON p.id = l.project_id \
             WHERE l.id = lot_price_history.lot_id) AS currency",
    fields: &[FieldSpec::new(
        "effective_time",
        "effective_from",
        FieldKind::Timestamp,
    )],
    order_fields: &["effective_time"],
    default_order: "effective_time desc",
    soft_delete: false,
    tenant_scoped: true,
};

/// One page of a live lot's status changes, newest first.
pub(crate) async fn status_changes(
    state: &AppState,
    ctx: &TenantContext,
    lot_id: i64,
    page_size: i32,
    page_token: String,
) -> Result<Page<StatusChangeRow>, PropertyError> {
    history(state, ctx, &STATUS_CHANGES, lot_id, page_size, page_token).await
}

/// One page of a live lot's prices, newest first.
pub(crate) async fn prices(
    state: &AppState,
    ctx: &TenantContext,
    lot_id: i64,
    page_size: i32,
    page_token: String,
) -> Result<Page<PriceRow>, PropertyError> {
    history(state, ctx, &PRICES, lot_id, page_size, page_token).await
}

/// A history List scoped to one live lot of the caller's tenant, newest first.
async fn history<T>(
    state: &AppState,
    ctx: &TenantContext,
    spec: &ListSpec,
    lot_id: i64,
    page_size: i32,
    page_token: String,
) -> Result<Page<T>, PropertyError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    fusion_db::resource::require_id(DOMAIN, "lot_id", lot_id)?;
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    project_of(&mut tx, lot_id).await?;
    let params = ListParams {
        page_size,
        page_token,
        ..ListParams::default()
    };
    let page = list::<T>(
        &mut tx,
        DOMAIN,
        spec,
        &params,
        &state.pages,
        Some(ctx.tenant_id),
        Some(&[("lot_id", ScopeValue::Int(lot_id))]),
    )
    .await?;
    tx.commit().await?;
    Ok(page)
}
