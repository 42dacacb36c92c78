//! `fusion.identity.v1.RoleService`: built-in and custom roles, and who holds them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, list};
use fusion_db::{db_status, idempotency};
use fusion_proto::errors;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::role_service_server::RoleService;

use super::{
    API, caller, check, check_etag, etag, not_found, opt_ts, purge_ts, REQUEST_IDS,
    require_id, set_deleted, total, ts, violations,
};
use crate::domain::permissions::{PLATFORM_ADMIN_ROLE, is_tenant_permission, tenant_permissions};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const COLUMNS: &str = "id, tenant_id, name, description, permissions, built_in, version, created_at, updated_at, deleted_at";

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("built_in", "built_in", FieldKind::Bool),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: "identity.roles",
    select: COLUMNS,
    fields: FIELDS,
    order_fields: &["name", "create_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: i64,
    tenant_id: i64,
    name: String,
    description: Option<String>,
    permissions: Vec<String>,
    built_in: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<RoleRow> for pb::Role {
    fn from(r: RoleRow) -> Self {
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
            purge_time: purge_ts(r.deleted_at),
            etag: etag(r.version),
        }
    }
}

async fn fetch(conn: &mut PgConnection, id: i64, include_deleted: bool) -> Result<RoleRow, Status> {
    let sql = format!(
        "SELECT {COLUMNS} FROM identity.roles WHERE id = $1 {}",
        if include_deleted {
            ""
        } else {
            "AND deleted_at IS NULL"
        }
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?
        .ok_or_else(|| not_found("role", id))
}

/// Sorted, de-duplicated permissions, or a violation naming the unknown ones.
fn permissions(
    field: &str,
    requested: &[String],
    v: &mut Vec<errors::FieldViolation>,
) -> Vec<String> {
    let unknown: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|p| !is_tenant_permission(p))
        .collect();
    if !unknown.is_empty() {
        check(
            v,
            field,
            Err(format!(
                "unknown permissions: {} (see ListPermissions)",
                unknown.join(", ")
            )),
        );
    }
    let mut perms = requested.to_vec();
    perms.sort();
    perms.dedup();
    perms
}

async fn user_roles(conn: &mut PgConnection, user_id: i64) -> Result<Vec<String>, Status> {
    sqlx::query_scalar(
        "SELECT r.name FROM identity.role_user ru JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id
         WHERE ru.user_id = $1 AND r.deleted_at IS NULL ORDER BY r.name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))
}

async fn live_user(conn: &mut PgConnection, user_id: i64) -> Result<(), Status> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM identity.users WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    if exists {
        Ok(())
    } else {
        Err(not_found("user", user_id))
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
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let r = body.role.unwrap_or_default();
        let mut v = Vec::new();
        check(&mut v, "role.name", validate::role_name(&r.name));
        let perms = permissions("role.permissions", &r.permissions, &mut v);
        violations(v)?;
        const METHOD: &str = "CreateRole";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay::<pb::Role>(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO identity.roles (tenant_id, name, description, permissions) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(ctx.tenant_id)
        .bind(&r.name)
        .bind(Some(r.description).filter(|d| !d.is_empty()))
        .bind(&perms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        let role: pb::Role = fetch(&mut tx, id, false).await?.into();
        REQUEST_IDS.remember(&mut tx, METHOD, request_id, &role).await?;
        tx.commit().await?;
        Ok(Response::new(role))
    }

    async fn get_role(
        &self,
        req: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let role = fetch(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(Response::new(role.into()))
    }

    async fn list_roles(
        &self,
        req: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let page = list::<RoleRow>(
            &mut tx,
            DOMAIN,
            &LIST,
            &params,
            &self.state.pages,
            Some(ctx.tenant_id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_role(
        &self,
        req: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let r = body.role.unwrap_or_default();
        require_id("role.id", r.id)?;
        let populated: Vec<&str> = [
            ("name", !r.name.is_empty()),
            ("description", !r.description.is_empty()),
            ("permissions", !r.permissions.is_empty()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let mask = API.mask(
            body.update_mask,
            &["name", "description", "permissions"],
            &["id", "tenant_id", "built_in"],
            &populated,
        )?;
        let mut v = Vec::new();
        if mask.has("name") {
            check(&mut v, "role.name", validate::role_name(&r.name));
        }
        let perms = if mask.has("permissions") {
            permissions("role.permissions", &r.permissions, &mut v)
        } else {
            Vec::new()
        };
        violations(v)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current = fetch(&mut tx, r.id, false).await?;
        check_etag(&r.etag, current.version)?;
        if current.built_in && mask.has("name") && r.name != current.name {
            return Err(errors::failed_precondition(
                DOMAIN,
                "BUILT_IN_ROLE",
                "built-in roles cannot be renamed",
            ));
        }
        if current.name == PLATFORM_ADMIN_ROLE {
            return Err(errors::failed_precondition(
                DOMAIN,
                "BUILT_IN_ROLE",
                "the platform role cannot be changed",
            ));
        }
        if !mask.is_empty() {
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE identity.roles SET version = version + 1, updated_at = now()",
            );
            if mask.has("name") {
                qb.push(", name = ").push_bind(r.name.clone());
            }
            if mask.has("description") {
                qb.push(", description = ")
                    .push_bind(Some(r.description.clone()).filter(|d| !d.is_empty()));
            }
            if mask.has("permissions") {
                qb.push(", permissions = ").push_bind(perms);
            }
            qb.push(" WHERE id = ").push_bind(r.id);
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_status(DOMAIN, e))?;
        }
        let role = fetch(&mut tx, r.id, false).await?;
        tx.commit().await?;
        Ok(Response::new(role.into()))
    }

    async fn delete_role(
        &self,
        req: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("id", body.id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current = fetch(&mut tx, body.id, false).await?;
        check_etag(&body.etag, current.version)?;
        if current.built_in {
            return Err(errors::failed_precondition(
                DOMAIN,
                "BUILT_IN_ROLE",
                "built-in roles cannot be deleted",
            ));
        }
        set_deleted(&mut tx, "identity.roles", body.id, true).await?;
        let role = fetch(&mut tx, body.id, true).await?;
        tx.commit().await?;
        Ok(Response::new(role.into()))
    }

    async fn undelete_role(
        &self,
        req: Request<pb::UndeleteRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current = fetch(&mut tx, id, true).await?;
        if current.deleted_at.is_none() {
            return Err(errors::already_exists(
                DOMAIN,
                "NOT_DELETED",
                format!("role {id} is not deleted"),
            ));
        }
        // A live role may have taken the name meanwhile: the unique index says ALREADY_EXISTS.
        set_deleted(&mut tx, "identity.roles", id, false).await?;
        let role = fetch(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(Response::new(role.into()))
    }

    async fn assign_role(
        &self,
        req: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("role_id", body.role_id)?;
        require_id("user_id", body.user_id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let role = fetch(&mut tx, body.role_id, false).await?;
        if role.name == PLATFORM_ADMIN_ROLE {
            return Err(errors::failed_precondition(
                DOMAIN,
                "BUILT_IN_ROLE",
                "the platform role is assigned by bootstrap only",
            ));
        }
        live_user(&mut tx, body.user_id).await?;
        sqlx::query(
            "INSERT INTO identity.role_user (tenant_id, role_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(ctx.tenant_id)
        .bind(body.role_id)
        .bind(body.user_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        let roles = user_roles(&mut tx, body.user_id).await?;
        tx.commit().await?;
        Ok(Response::new(pb::AssignRoleResponse { roles }))
    }

    async fn unassign_role(
        &self,
        req: Request<pb::UnassignRoleRequest>,
    ) -> Result<Response<pb::UnassignRoleResponse>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("role_id", body.role_id)?;
        require_id("user_id", body.user_id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let role = fetch(&mut tx, body.role_id, false).await?;
        live_user(&mut tx, body.user_id).await?;
        sqlx::query("DELETE FROM identity.role_user WHERE role_id = $1 AND user_id = $2")
            .bind(body.role_id)
            .bind(body.user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        if role.name == "admin" {
            // A tenant must keep someone who can administer it.
            let admins: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM identity.role_user ru JOIN identity.users u ON u.tenant_id = ru.tenant_id AND u.id = ru.user_id
                 WHERE ru.role_id = $1 AND u.deleted_at IS NULL AND u.active",
            )
            .bind(body.role_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
            if admins == 0 {
                return Err(errors::failed_precondition(
                    DOMAIN,
                    "LAST_ADMIN",
                    "the tenant's last active admin keeps the admin role",
                ));
            }
        }
        let roles = user_roles(&mut tx, body.user_id).await?;
        tx.commit().await?;
        Ok(Response::new(pb::UnassignRoleResponse { roles }))
    }

    async fn list_permissions(
        &self,
        _req: Request<pb::ListPermissionsRequest>,
    ) -> Result<Response<pb::ListPermissionsResponse>, Status> {
        Ok(Response::new(pb::ListPermissionsResponse {
            permissions: tenant_permissions(),
        }))
    }
}
