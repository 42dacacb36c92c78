//! Stages: the table, its List spec and its row.

use chrono::{DateTime, NaiveDate, Utc};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;

use super::Table;
use crate::DOMAIN;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.stages",
    select: "id, tenant_id, project_id, name, description, release_date, status, \"order\", \
             version, created_at, updated_at, deleted_at",
    what: "stage",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("project_id", "project_id", FieldKind::Int),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("release_date", "release_date", FieldKind::Date),
    FieldSpec::new("position", "\"order\"", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["position", "name", "release_date", "create_time"],
    default_order: "position",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct StageRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: i64,
    pub(crate) project_id: i64,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) release_date: Option<NaiveDate>,
    pub(crate) status: String,
    pub(crate) order: i32,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(StageRow);
