//! Media: the table, its List spec and its row, and the check that media blocks
//! deleting what it shows.

use chrono::{DateTime, Utc};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;

use sqlx::PgConnection;

use super::Table;
use crate::DOMAIN;
use crate::error::PropertyError;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.property_media",
    select: "id, tenant_id, mediable_type, mediable_id, file_name, file_path, file_size, \
             file_type, media_type, title, description, \"order\", checksum, version, \
             created_at, updated_at, deleted_at",
    what: "media item",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("mediable_type", "mediable_type", FieldKind::Text),
    FieldSpec::new("mediable_id", "mediable_id", FieldKind::Int),
    FieldSpec::new("media_type", "media_type", FieldKind::Text),
    FieldSpec::new("mime_type", "file_type", FieldKind::Text),
    FieldSpec::new("file_name", "file_name", FieldKind::Text),
    FieldSpec::new("file_size", "file_size", FieldKind::Int),
    FieldSpec::new("title", "title", FieldKind::Text),
    FieldSpec::new("position", "\"order\"", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["position", "create_time", "file_name", "file_size"],
    default_order: "position",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct MediaRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: i64,
    pub(crate) mediable_type: String,
    pub(crate) mediable_id: i64,
    pub(crate) file_name: String,
    pub(crate) file_path: String,
    pub(crate) file_size: i32,
    pub(crate) file_type: String,
    pub(crate) media_type: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) order: i32,
    pub(crate) checksum: Option<String>,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(MediaRow);

/// Refuses to delete a project, stage or lot that still has live media, as a parent
/// with live children is refused, so media never outlives what it shows.
pub(crate) async fn refuse_live_media(
    conn: &mut PgConnection,
    mediable_type: &'static str,
    id: i64,
) -> Result<(), PropertyError> {
    let has: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM property.property_media
                         WHERE mediable_type = $1 AND mediable_id = $2 AND deleted_at IS NULL)",
    )
    .bind(mediable_type)
    .bind(id)
    .fetch_one(conn)
    .await?;
    if has {
        Err(PropertyError::HasMedia { mediable_type, id })
    } else {
        Ok(())
    }
}
