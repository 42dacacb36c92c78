//! Service accounts (`identity.service_accounts`, a view of the `service` rows of
//! `identity.users`) and their client secrets (`identity.service_account_secrets`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;

use crate::DOMAIN;
use crate::error::IdentityError;

/// An account's roles are read with it, as a user's are.
pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "identity.service_accounts",
    select: "id, tenant_id, name, description, active, last_use_at, version, created_at, updated_at, deleted_at, \
             ARRAY(SELECT r.name FROM identity.role_user ru \
                   JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id \
                   WHERE ru.user_id = service_accounts.id AND r.deleted_at IS NULL ORDER BY r.name, r.id) AS role_names, \
             ARRAY(SELECT r.id FROM identity.role_user ru \
                   JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id \
                   WHERE ru.user_id = service_accounts.id AND r.deleted_at IS NULL ORDER BY r.name, r.id) AS role_ids",
    what: "service account",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("active", "active", FieldKind::Bool),
    FieldSpec::new("last_use_time", "last_use_at", FieldKind::Timestamp),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "create_time", "last_use_time"],
    default_order: "create_time",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
pub(crate) struct ServiceAccountRow {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub last_use_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub role_names: Vec<String>,
    pub role_ids: Vec<i64>,
}

fusion_db::versioned!(ServiceAccountRow);

/// A client secret as it is listed: its digest never leaves this module.
#[derive(sqlx::FromRow)]
pub(crate) struct SecretRow {
    pub id: i64,
    pub service_account_id: i64,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const SECRET_COLUMNS: &str = "id, service_account_id, prefix, created_at, last_used_at, revoked_at";

/// Whether service account `id` is live in the transaction's tenant, locking it (key
/// share) until commit so it cannot be deleted meanwhile.
pub(crate) async fn lock_live(conn: &mut PgConnection, id: i64) -> Result<bool, IdentityError> {
    Ok(fusion_db::resource::lock_live(conn, DOMAIN, TABLE.name, id).await?)
}

/// Whether service account `id` is live in the transaction's tenant, locking it
/// against other writers until commit: two secrets created at once are counted one
/// after the other, so neither passes the limit.
pub(crate) async fn lock_live_exclusive(
    conn: &mut PgConnection,
    id: i64,
) -> Result<bool, IdentityError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM identity.service_accounts WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// How many unrevoked secrets account `account_id` holds.
pub(crate) async fn unrevoked_count(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<i64, IdentityError> {
    sqlx::query_scalar(
        "SELECT count(*) FROM identity.service_account_secrets
         WHERE service_account_id = $1 AND revoked_at IS NULL",
    )
    .bind(account_id)
    .fetch_one(conn)
    .await
    .map_err(IdentityError::from)
}

/// Stores a new secret of account `account_id` by its digest and prefix.
pub(crate) async fn insert_secret(
    conn: &mut PgConnection,
    tenant_id: i64,
    account_id: i64,
    digest: &[u8],
    prefix: &str,
) -> Result<SecretRow, IdentityError> {
    let sql = format!(
        "INSERT INTO identity.service_account_secrets (tenant_id, service_account_id, secret_hash, prefix)
         VALUES ($1, $2, $3, $4) RETURNING {SECRET_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(account_id)
        .bind(digest)
        .bind(prefix)
        .fetch_one(conn)
        .await
        .map_err(IdentityError::from)
}

/// The unrevoked secrets of account `account_id`, newest first.
pub(crate) async fn unrevoked(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<Vec<SecretRow>, IdentityError> {
    let sql = format!(
        "SELECT {SECRET_COLUMNS} FROM identity.service_account_secrets
         WHERE service_account_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(account_id)
        .fetch_all(conn)
        .await
        .map_err(IdentityError::from)
}

/// Revokes secret `secret_id` of account `account_id` (a revoked one stays as it is)
/// and returns it; `None` when the account has no such secret.
pub(crate) async fn revoke(
    conn: &mut PgConnection,
    account_id: i64,
    secret_id: i64,
) -> Result<Option<SecretRow>, IdentityError> {
    let sql = format!(
        "UPDATE identity.service_account_secrets
         SET revoked_at = coalesce(revoked_at, now()), updated_at = now()
         WHERE id = $1 AND service_account_id = $2 RETURNING {SECRET_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(secret_id)
        .bind(account_id)
        .fetch_optional(conn)
        .await
        .map_err(IdentityError::from)
}

/// What IssueServiceToken checks a presented secret against: the digests of the
/// unrevoked secrets of a live, active service account of a live tenant. The account
/// row is locked until commit, so a concurrent delete or deactivation waits for the
/// token to be issued or issues none. The lock is the one the recorded use takes
/// anyway (`FOR NO KEY UPDATE`): two requests holding a share lock and then both
/// updating the row would deadlock, so requests of one account are serialised here.
pub(crate) async fn credentials(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<Vec<(i64, Vec<u8>)>, IdentityError> {
    let usable: Option<bool> = sqlx::query_scalar(
        "SELECT a.active AND t.deleted_at IS NULL
         FROM identity.service_accounts a JOIN identity.tenants t ON t.id = a.tenant_id
         WHERE a.id = $1 AND a.deleted_at IS NULL FOR NO KEY UPDATE OF a",
    )
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    if usable != Some(true) {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT id, secret_hash FROM identity.service_account_secrets
         WHERE service_account_id = $1 AND revoked_at IS NULL FOR SHARE",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await
    .map_err(IdentityError::from)
}

/// Records that secret `secret_id` of account `account_id` has just issued a token:
/// the secret's and the account's last use.
pub(crate) async fn record_use(
    conn: &mut PgConnection,
    account_id: i64,
    secret_id: i64,
) -> Result<(), IdentityError> {
    sqlx::query("UPDATE identity.service_account_secrets SET last_used_at = now() WHERE id = $1")
        .bind(secret_id)
        .execute(&mut *conn)
        .await?;
    record_account_use(conn, account_id).await
}

/// The platform tenant's account provisioned for `service` (client id
/// `sa_platform_<service>`), live or not, in the transaction's tenant.
pub(crate) async fn provisioned(
    conn: &mut PgConnection,
    service: &str,
) -> Result<Option<i64>, IdentityError> {
    sqlx::query_scalar("SELECT id FROM identity.users WHERE kind = 'service' AND service_name = $1")
        .bind(service)
        .fetch_optional(conn)
        .await
        .map_err(IdentityError::from)
}

/// The service account `account_id` was provisioned for, if it was.
pub(crate) async fn service_name_of(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<Option<String>, IdentityError> {
    let name: Option<Option<String>> = sqlx::query_scalar(
        "SELECT service_name FROM identity.users WHERE id = $1 AND kind = 'service'",
    )
    .bind(account_id)
    .fetch_optional(conn)
    .await?;
    Ok(name.flatten())
}

/// A tenant's system account for a platform service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SystemAccount {
    /// Its id (a user id: audit fields name it).
    pub id: i64,
    /// Live and active: the tenant's admin has neither deactivated nor deleted it.
    pub usable: bool,
}

/// The system account of `service` in tenant `tenant_id` (the transaction's), created
/// on first use with role `system_role_id`. Concurrent first uses make one account:
/// the unique index on `(tenant_id, service_name)` makes the second insert wait for the
/// first to commit and then do nothing, and the read after it sees the first's row.
/// The account is locked until commit as its recorded use would lock it (see
/// [`credentials`]), so a deactivation waits for the token.
pub(crate) async fn system_account(
    conn: &mut PgConnection,
    tenant_id: i64,
    service: &str,
    system_role_id: i64,
) -> Result<SystemAccount, IdentityError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO identity.users (tenant_id, kind, name, description, service_name)
         VALUES ($1, 'service', $2, $3, $2)
         ON CONFLICT (tenant_id, service_name) WHERE service_name IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(tenant_id)
    .bind(service)
    .bind(format!(
        "System account of the platform service {service}: what it does in this tenant \
         (consuming events) it does as this account. Deactivate it to stop that."
    ))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        crate::store::roles::assign(conn, tenant_id, system_role_id, id).await?;
        tracing::info!(
            tenant.id = tenant_id,
            service_account.id = id,
            service,
            "system account created"
        );
    }
    let (id, usable): (i64, bool) = sqlx::query_as(
        "SELECT id, active AND deleted_at IS NULL FROM identity.users
         WHERE kind = 'service' AND service_name = $1 FOR NO KEY UPDATE",
    )
    .bind(service)
    .fetch_one(conn)
    .await?;
    Ok(SystemAccount { id, usable })
}

/// Records that account `account_id` has just been issued a token.
pub(crate) async fn record_account_use(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<(), IdentityError> {
    sqlx::query(
        "UPDATE identity.users SET last_login_at = now() WHERE id = $1 AND kind = 'service'",
    )
    .bind(account_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes, across tenants, client secrets revoked more than `retention` ago; runs on
/// a pool connected as the owner, whose policy on the table sees revoked rows only.
pub async fn prune_revoked(
    owner_pool: &sqlx::PgPool,
    retention: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    Ok(sqlx::query(
        "DELETE FROM identity.service_account_secrets WHERE revoked_at IS NOT NULL AND revoked_at < $1",
    )
    .bind(cutoff)
    .execute(owner_pool)
    .await?
    .rows_affected())
}
