//! `fusion.identity.v1.UserService`. Every statement runs in a unit of work bound to
//! the caller's tenant, so another tenant's user is simply not there (NOT_FOUND).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, list};
use fusion_db::{db_status, idempotency};
use fusion_proto::errors;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::user_service_server::UserService;

use super::{
    API, caller, check, check_etag, etag, from_ts, json_to_struct, not_found, opt_ts, purge_ts,
    REQUEST_IDS, require_id, set_deleted, struct_to_json, total, ts, violations,
};
use crate::auth::password::hash_password;
use crate::auth::revoke_user_refresh_tokens;
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const COLUMNS: &str = "id, tenant_id, name, email, email_verified_at, profile_photo_path, active, phone, settings, \
                       last_login_at, version, created_at, updated_at, deleted_at";

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

const LIST: ListSpec = ListSpec {
    table: "identity.users",
    select: COLUMNS,
    fields: FIELDS,
    order_fields: &["name", "email", "create_time", "last_login_time"],
    default_order: "create_time",
    soft_delete: true,
    tenant_scoped: true,
};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    tenant_id: i64,
    name: String,
    email: String,
    email_verified_at: Option<DateTime<Utc>>,
    profile_photo_path: Option<String>,
    active: bool,
    phone: Option<String>,
    settings: Option<serde_json::Value>,
    last_login_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fn to_proto(r: UserRow, roles: Vec<String>) -> pb::User {
    pb::User {
        id: r.id,
        tenant_id: r.tenant_id,
        name: r.name,
        email: r.email,
        email_verify_time: opt_ts(r.email_verified_at),
        profile_photo_path: r.profile_photo_path.unwrap_or_default(),
        active: r.active,
        phone: r.phone.unwrap_or_default(),
        settings: r.settings.as_ref().map(json_to_struct),
        last_login_time: opt_ts(r.last_login_at),
        roles,
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: purge_ts(r.deleted_at),
        etag: etag(r.version),
    }
}

/// Role names held by each of `user_ids`.
async fn roles_of(
    conn: &mut PgConnection,
    user_ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, Status> {
    let rows = sqlx::query(
        "SELECT ru.user_id, r.name FROM identity.role_user ru
         JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id
         WHERE ru.user_id = ANY($1) AND r.deleted_at IS NULL ORDER BY r.name",
    )
    .bind(user_ids)
    .fetch_all(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    let mut by_user: HashMap<i64, Vec<String>> = HashMap::new();
    for row in rows {
        by_user
            .entry(row.get("user_id"))
            .or_default()
            .push(row.get("name"));
    }
    Ok(by_user)
}

/// A user with roles, or NOT_FOUND (missing, deleted unless asked, or another tenant's).
pub(crate) async fn load(
    conn: &mut PgConnection,
    id: i64,
    include_deleted: bool,
) -> Result<pb::User, Status> {
    let sql = format!(
        "SELECT {COLUMNS} FROM identity.users WHERE id = $1 {}",
        if include_deleted {
            ""
        } else {
            "AND deleted_at IS NULL"
        }
    );
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?
        .ok_or_else(|| not_found("user", id))?;
    let roles = roles_of(conn, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(to_proto(row, roles))
}

/// Locks a live user row and returns its version.
async fn lock(conn: &mut PgConnection, id: i64) -> Result<i64, Status> {
    sqlx::query_scalar(
        "SELECT version FROM identity.users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?
    .ok_or_else(|| not_found("user", id))
}

/// The UserService implementation.
#[derive(Clone, Debug)]
pub(crate) struct UserApi {
    state: AppState,
}

impl UserApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Sets `active` and, when deactivating, revokes the user's sessions.
    async fn set_active(&self, req: Request<i64>, active: bool) -> Result<pb::User, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner();
        require_id("id", id)?;
        if !active && id == ctx.user_id {
            return Err(errors::failed_precondition(
                DOMAIN,
                "SELF",
                "you cannot deactivate yourself",
            ));
        }
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        lock(&mut tx, id).await?;
        sqlx::query("UPDATE identity.users SET active = $2, version = version + 1, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(active)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        if !active {
            revoke_user_refresh_tokens(&mut tx, id, "deactivated").await?;
        }
        let user = load(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(user)
    }
}

fn phone(v: &mut Vec<errors::FieldViolation>, field: &str, value: &str) {
    if value.chars().count() > 50 {
        check(v, field, Err("must be at most 50 characters".into()));
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let u = body.user.unwrap_or_default();
        let mut v = Vec::new();
        check(
            &mut v,
            "user.name",
            validate::name(&u.name, validate::NAME_MAX),
        );
        check(&mut v, "user.email", validate::email(&u.email));
        check(&mut v, "password", validate::password(&body.password));
        phone(&mut v, "user.phone", &u.phone);
        if u.profile_photo_path.chars().count() > 2048 {
            check(
                &mut v,
                "user.profile_photo_path",
                Err("must be at most 2048 characters".into()),
            );
        }
        let verified = match &u.email_verify_time {
            Some(t) => Some(from_ts("user.email_verify_time", t)?),
            None => None,
        };
        violations(v)?;
        const METHOD: &str = "CreateUser";

        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay::<pb::User>(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let role_ids: Vec<(String, i64)> = if body.role_names.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT name, id FROM identity.roles WHERE name = ANY($1) AND deleted_at IS NULL",
            )
            .bind(&body.role_names)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?
        };
        let unknown: Vec<&String> = body
            .role_names
            .iter()
            .filter(|n| !role_ids.iter().any(|(name, _)| name == *n))
            .collect();
        if !unknown.is_empty() {
            return Err(errors::invalid_field(
                DOMAIN,
                "role_names",
                format!(
                    "no such role: {}",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let hash = hash_password(&body.password).map_err(|_| errors::internal(DOMAIN))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO identity.users (tenant_id, name, email, password, email_verified_at, profile_photo_path, phone, settings)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(ctx.tenant_id)
        .bind(u.name.trim())
        .bind(u.email.trim())
        .bind(hash)
        .bind(verified)
        .bind(Some(u.profile_photo_path).filter(|p| !p.is_empty()))
        .bind(Some(u.phone).filter(|p| !p.is_empty()))
        .bind(u.settings.as_ref().map(struct_to_json))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        for (_, role_id) in &role_ids {
            sqlx::query(
                "INSERT INTO identity.role_user (tenant_id, role_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(ctx.tenant_id)
            .bind(role_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        }
        let user = load(&mut tx, id, false).await?;
        REQUEST_IDS.remember(&mut tx, METHOD, request_id, &user).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let user = load(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
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
        let page = list::<UserRow>(
            &mut tx,
            DOMAIN,
            &LIST,
            &params,
            &self.state.pages,
            Some(ctx.tenant_id),
            None,
        )
        .await?;
        let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
        let mut roles = roles_of(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page
                .items
                .into_iter()
                .map(|u| {
                    let r = roles.remove(&u.id).unwrap_or_default();
                    to_proto(u, r)
                })
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let u = body.user.unwrap_or_default();
        require_id("user.id", u.id)?;
        let populated: Vec<&str> = [
            ("name", !u.name.is_empty()),
            ("email", !u.email.is_empty()),
            ("phone", !u.phone.is_empty()),
            ("profile_photo_path", !u.profile_photo_path.is_empty()),
            ("settings", u.settings.is_some()),
            ("email_verify_time", u.email_verify_time.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let mask = API.mask(
            body.update_mask,
            &[
                "name",
                "email",
                "phone",
                "profile_photo_path",
                "settings",
                "email_verify_time",
            ],
            &["id", "tenant_id"],
            &populated,
        )?;
        let mut v = Vec::new();
        if mask.has("name") {
            check(
                &mut v,
                "user.name",
                validate::name(&u.name, validate::NAME_MAX),
            );
        }
        if mask.has("email") {
            check(&mut v, "user.email", validate::email(&u.email));
        }
        if mask.has("phone") {
            phone(&mut v, "user.phone", &u.phone);
        }
        let verified = match (&u.email_verify_time, mask.has("email_verify_time")) {
            (Some(t), true) => Some(from_ts("user.email_verify_time", t)?),
            _ => None,
        };
        violations(v)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let version = lock(&mut tx, u.id).await?;
        check_etag(&u.etag, version)?;
        if !mask.is_empty() {
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE identity.users SET version = version + 1, updated_at = now()",
            );
            if mask.has("name") {
                qb.push(", name = ").push_bind(u.name.trim().to_owned());
            }
            if mask.has("email") {
                qb.push(", email = ").push_bind(u.email.trim().to_owned());
            }
            if mask.has("phone") {
                qb.push(", phone = ")
                    .push_bind(Some(u.phone.clone()).filter(|p| !p.is_empty()));
            }
            if mask.has("profile_photo_path") {
                qb.push(", profile_photo_path = ")
                    .push_bind(Some(u.profile_photo_path.clone()).filter(|p| !p.is_empty()));
            }
            if mask.has("settings") {
                qb.push(", settings = ")
                    .push_bind(u.settings.as_ref().map(struct_to_json));
            }
            if mask.has("email_verify_time") {
                qb.push(", email_verified_at = ").push_bind(verified);
            }
            qb.push(" WHERE id = ").push_bind(u.id);
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_status(DOMAIN, e))?;
        }
        let user = load(&mut tx, u.id, false).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("id", body.id)?;
        if body.id == ctx.user_id {
            return Err(errors::failed_precondition(
                DOMAIN,
                "SELF",
                "you cannot delete yourself",
            ));
        }
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let version = lock(&mut tx, body.id).await?;
        check_etag(&body.etag, version)?;
        set_deleted(&mut tx, "identity.users", body.id, true).await?;
        revoke_user_refresh_tokens(&mut tx, body.id, "deleted").await?;
        let user = load(&mut tx, body.id, true).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }

    async fn undelete_user(
        &self,
        req: Request<pb::UndeleteUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let user = load(&mut tx, id, true).await?;
        if user.delete_time.is_none() {
            return Err(errors::already_exists(
                DOMAIN,
                "NOT_DELETED",
                format!("user {id} is not deleted"),
            ));
        }
        set_deleted(&mut tx, "identity.users", id, false).await?;
        let user = load(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }

    async fn activate_user(
        &self,
        req: Request<pb::ActivateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (meta, ext, body) = req.into_parts();
        self.set_active(Request::from_parts(meta, ext, body.id), true)
            .await
            .map(Response::new)
    }

    async fn deactivate_user(
        &self,
        req: Request<pb::DeactivateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (meta, ext, body) = req.into_parts();
        self.set_active(Request::from_parts(meta, ext, body.id), false)
            .await
            .map(Response::new)
    }

    async fn set_user_password(
        &self,
        req: Request<pb::SetUserPasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("id", body.id)?;
        let mut v = Vec::new();
        check(&mut v, "password", validate::password(&body.password));
        violations(v)?;
        let hash = hash_password(&body.password).map_err(|_| errors::internal(DOMAIN))?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        lock(&mut tx, body.id).await?;
        sqlx::query("UPDATE identity.users SET password = $2, version = version + 1, updated_at = now() WHERE id = $1")
            .bind(body.id)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        revoke_user_refresh_tokens(&mut tx, body.id, "password_changed").await?;
        let user = load(&mut tx, body.id, false).await?;
        tx.commit().await?;
        Ok(Response::new(user))
    }
}
