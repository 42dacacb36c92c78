//! `identity.plans`: the platform's plan catalogue (no tenant column). The columns keep
//! the seed's names; the API names them `monthly_price` (`price_monthly`),
//! `currency_code` (`currency`) and `max_user_count` (`max_users`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;

use crate::DOMAIN;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "identity.plans",
    select: "id, code, name, description, price_monthly, currency, max_users, features, active, version, \
             created_at, updated_at, deleted_at",
    what: "plan",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("code", "code", FieldKind::Text),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("currency_code", "currency", FieldKind::Text),
    FieldSpec::new("monthly_price", "price_monthly", FieldKind::Decimal),
    FieldSpec::new("max_user_count", "max_users", FieldKind::Int),
    FieldSpec::new("active", "active", FieldKind::Bool),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

/// The catalogue is the platform's, not a tenant's: every caller lists the same plans.
pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["code", "name", "monthly_price", "create_time"],
    default_order: "code",
    soft_delete: true,
    tenant_scoped: false,
};

#[derive(sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub price_monthly: Decimal,
    pub currency: String,
    pub max_users: i32,
    pub features: Vec<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(PlanRow);
