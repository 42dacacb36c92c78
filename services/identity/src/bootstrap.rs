//! Creating the platform tenant and its first operator, idempotently.
//!
//! Tenants are created by a platform role that lives outside every customer tenant:
//! the `platform` tenant, whose `platform_admin` role holds the platform permissions.
//! `fusion-identity bootstrap-platform` (and the local stack) call [`ensure_platform`].
//!
//! The platform tenant also holds one service account per platform service that
//! consumes events ([`ensure_platform_services`], from
//! `IDENTITY_PLATFORM_SERVICE_ACCOUNTS`): with it a service has tokens issued for its
//! system account in any tenant (IssueServiceToken with `tenant_id`).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use fusion_db::Db;

use crate::auth::client_secrets::{self, platform_client_id};
use crate::auth::password::hash_password;
use crate::config::PlatformServiceAccount;
use crate::domain::permissions::{
    BuiltInRole, PLATFORM_ADMIN_ROLE, PLATFORM_PERMISSIONS, PLATFORM_SERVICE_ROLE,
    PLATFORM_TENANT_SLUG, SERVICE_TOKENS_ISSUE, catalogue_grants, tenant_permissions,
};
use crate::error::IdentityError;
use crate::store::bind_tenant;
use crate::store::service_accounts::provisioned;
use crate::store::tenants::{
    DEFAULT_TIME_ZONE, NewAdmin, NewTenant, create_with_admin, lock_seeding_and_find,
};

/// The first admin of a tenant being created, with `password` hashed.
pub(crate) fn first_admin(
    name: String,
    email: &str,
    password: &str,
) -> Result<NewAdmin, IdentityError> {
    let password_hash = hash_password(password)?;
    Ok(NewAdmin {
        name,
        email: email.to_owned(),
        password_hash,
    })
}

/// Brings the built-in roles of every existing tenant up to the current permission
/// catalogue: each (role, permission) of [`catalogue_grants`] not yet rolled out is
/// added to that built-in role in every tenant (deleted ones too, should they be
/// restored), then recorded in `identity.built_in_grants`, so it is granted once and
/// a permission an admin later removes from a built-in role stays removed. Runs at
/// every start and after `migrate`; with nothing new it reads one small table. Safe to
/// run twice or on two replicas at once: granting is a union, recording ignores
/// duplicates, and a crash before recording means the next run grants again. Returns
/// how many tenant roles changed.
pub async fn reconcile_built_in_roles(db: &Db) -> Result<u64, IdentityError> {
    let mut tx = db.begin_unscoped().await?;
    let rolled_out: std::collections::HashSet<(String, String)> =
        crate::store::roles::rolled_out_grants(&mut tx)
            .await?
            .into_iter()
            .collect();
    let mut pending: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (role, permission) in catalogue_grants() {
        if !rolled_out.contains(&(role.to_owned(), permission.clone())) {
            pending.entry(role).or_default().push(permission);
        }
    }
    if pending.is_empty() {
        return Ok(0);
    }
    let tenants: Vec<i64> = sqlx::query_scalar("SELECT id FROM identity.tenants ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await.map_err(IdentityError::from)?;
    let mut changed = 0;
    for tenant_id in tenants {
        // One transaction per tenant: row-level security binds each to its tenant.
        let mut tx = db.begin(tenant_id).await?;
        for (role, permissions) in &pending {
            if crate::store::roles::grant_to_built_in(&mut tx, role, permissions).await? {
                changed += 1;
            }
        }
        tx.commit().await?;
    }
    let mut tx = db.begin_unscoped().await?;
    for (role, permissions) in &pending {
        crate::store::roles::record_rollout(&mut tx, role, permissions).await?;
    }
    tx.commit().await.map_err(IdentityError::from)?;
    tracing::info!(
        roles = changed,
        grants = pending.values().map(Vec::len).sum::<usize>(),
        "built-in roles brought up to the permission catalogue"
    );
    Ok(changed)
}

/// The platform tenant's id, creating it with `email`/`password` as its operator if
/// it does not exist yet. An existing platform tenant is left as it is.
pub async fn ensure_platform(db: &Db, email: &str, password: &str) -> Result<i64, IdentityError> {
    let mut tx = db.begin_unscoped().await?;
    if let Some(id) = lock_seeding_and_find(&mut tx, PLATFORM_TENANT_SLUG).await? {
        return Ok(id);
    }
    let mut permissions: Vec<String> = PLATFORM_PERMISSIONS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    permissions.extend(tenant_permissions());
    let platform_role = BuiltInRole {
        name: PLATFORM_ADMIN_ROLE,
        description: "Operates the platform: creates tenants, manages plans and signing keys.",
        permissions,
    };
    let id = create_with_admin(
        &mut tx,
        &NewTenant {
            name: "Fusion platform".to_owned(),
            slug: PLATFORM_TENANT_SLUG.to_owned(),
            domain: None,
            settings: None,
            plan_id: None,
            subscription_status: "active".to_owned(),
            trial_ends_at: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
        },
        &first_admin("Platform operator".to_owned(), email, password)?,
        &[platform_role],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = id, "platform tenant created");
    Ok(id)
}

/// The id of tenant `slug`, creating it (trial subscription, built-in roles, an admin
/// `admin_email` with `admin_password`) if it does not exist. Used to seed demo data.
pub async fn ensure_tenant(
    db: &Db,
    slug: &str,
    name: &str,
    admin_email: &str,
    admin_password: &str,
) -> Result<i64, IdentityError> {
    let mut tx = db.begin_unscoped().await?;
    if let Some(id) = lock_seeding_and_find(&mut tx, slug).await? {
        return Ok(id);
    }
    let id = create_with_admin(
        &mut tx,
        &NewTenant {
            name: name.to_owned(),
            slug: slug.to_owned(),
            domain: None,
            settings: None,
            plan_id: None,
            subscription_status: "trial".to_owned(),
            trial_ends_at: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
        },
        &first_admin(format!("{name} admin"), admin_email, admin_password)?,
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates or updates the platform service accounts `accounts` lists, in the platform
/// tenant: each service's account (named after the service, client id
/// `sa_platform_<service>`) holds the `platform_service` role (only
/// `platform.service_tokens.issue`, created here if missing) and exactly the secrets
/// configured for it: missing ones are added (as SHA-256 digests), others revoked. An
/// account an operator deactivated or deleted stays so (logged). Returns the platform
/// tenant's id, or `None` when there is no platform tenant yet (run
/// `bootstrap-platform`, which provisions them too).
pub async fn ensure_platform_services(
    db: &Db,
    accounts: &[PlatformServiceAccount],
) -> Result<Option<i64>, IdentityError> {
    let mut tx = db.begin_unscoped().await?;
    let Some(platform) = lock_seeding_and_find(&mut tx, PLATFORM_TENANT_SLUG).await? else {
        return Ok(None);
    };
    if accounts.is_empty() {
        return Ok(Some(platform));
    }
    bind_tenant(&mut tx, platform).await?;
    let role_id = ensure_platform_service_role(&mut tx, platform).await?;
    let mut secrets: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in accounts {
        secrets.entry(&a.service).or_default().push(&a.secret);
    }
    for (service, service_secrets) in secrets {
        let account_id = match provisioned(&mut tx, service).await? {
            Some(id) => id,
            None => {
                sqlx::query_scalar(
                    "INSERT INTO identity.users (tenant_id, kind, name, description, service_name)
                     VALUES ($1, 'service', $2, $3, $2) RETURNING id",
                )
                .bind(platform)
                .bind(service)
                .bind(format!(
                    "Platform service {service}: has tokens issued for its system account in each tenant \
                     (provisioned from IDENTITY_PLATFORM_SERVICE_ACCOUNTS)."
                ))
                .fetch_one(&mut *tx)
                .await?
            }
        };
        crate::store::roles::assign(&mut tx, platform, role_id, account_id).await?;
        let digests: Vec<Vec<u8>> = service_secrets
            .iter()
            .map(|s| client_secrets::digest(s))
            .collect();
        for (secret, digest) in service_secrets.iter().zip(&digests) {
            keep_secret(&mut tx, platform, account_id, digest, secret).await?;
        }
        let revoked = sqlx::query(
            "UPDATE identity.service_account_secrets SET revoked_at = now(), updated_at = now()
             WHERE service_account_id = $1 AND revoked_at IS NULL AND NOT secret_hash = ANY($2)",
        )
        .bind(account_id)
        .bind(&digests)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let usable: bool = sqlx::query_scalar(
            "SELECT active AND deleted_at IS NULL FROM identity.users WHERE id = $1",
        )
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        if !usable {
            tracing::warn!(
                service,
                "the platform service account is deactivated or deleted; left so"
            );
        }
        tracing::info!(
            service,
            client_id = %platform_client_id(service),
            service_account.id = account_id,
            secrets.revoked = revoked,
            "platform service account provisioned"
        );
    }
    tx.commit().await?;
    Ok(Some(platform))
}

/// The platform tenant's `platform_service` role, created, or brought back to its one
/// permission, as needed; its id.
async fn ensure_platform_service_role(
    conn: &mut PgConnection,
    platform: i64,
) -> Result<i64, IdentityError> {
    let permissions = vec![SERVICE_TOKENS_ISSUE.to_owned()];
    let found: Option<(i64, Vec<String>, bool)> = sqlx::query_as(
        "SELECT id, permissions, built_in FROM identity.roles
         WHERE name = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(PLATFORM_SERVICE_ROLE)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some((id, held, true)) if held == permissions => Ok(id),
        Some((id, _, _)) => {
            sqlx::query(
                "UPDATE identity.roles SET permissions = $2, built_in = true,
                        version = version + 1, updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&permissions)
            .execute(&mut *conn)
            .await?;
            Ok(id)
        }
        None => sqlx::query_scalar(
            "INSERT INTO identity.roles (tenant_id, name, description, permissions, built_in)
             VALUES ($1, $2, $3, $4, true) RETURNING id",
        )
        .bind(platform)
        .bind(PLATFORM_SERVICE_ROLE)
        .bind("Platform services (event consumers): tokens for their system account in any tenant.")
        .bind(&permissions)
        .fetch_one(&mut *conn)
        .await
        .map_err(IdentityError::from),
    }
}

/// Makes `digest` an unrevoked secret of account `account_id`: nothing if it is one,
/// un-revoked if it was one, added otherwise.
async fn keep_secret(
    conn: &mut PgConnection,
    platform: i64,
    account_id: i64,
    digest: &[u8],
    secret: &str,
) -> Result<(), IdentityError> {
    let restored = sqlx::query(
        "UPDATE identity.service_account_secrets
         SET revoked_at = NULL, updated_at = CASE WHEN revoked_at IS NULL THEN updated_at ELSE now() END
         WHERE service_account_id = $1 AND secret_hash = $2",
    )
    .bind(account_id)
    .bind(digest)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if restored == 0 {
        crate::store::service_accounts::insert_secret(
            conn,
            platform,
            account_id,
            digest,
            &client_secrets::configured_prefix(secret),
        )
        .await?;
    }
    Ok(())
}
