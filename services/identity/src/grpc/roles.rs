//! `fusion.identity.v1.RoleService`: built-in and custom roles, and who holds them.

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::ListSpec;
use fusion_db::page::{PageTokenCodec, page_size};
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::role_service_server::RoleService;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::replay::{self, Begun};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_tenancy::TenantContext;

use super::grants::{may_grant, require_held};
use super::opt_text;
use super::rpc;
use crate::auth::revocation::{Whose, revoke_access};
use crate::domain::permissions::{is_platform_role, is_tenant_permission, tenant_permissions};
use crate::domain::validate;
use crate::error::IdentityError;
use crate::store;
use crate::store::roles::{LIST, RoleRow, TABLE};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &["name", "description", "permissions"];

/// Sorted, de-duplicated permissions, or a description naming the unknown ones.
fn permissions(requested: &[String]) -> Result<Vec<String>, String> {
    let unknown: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|p| !is_tenant_permission(p))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown permissions: {} (see ListPermissions)",
            unknown.join(", ")
        ));
    }
    let mut perms = requested.to_vec();
    perms.sort();
    perms.dedup();
    Ok(perms)
}

/// Roles on the standard methods: built-in roles keep their names and cannot be
/// deleted, the platform roles do not change at all, and a caller sets, changes,
/// deletes or restores only roles whose permissions it holds, before and after
/// (`super::grants`).
struct Roles;

impl Resource for Roles {
    type Row = RoleRow;
    type Pb = pb::Role;
    type State = AppState;
    type Error = crate::error::IdentityError;

    const SINGULAR: &'static str = "Role";
    const FIELD: &'static str = "role";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["id", "tenant_id", "built_in"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: RoleRow) -> pb::Role {
        pb::Role {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            description: r.description.unwrap_or_default(),
            permissions: r.permissions,
            built_in: r.built_in,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(r: &pb::Role) -> i64 {
        r.id
    }

    fn etag(r: &pb::Role) -> &str {
        &r.etag
    }

    fn populated(r: &pb::Role) -> Vec<&'static str> {
        populated(&[
            ("name", !r.name.is_empty()),
            ("description", !r.description.is_empty()),
            ("permissions", !r.permissions.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        r: &pb::Role,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::IdentityError> {
        values_of(DOMAIN, "role", fields, |field| {
            Ok(Some(match field {
                "name" => {
                    validate::role_name(&r.name)?;
                    ("name", Val::Text(Some(r.name.clone())))
                }
                "description" => ("description", opt_text(&r.description)),
                "permissions" => ("permissions", Val::TextList(permissions(&r.permissions)?)),
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        r: &pb::Role,
        _: &mut Values,
    ) -> Result<(), crate::error::IdentityError> {
        require_held(call.caller, &r.permissions)
    }

    /// A role whose permissions or name change takes its holders' tokens with it: they
    /// carry the role's name and permissions as they were (a refresh issues the new).
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &RoleRow,
        r: &pb::Role,
        values: &mut Values,
    ) -> Result<(), crate::error::IdentityError> {
        let renaming = values.iter().any(|(column, _)| *column == "name");
        if current.built_in && renaming && r.name != current.name {
            return Err(IdentityError::BuiltInRole {
                refusal: "built-in roles cannot be renamed",
            });
        }
        if is_platform_role(&current.name) {
            return Err(IdentityError::BuiltInRole {
                refusal: "the platform role cannot be changed",
            });
        }
        require_held(call.caller, &current.permissions)?;
        if values.iter().any(|(column, _)| *column == "permissions") {
            require_held(call.caller, &r.permissions)?;
        }
        if values
            .iter()
            .any(|(column, _)| matches!(*column, "name" | "permissions"))
        {
            let whose = Whose::Role {
                id: current.id,
                name: current.name.clone(),
            };
            revoke_access(call.state, tx, whose, "role_changed").await?;
        }
        Ok(())
    }

    /// A deleted role's holders lose it now, not when their tokens expire.
    async fn on_delete(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &RoleRow,
    ) -> Result<(), crate::error::IdentityError> {
        if current.built_in {
            return Err(IdentityError::BuiltInRole {
                refusal: "built-in roles cannot be deleted",
            });
        }
        require_held(call.caller, &current.permissions)?;
        let whose = Whose::Role {
            id: current.id,
            name: current.name.clone(),
        };
        revoke_access(call.state, tx, whose, "role_deleted").await
    }

    /// Restoring a role gives its permissions back to everyone who held it.
    async fn on_undelete(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &RoleRow,
    ) -> Result<(), crate::error::IdentityError> {
        require_held(call.caller, &current.permissions)
    }

    // Undelete: a live role may have taken the name meanwhile; the unique index says
    // ALREADY_EXISTS.
}

/// NOT_FOUND unless user `user_id` is live in the transaction's tenant.
async fn live_user(tx: &mut TenantTx, user_id: i64) -> Result<(), IdentityError> {
    if store::users::is_live(tx, user_id).await? {
        Ok(())
    } else {
        Err(IdentityError::NotFound {
            what: "user",
            id: user_id,
        })
    }
}

/// The RoleService implementation.
#[derive(Clone, Debug)]
pub(crate) struct RoleApi {
    state: AppState,
}

impl RoleApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl RoleService for RoleApi {
    async fn create_role(
        &self,
        req: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        rpc::create::<Roles, _>(&self.state, req, |r| &r.request_id, |r| r.role).await
    }

    async fn get_role(
        &self,
        req: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        rpc::get::<Roles, _>(&self.state, req, |r| r.id).await
    }

    async fn list_roles(
        &self,
        req: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        rpc::list::<Roles, _, _>(&self.state, req).await
    }

    async fn update_role(
        &self,
        req: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        rpc::update::<Roles, _>(&self.state, req, |r| (r.role, r.update_mask)).await
    }

    async fn delete_role(
        &self,
        req: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        rpc::delete::<Roles, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_role(
        &self,
        req: Request<pb::UndeleteRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        rpc::undelete::<Roles, _>(&self.state, req, |r| r.id).await
    }

    async fn assign_role(
        &self,
        req: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let api = &self.state.kit.api;
        api.require_id("role_id", body.role_id)?;
        api.require_id("user_id", body.user_id)?;
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let begun = replay::begin(&self.state.kit, ctx.tenant_id, "AssignRole", key);
        let mut tx = match begun.await? {
            Begun::Replayed(response) => return Ok(Response::new(response)),
            Begun::Fresh(attempt) => attempt,
        };
        let role: RoleRow = TABLE.fetch(&mut tx, body.role_id, Read::live()).await?;
        may_grant(&ctx, std::slice::from_ref(&role))?;
        live_user(&mut tx, body.user_id).await?;
        store::roles::assign(&mut tx, ctx.tenant_id, body.role_id, body.user_id).await?;
        let (role_names, role_ids) = store::roles::held_by(&mut tx, body.user_id).await?;
        let response = pb::AssignRoleResponse {
            role_names,
            role_ids,
        };
        Ok(Response::new(tx.commit(response).await?))
    }

    async fn unassign_role(
        &self,
        req: Request<pb::UnassignRoleRequest>,
    ) -> Result<Response<pb::UnassignRoleResponse>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let api = &self.state.kit.api;
        api.require_id("role_id", body.role_id)?;
        api.require_id("user_id", body.user_id)?;
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let begun = replay::begin(&self.state.kit, ctx.tenant_id, "UnassignRole", key);
        let mut tx = match begun.await? {
            Begun::Replayed(response) => return Ok(Response::new(response)),
            Begun::Fresh(attempt) => attempt,
        };
        let role: RoleRow = TABLE.fetch(&mut tx, body.role_id, Read::live()).await?;
        // Taking a role away is handing it out in reverse: a platform role is not
        // touched, and nobody demotes a holder of permissions they lack.
        may_grant(&ctx, std::slice::from_ref(&role))?;
        live_user(&mut tx, body.user_id).await?;
        store::roles::unassign(&mut tx, body.role_id, body.user_id).await?;
        // The user's tokens name the role; a refresh issues them without it.
        let whose = Whose::User(body.user_id);
        revoke_access(&self.state, &mut tx, whose, "role_unassigned").await?;
        // A tenant must keep someone who can administer it.
        if role.name == "admin" && store::roles::active_holders(&mut tx, body.role_id).await? == 0 {
            return Err(IdentityError::LastAdmin.into());
        }
        let (role_names, role_ids) = store::roles::held_by(&mut tx, body.user_id).await?;
        let response = pb::UnassignRoleResponse {
            role_names,
            role_ids,
        };
        Ok(Response::new(tx.commit(response).await?))
    }

    /// The catalogue is code, not a table, so the page is cut here, with the kit's
    /// signed page tokens: the cursor is the last permission of the page.
    async fn list_permissions(
        &self,
        req: Request<pb::ListPermissionsRequest>,
    ) -> Result<Response<pb::ListPermissionsResponse>, Status> {
        let r = req.into_inner();
        let api = &self.state.kit.api;
        let size = page_size(r.page_size).map_err(|m| api.invalid("page_size", m))?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let pages = &self.state.kit.pages;
        let digest = PageTokenCodec::query_digest(&["identity.permissions"]);
        let after = if r.page_token.is_empty() {
            None
        } else {
            match pages.decode(&digest, &r.page_token).as_deref() {
                Ok([Some(last)]) => Some(last.clone()),
                _ => return Err(api.invalid("page_token", "not a valid page token")),
            }
        };
        let all = tenant_permissions();
        let total_size = all.len();
        let rest: Vec<String> = all
            .into_iter()
            .filter(|p| after.as_ref().is_none_or(|last| p > last))
            .collect();
        let more = rest.len() > size;
        let permissions: Vec<String> = rest.into_iter().take(size).collect();
        let next_page_token = match (more, permissions.last()) {
            (true, Some(last)) => pages.encode(&digest, vec![Some(last.clone())]),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPermissionsResponse {
            permissions,
            next_page_token,
            total_size: i32::try_from(total_size).unwrap_or(i32::MAX),
        }))
    }
}
