//! Features: the table, its List spec and its row.

use chrono::{DateTime, Utc};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;

use super::Table;
use crate::DOMAIN;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.features",
    select: "id, tenant_id, name, category, description, version, created_at, updated_at, deleted_at",
    what: "feature",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("category", "category", FieldKind::Text),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "category", "create_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct FeatureRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: i64,
    pub(crate) name: String,
    pub(crate) category: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(FeatureRow);
