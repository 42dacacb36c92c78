//! Projects: the table, its List spec and its row.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;

use sqlx::PgConnection;

use super::Table;
use crate::DOMAIN;
use crate::error::PropertyError;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.projects",
    select: "id, tenant_id, developer_id, name, slug, description, address, suburb, state, \
             postcode, country, latitude, longitude, status, total_lots, available_lots, \
             min_price, max_price, featured, currency, version, created_at, updated_at, deleted_at",
    what: "project",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("developer_id", "developer_id", FieldKind::Int),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("slug", "slug", FieldKind::Text),
    FieldSpec::new("suburb", "suburb", FieldKind::Text),
    FieldSpec::new("state", "state", FieldKind::Text),
    FieldSpec::new("postcode", "postcode", FieldKind::Text),
    FieldSpec::new("country", "country", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("featured", "featured", FieldKind::Bool),
    FieldSpec::new("latitude", "latitude", FieldKind::Decimal),
    FieldSpec::new("longitude", "longitude", FieldKind::Decimal),
    FieldSpec::new("lot_count", "total_lots", FieldKind::Int),
    FieldSpec::new("available_lot_count", "available_lots", FieldKind::Int),
    FieldSpec::new("min_price", "min_price", FieldKind::Decimal),
    FieldSpec::new("max_price", "max_price", FieldKind::Decimal),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "name",
        "create_time",
        "min_price",
        "max_price",
        "available_lot_count",
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: i64,
    pub(crate) developer_id: Option<i64>,
    pub(crate) name: String,
    pub(crate) slug: String,
    pub(crate) description: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) suburb: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) postcode: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) latitude: Option<Decimal>,
    pub(crate) longitude: Option<Decimal>,
    pub(crate) status: String,
    pub(crate) total_lots: Option<i32>,
    pub(crate) available_lots: Option<i32>,
    pub(crate) min_price: Option<Decimal>,
    pub(crate) max_price: Option<Decimal>,
    pub(crate) featured: bool,
    pub(crate) currency: String,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(ProjectRow);

/// Whether project `id` is live in the caller's tenant.
pub(crate) async fn is_live(conn: &mut PgConnection, id: i64) -> Result<bool, PropertyError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM property.projects WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(Into::into)
}
