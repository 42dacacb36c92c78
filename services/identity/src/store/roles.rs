//! `identity.roles` and who holds them (`identity.role_user`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;

use crate::DOMAIN;
use crate::error::IdentityError;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "identity.roles",
    select: "id, tenant_id, name, description, permissions, built_in, version, created_at, updated_at, deleted_at",
    what: "role",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("built_in", "built_in", FieldKind::Bool),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "create_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct RoleRow {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(RoleRow);

/// The live roles user `user_id` holds, by name: their names and, in the same order,
/// their ids.
pub(crate) async fn held_by(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<(Vec<String>, Vec<i64>), IdentityError> {
    let held: Vec<(String, i64)> = sqlx::query_as(
        "SELECT r.name, r.id FROM identity.role_user ru JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id
         WHERE ru.user_id = $1 AND r.deleted_at IS NULL ORDER BY r.name, r.id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(held.into_iter().unzip())
}

/// The live roles of the transaction's tenant among `ids`.
pub(crate) async fn live_by_id(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<RoleRow>, IdentityError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT id, tenant_id, name, description, permissions, built_in, version, created_at, updated_at, deleted_at
         FROM identity.roles WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id",
    )
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(IdentityError::from)
}

/// The id of the live built-in role `name` of the transaction's tenant.
pub(crate) async fn built_in_id(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<i64>, IdentityError> {
    sqlx::query_scalar(
        "SELECT id FROM identity.roles WHERE name = $1 AND built_in AND deleted_at IS NULL",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(IdentityError::from)
}

/// Gives role `role_id` to user `user_id` (nothing if they hold it already).
pub(crate) async fn assign(
    conn: &mut PgConnection,
    tenant_id: i64,
    role_id: i64,
    user_id: i64,
) -> Result<(), IdentityError> {
    sqlx::query(
        "INSERT INTO identity.role_user (tenant_id, role_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(role_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes role `role_id` from user `user_id` (nothing if they do not hold it).
pub(crate) async fn unassign(
    conn: &mut PgConnection,
    role_id: i64,
    user_id: i64,
) -> Result<(), IdentityError> {
    sqlx::query("DELETE FROM identity.role_user WHERE role_id = $1 AND user_id = $2")
        .bind(role_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether taking user `user_id` out of the tenant's active people (deactivating or
/// deleting them) would leave it with no live, active person holding the built-in
/// `admin` role. The admin role row is locked first, so two such changes to the last
/// two admins cannot both pass.
pub(crate) async fn would_leave_no_admin(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<bool, IdentityError> {
    let role: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM identity.roles
         WHERE name = 'admin' AND built_in AND deleted_at IS NULL FOR UPDATE",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(role) = role else {
        return Ok(false);
    };
    let (holds, others): (bool, i64) = sqlx::query_as(
        "SELECT coalesce(bool_or(u.id = $2), false),
                count(*) FILTER (WHERE u.id <> $2)
           FROM identity.role_user ru
           JOIN identity.users u ON u.tenant_id = ru.tenant_id AND u.id = ru.user_id
          WHERE ru.role_id = $1 AND u.deleted_at IS NULL AND u.active AND u.kind = 'person'",
    )
    .bind(role)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(holds && others == 0)
}

/// How many live, active people hold role `role_id` (a service account holding it
/// administers nothing by itself).
pub(crate) async fn active_holders(
    conn: &mut PgConnection,
    role_id: i64,
) -> Result<i64, IdentityError> {
    sqlx::query_scalar(
        "SELECT count(*) FROM identity.role_user ru JOIN identity.users u ON u.tenant_id = ru.tenant_id AND u.id = ru.user_id
         WHERE ru.role_id = $1 AND u.deleted_at IS NULL AND u.active AND u.kind = 'person'",
    )
    .bind(role_id)
    .fetch_one(conn)
    .await
    .map_err(IdentityError::from)
}

/// The (role, permission) pairs already given to every tenant's built-in roles.
pub(crate) async fn rolled_out_grants(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String)>, IdentityError> {
    sqlx::query_as("SELECT role_name, permission FROM identity.built_in_grants")
        .fetch_all(conn)
        .await
        .map_err(IdentityError::from)
}

/// Records that `role` has been given `permissions` in every tenant.
pub(crate) async fn record_rollout(
    conn: &mut PgConnection,
    role: &str,
    permissions: &[String],
) -> Result<(), IdentityError> {
    sqlx::query(
        "INSERT INTO identity.built_in_grants (role_name, permission)
         SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(role)
    .bind(permissions)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `permissions` to the live built-in role `role` of the transaction's tenant,
/// keeping its own; whether it changed (it lacked one of them).
pub(crate) async fn grant_to_built_in(
    conn: &mut PgConnection,
    role: &str,
    permissions: &[String],
) -> Result<bool, IdentityError> {
    let done = sqlx::query(
        "UPDATE identity.roles
         SET permissions = ARRAY(SELECT DISTINCT p FROM unnest(permissions || $2::text[]) AS p ORDER BY p),
             version = version + 1,
             updated_at = now()
         WHERE built_in AND name = $1 AND deleted_at IS NULL AND NOT permissions @> $2::text[]",
    )
    .bind(role)
    .bind(permissions)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every permission user (or service account) `user_id` holds through its live roles,
/// sorted: what a caller must hold to change it.
pub(crate) async fn permissions_of(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<Vec<String>, IdentityError> {
    sqlx::query_scalar(
        "SELECT DISTINCT p FROM identity.role_user ru
           JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id
           CROSS JOIN LATERAL unnest(r.permissions) AS p
         WHERE ru.user_id = $1 AND r.deleted_at IS NULL ORDER BY p",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
    .map_err(IdentityError::from)
}
