//! `identity.tenants`: a platform table (a tenant's row is its own id; there is no
//! `tenant_id` column to police with row-level security), and creating a tenant with
//! its built-in roles and first admin.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;

use super::bind_tenant;
use crate::DOMAIN;
use crate::domain::permissions::{BuiltInRole, built_in_roles};
use crate::error::IdentityError;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "identity.tenants",
    select: "id, name, domain, slug, settings, plan_id, subscription_status, trial_ends_at, time_zone, \
             version, created_at, updated_at, deleted_at",
    what: "tenant",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("slug", "slug", FieldKind::Text),
    FieldSpec::new("domain", "domain", FieldKind::Text),
    FieldSpec::new(
        "subscription_status",
        "subscription_status",
        FieldKind::Text,
    ),
    FieldSpec::new("plan_id", "plan_id", FieldKind::Int),
    FieldSpec::new("time_zone", "time_zone", FieldKind::Text),
    FieldSpec::new("trial_end_time", "trial_ends_at", FieldKind::Timestamp),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

/// Only callers with `platform.tenants.read` list tenants (the method policy), and they
/// see every tenant.
pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "slug", "create_time"],
    default_order: "create_time",
    soft_delete: true,
    tenant_scoped: false,
};

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: i64,
    pub name: String,
    pub domain: Option<String>,
    pub slug: String,
    pub settings: Option<serde_json::Value>,
    pub plan_id: Option<i64>,
    pub subscription_status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(TenantRow);

/// A tenant to create.
#[derive(Debug, Clone)]
pub(crate) struct NewTenant {
    pub name: String,
    pub slug: String,
    pub domain: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub plan_id: Option<i64>,
    pub subscription_status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// An IANA zone name, already checked.
    pub time_zone: String,
}

/// Its first administrator, with the password already hashed.
#[derive(Debug, Clone)]
pub(crate) struct NewAdmin {
    pub name: String,
    pub email: String,
    pub password_hash: String,
}

/// Creates a tenant, its built-in roles (plus `extra_roles`) and its first admin, who
/// holds `admin` and every extra role. Runs inside `conn`'s transaction and leaves it
/// bound to the new tenant: the tenant-scoped inserts are checked by row-level security
/// like any other write. Returns the new tenant's id.
pub(crate) async fn create_with_admin(
    conn: &mut PgConnection,
    tenant: &NewTenant,
    admin: &NewAdmin,
    extra_roles: &[BuiltInRole],
) -> Result<i64, IdentityError> {
    let id: i64 =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('identity.tenants', 'id'))")
            .fetch_one(&mut *conn)
            .await?;
    bind_tenant(conn, id).await?;
    sqlx::query(
        "INSERT INTO identity.tenants (id, name, domain, slug, settings, plan_id, subscription_status, trial_ends_at, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(&tenant.name)
    .bind(&tenant.domain)
    .bind(&tenant.slug)
    .bind(&tenant.settings)
    .bind(tenant.plan_id)
    .bind(&tenant.subscription_status)
    .bind(tenant.trial_ends_at)
    .bind(&tenant.time_zone)
    .execute(&mut *conn)
    .await?;
    let user_id: i64 = sqlx::query_scalar(
        "INSERT INTO identity.users (tenant_id, name, email, password) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(id)
    .bind(&admin.name)
    .bind(admin.email.trim())
    .bind(&admin.password_hash)
    .fetch_one(&mut *conn)
    .await?;
    let roles = built_in_roles();
    for role in roles.iter().chain(extra_roles) {
        let role_id: i64 = sqlx::query_scalar(
            "INSERT INTO identity.roles (tenant_id, name, description, permissions, built_in)
             VALUES ($1, $2, $3, $4, true) RETURNING id",
        )
        .bind(id)
        .bind(role.name)
        .bind(role.description)
        .bind(&role.permissions)
        .fetch_one(&mut *conn)
        .await?;
        if role.name == "admin" || extra_roles.iter().any(|r| r.name == role.name) {
            sqlx::query(
                "INSERT INTO identity.role_user (tenant_id, role_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(role_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(id)
}

/// What a token of a tenant says about it: its zone, and whether its subscription
/// lets it have tokens at all and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Standing {
    /// The tenant's IANA time zone.
    pub time_zone: String,
    /// `subscription_status` is `inactive`: no tokens.
    pub inactive: bool,
    /// From when the tenant reads only: the end of its trial, for a tenant on trial.
    pub read_only_from: Option<DateTime<Utc>>,
}

/// The [`Standing`] of tenant `id` (a writable UTC tenant if the row is gone: the
/// callers have checked it exists).
pub(crate) async fn standing(conn: &mut PgConnection, id: i64) -> Result<Standing, IdentityError> {
    let row: Option<(String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT time_zone, subscription_status, trial_ends_at FROM identity.tenants WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((time_zone, status, trial_ends_at)) => Standing {
            time_zone,
            inactive: status == INACTIVE,
            read_only_from: trial_ends_at.filter(|_| status == TRIAL),
        },
        None => Standing {
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            inactive: false,
            read_only_from: None,
        },
    })
}

/// The `subscription_status` of a tenant whose users get no tokens.
pub(crate) const INACTIVE: &str = "inactive";

/// The `subscription_status` of a tenant on trial: it reads only once `trial_ends_at`
/// has passed.
pub(crate) const TRIAL: &str = "trial";

/// The zone of a tenant created without one: tenants record no country to derive a
/// zone from (the seed's `tenants` table has none, nor do their settings), so UTC.
pub(crate) const DEFAULT_TIME_ZONE: &str = "UTC";

/// Whether plan `plan_id` is live.
pub(crate) async fn plan_is_live(
    conn: &mut PgConnection,
    plan_id: i64,
) -> Result<bool, IdentityError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM identity.plans WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(plan_id)
    .fetch_one(conn)
    .await
    .map_err(IdentityError::from)
}

/// Ends every session of tenant `id` (it was deleted): revokes under that tenant's
/// scope, then binds the transaction back to `caller`'s.
pub(crate) async fn end_sessions(
    conn: &mut PgConnection,
    id: i64,
    caller: i64,
) -> Result<(), IdentityError> {
    bind_tenant(conn, id).await?;
    sqlx::query(
        "UPDATE identity.refresh_tokens SET revoked_at = now(), revoked_reason = 'tenant_deleted', updated_at = now()
         WHERE revoked_at IS NULL",
    )
    .execute(&mut *conn)
    .await?;
    bind_tenant(conn, caller).await
}

/// The platform tenant's id, if it exists and is live. Tenants are a platform table
/// (no row-level security), so any transaction may read it.
pub(crate) async fn platform_id(conn: &mut PgConnection) -> Result<Option<i64>, IdentityError> {
    sqlx::query_scalar("SELECT id FROM identity.tenants WHERE slug = $1 AND deleted_at IS NULL")
        .bind(crate::domain::permissions::PLATFORM_TENANT_SLUG)
        .fetch_optional(conn)
        .await
        .map_err(IdentityError::from)
}

/// Whether tenant `id` exists and is not deleted.
pub(crate) async fn is_live(conn: &mut PgConnection, id: i64) -> Result<bool, IdentityError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM identity.tenants WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(IdentityError::from)
}

/// Serialises seeding across processes for the rest of the transaction, then looks
/// the tenant with `slug` up.
pub(crate) async fn lock_seeding_and_find(
    conn: &mut PgConnection,
    slug: &str,
) -> Result<Option<i64>, IdentityError> {
    sqlx::query("SELECT pg_advisory_xact_lock(7317003)")
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT id FROM identity.tenants WHERE slug = $1")
        .bind(slug)
        .fetch_optional(conn)
        .await
        .map_err(IdentityError::from)
}
