//! `identity.users`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;

use crate::DOMAIN;
use crate::error::IdentityError;

/// Users are people: the rows of `identity.users` of kind `person`, read and written
/// through the `identity.people` view, so a service account (kind `service`) is not a
/// user to UserService (NOT_FOUND, not listed) and cannot be turned into one.
///
/// A user's roles (ids and display names, both ordered by name) are part of the row:
/// read with it, in the same statement, so Get and List show them without a second
/// query. The column `profile_photo_path` is the API's `profile_photo_uri`.
pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "identity.people",
    select: "id, tenant_id, name, email, email_verified_at, profile_photo_path, active, phone, settings, \
             last_login_at, version, created_at, updated_at, deleted_at, \
             ARRAY(SELECT r.name FROM identity.role_user ru \
                   JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id \
                   WHERE ru.user_id = people.id AND r.deleted_at IS NULL ORDER BY r.name, r.id) AS role_names, \
             ARRAY(SELECT r.id FROM identity.role_user ru \
                   JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id \
                   WHERE ru.user_id = people.id AND r.deleted_at IS NULL ORDER BY r.name, r.id) AS role_ids",
    what: "user",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("email", "email", FieldKind::Text),
    FieldSpec::new("phone", "phone", FieldKind::Text),
    FieldSpec::new("active", "active", FieldKind::Bool),
    FieldSpec::new("last_login_time", "last_login_at", FieldKind::Timestamp),
    FieldSpec::new(
        "email_verify_time",
        "email_verified_at",
        FieldKind::Timestamp,
    ),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "email", "create_time", "last_login_time"],
    default_order: "create_time",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub profile_photo_path: Option<String>,
    pub active: bool,
    pub phone: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub role_names: Vec<String>,
    pub role_ids: Vec<i64>,
}

fusion_db::versioned!(UserRow);

/// Whether user `user_id` is live in the transaction's tenant.
pub(crate) async fn is_live(conn: &mut PgConnection, user_id: i64) -> Result<bool, IdentityError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM identity.users WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
    .map_err(IdentityError::from)
}

/// FAILED_PRECONDITION `USER_LIMIT_REACHED` unless tenant `tenant_id` (the
/// transaction's) has room under its plan's `max_users` for one more active user.
/// People only count: live (not deleted), active users of kind `person`; service and
/// system accounts never do. 0, or no plan, means no limit. The tenant's row is locked
/// until the transaction ends, so two concurrent creates, undeletes or activations
/// cannot both take the last place.
pub(crate) async fn ensure_room(
    conn: &mut PgConnection,
    tenant_id: i64,
) -> Result<(), IdentityError> {
    let max: Option<i32> = sqlx::query_scalar(
        "SELECT p.max_users FROM identity.tenants t
         LEFT JOIN identity.plans p ON p.id = t.plan_id
         WHERE t.id = $1
         FOR NO KEY UPDATE OF t",
    )
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let Some(max) = max.filter(|m| *m > 0) else {
        return Ok(());
    };
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.users
         WHERE kind = 'person' AND active AND deleted_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if active >= i64::from(max) {
        return Err(IdentityError::UserLimitReached { max });
    }
    Ok(())
}
