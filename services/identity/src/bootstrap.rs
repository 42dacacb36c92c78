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
    PLATFORM_TENANT_SLUG, SERVICE_TOKENS_ISSUE, tenant_permissions,
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
