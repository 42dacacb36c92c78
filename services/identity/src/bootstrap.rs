//! Creating the platform tenant and its first operator, idempotently.
//!
//! Tenants are created by a platform role that lives outside every customer tenant:
//! the `platform` tenant, whose `platform_admin` role holds the platform permissions.
//! `fusion-identity bootstrap-platform` (and the local stack) call [`ensure_platform`].

use fusion_db::Db;

use crate::auth::password::hash_password;
use crate::domain::permissions::{
    BuiltInRole, PLATFORM_ADMIN_ROLE, PLATFORM_PERMISSIONS, PLATFORM_TENANT_SLUG,
    tenant_permissions,
};
use crate::error::IdentityError;
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
