//! The rule every identity path that hands out access follows: nobody gives away, takes
//! away or changes more than they hold themselves.
//!
//! - Granting a role, whatever the path (AssignRole, CreateUser's and
//!   CreateServiceAccount's `role_ids`), needs AssignRole's permission
//!   ([`GRANT_PERMISSION`]), never grants a platform role, and needs the caller to hold
//!   every permission the role carries: someone who manages roles without being an
//!   admin cannot make anyone (themselves included) an admin. Taking a role away
//!   (UnassignRole) follows the same rule, so they cannot demote the admin either.
//! - A role's permissions are set or changed (CreateRole, UpdateRole, DeleteRole,
//!   UndeleteRole) only by a caller holding every permission the role carries, before
//!   and after. A tenant role never carries a platform permission at all (they are not
//!   in the tenant catalogue: INVALID_ARGUMENT).
//! - A user or service account is changed, activated or restored (its fields,
//!   password, secrets) only by a caller holding every permission it holds: setting
//!   the admin's password is becoming the admin. Deactivating or deleting one takes
//!   access away and escalates nothing, so it needs only the method's permission.
//!
//! The method's own permission (`identity.users.write`, ...) is the server layer's
//! (see `super::policy`); these checks depend on the request's data, so they run in
//! the handler, in its transaction, before anything is written.

use fusion_db::TenantTx;
use fusion_tenancy::TenantContext;

use crate::domain::permissions::is_platform_role;
use crate::error::IdentityError;
use crate::store;
use crate::store::roles::RoleRow;

/// The permission that grants roles, whatever the path (AssignRole's).
pub(crate) const GRANT_PERMISSION: &str = "identity.roles.write";

/// PERMISSION_DENIED naming the first of `permissions` the caller does not hold.
pub(crate) fn require_held(
    caller: &TenantContext,
    permissions: &[String],
) -> Result<(), IdentityError> {
    match permissions.iter().find(|p| !caller.has(p)) {
        Some(missing) => Err(IdentityError::PermissionDenied {
            permission: missing.clone(),
        }),
        None => Ok(()),
    }
}

/// Whether a role may be handed out through the API at all: every role but the
/// platform roles (`platform_admin`, `platform_service`), which bootstrap alone grants.
pub(crate) fn grantable(role: &RoleRow) -> Result<(), IdentityError> {
    if is_platform_role(&role.name) {
        return Err(IdentityError::BuiltInRole {
            refusal: "the platform role is assigned by bootstrap only",
        });
    }
    Ok(())
}

/// Whether the caller may grant (or take away) each of `roles`: AssignRole's
/// permission, never a platform role, and only permissions the caller holds.
pub(crate) fn may_grant(caller: &TenantContext, roles: &[RoleRow]) -> Result<(), IdentityError> {
    if roles.is_empty() {
        return Ok(());
    }
    require_held(caller, &[GRANT_PERMISSION.to_owned()])?;
    for role in roles {
        grantable(role)?;
        require_held(caller, &role.permissions)?;
    }
    Ok(())
}

/// Whether the caller may change user or service account `user_id`: it must hold
/// every permission that account holds (nothing for an account that is not there;
/// the method then answers NOT_FOUND as it would have).
pub(crate) async fn may_change_account(
    caller: &TenantContext,
    tx: &mut TenantTx,
    user_id: i64,
) -> Result<(), IdentityError> {
    let held = store::roles::permissions_of(tx, user_id).await?;
    require_held(caller, &held)
}
