//! `fusion.identity.v1.TenantService`.
//!
//! `tenants` is a platform table (a tenant's row is its own id, there is no
//! `tenant_id` column to police with row-level security), so this module is where the
//! scoping rule lives: without a platform permission a caller sees and changes only
//! its own tenant, and any other id is NOT_FOUND.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, list};
use fusion_db::{db_status, idempotency};
use fusion_proto::errors;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::tenant_service_server::TenantService;

use super::{
    API, caller, check, check_etag, etag, from_ts, json_to_struct, not_found, opt_ts, purge_ts,
    REQUEST_IDS, require_id, set_deleted, struct_to_json, total, ts, violations,
};
use crate::auth::password::hash_password;
use crate::domain::permissions::{BuiltInRole, PLATFORM_TENANT_SLUG, built_in_roles};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const COLUMNS: &str = "id, name, domain, slug, settings, plan_id, subscription_status, trial_ends_at, version, \
                       created_at, updated_at, deleted_at";

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
    FieldSpec::new("trial_end_time", "trial_ends_at", FieldKind::Timestamp),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: "identity.tenants",
    select: COLUMNS,
    fields: FIELDS,
    order_fields: &["name", "slug", "create_time"],
    default_order: "create_time",
    soft_delete: true,
    tenant_scoped: false,
};

const STATUSES: &[&str] = &["active", "inactive", "trial"];

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: i64,
    name: String,
    domain: Option<String>,
    slug: String,
    settings: Option<serde_json::Value>,
    plan_id: Option<i64>,
    subscription_status: String,
    trial_ends_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<TenantRow> for pb::Tenant {
    fn from(r: TenantRow) -> Self {
        pb::Tenant {
            id: r.id,
            name: r.name,
            domain: r.domain.unwrap_or_default(),
            slug: r.slug,
            settings: r.settings.as_ref().map(json_to_struct),
            plan_id: r.plan_id.unwrap_or_default(),
            subscription_status: r.subscription_status,
            trial_end_time: opt_ts(r.trial_ends_at),
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: purge_ts(r.deleted_at),
            etag: etag(r.version),
        }
    }
}

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
}

/// Its first administrator.
#[derive(Debug, Clone)]
pub(crate) struct NewAdmin {
    pub name: String,
    pub email: String,
    pub password: String,
}

/// Creates a tenant, its built-in roles (plus `extra_roles`) and its first admin, who
/// holds `admin` and every extra role. Runs inside `conn`'s transaction; binds the
/// transaction to the new tenant for the tenant-scoped inserts, so row-level security
/// checks them like any other write. Returns the new tenant's id.
pub(crate) async fn create_tenant_with_admin(
    conn: &mut PgConnection,
    tenant: &NewTenant,
    admin: &NewAdmin,
    extra_roles: &[BuiltInRole],
) -> Result<i64, Status> {
    let password_hash = hash_password(&admin.password).map_err(|e| {
        tracing::error!(error = %e, "hashing a password failed");
        errors::internal(DOMAIN)
    })?;
    let id: i64 =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('identity.tenants', 'id'))")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
    sqlx::query(
        "INSERT INTO identity.tenants (id, name, domain, slug, settings, plan_id, subscription_status, trial_ends_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&tenant.name)
    .bind(&tenant.domain)
    .bind(&tenant.slug)
    .bind(&tenant.settings)
    .bind(tenant.plan_id)
    .bind(&tenant.subscription_status)
    .bind(tenant.trial_ends_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    let user_id: i64 = sqlx::query_scalar(
        "INSERT INTO identity.users (tenant_id, name, email, password) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(id)
    .bind(&admin.name)
    .bind(admin.email.trim())
    .bind(&password_hash)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
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
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        if role.name == "admin" || extra_roles.iter().any(|r| r.name == role.name) {
            sqlx::query(
                "INSERT INTO identity.role_user (tenant_id, role_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(role_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        }
    }
    Ok(id)
}

/// The TenantService implementation.
#[derive(Clone, Debug)]
pub(crate) struct TenantApi {
    state: AppState,
}

impl TenantApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

async fn fetch(
    conn: &mut PgConnection,
    id: i64,
    include_deleted: bool,
) -> Result<Option<TenantRow>, Status> {
    let sql = format!(
        "SELECT {COLUMNS} FROM identity.tenants WHERE id = $1 {}",
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
        .map_err(|e| db_status(DOMAIN, e))
}

fn validate_status(
    list: &mut Vec<fusion_proto::errors::FieldViolation>,
    field: &str,
    status: &str,
) {
    if !STATUSES.contains(&status) {
        check(
            list,
            field,
            Err(format!("must be one of {}", STATUSES.join(", "))),
        );
    }
}

async fn check_plan(conn: &mut PgConnection, plan_id: i64) -> Result<(), Status> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM identity.plans WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(plan_id)
    .fetch_one(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    if exists {
        Ok(())
    } else {
        Err(errors::invalid_field(
            DOMAIN,
            "tenant.plan_id",
            "no such plan",
        ))
    }
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        req: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let tenant = body.tenant.unwrap_or_default();
        let mut v = Vec::new();
        check(
            &mut v,
            "tenant.name",
            validate::name(&tenant.name, validate::NAME_MAX),
        );
        check(&mut v, "tenant.slug", validate::slug(&tenant.slug));
        check(&mut v, "tenant.domain", validate::domain(&tenant.domain));
        validate_status(
            &mut v,
            "tenant.subscription_status",
            &tenant.subscription_status,
        );
        check(&mut v, "admin_email", validate::email(&body.admin_email));
        check(
            &mut v,
            "admin_name",
            validate::name(&body.admin_name, validate::NAME_MAX),
        );
        check(
            &mut v,
            "admin_password",
            validate::password(&body.admin_password),
        );
        if tenant.plan_id < 0 {
            check(
                &mut v,
                "tenant.plan_id",
                Err("must be a positive id or 0 for none".into()),
            );
        }
        let trial_ends_at = match &tenant.trial_end_time {
            Some(t) => Some(from_ts("tenant.trial_end_time", t)?),
            None => None,
        };
        violations(v)?;

        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        const METHOD: &str = "CreateTenant";
        if let Some(saved) =
            REQUEST_IDS.replay::<pb::Tenant>(&mut tx, METHOD, request_id).await?
        {
            return Ok(Response::new(saved));
        }
        if tenant.plan_id > 0 {
            check_plan(&mut tx, tenant.plan_id).await?;
        }
        let new = NewTenant {
            name: tenant.name.trim().to_owned(),
            slug: tenant.slug.clone(),
            domain: Some(tenant.domain.to_lowercase()).filter(|d| !d.is_empty()),
            settings: tenant.settings.as_ref().map(struct_to_json),
            plan_id: Some(tenant.plan_id).filter(|p| *p > 0),
            subscription_status: tenant.subscription_status.clone(),
            trial_ends_at,
        };
        let admin = NewAdmin {
            name: body.admin_name.trim().to_owned(),
            email: body.admin_email,
            password: body.admin_password,
        };
        let id = create_tenant_with_admin(&mut tx, &new, &admin, &[]).await?;
        // Back to the caller's tenant to record the request id under it.
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(ctx.tenant_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        let created: pb::Tenant = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| errors::internal(DOMAIN))?
            .into();
        REQUEST_IDS.remember(&mut tx, METHOD, request_id, &created).await?;
        tx.commit().await?;
        tracing::info!(tenant.created = id, slug = %created.slug, "tenant created");
        Ok(Response::new(created))
    }

    async fn get_tenant(
        &self,
        req: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        if id != ctx.tenant_id && !ctx.has("platform.tenants.read") {
            return Err(not_found("tenant", id));
        }
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| not_found("tenant", id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
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
        let page = list::<TenantRow>(
            &mut tx,
            DOMAIN,
            &LIST,
            &params,
            &self.state.pages,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let t = body.tenant.unwrap_or_default();
        require_id("tenant.id", t.id)?;
        let platform = ctx.has("platform.tenants.write");
        if t.id != ctx.tenant_id && !platform {
            return Err(not_found("tenant", t.id));
        }
        let populated: Vec<&str> = [
            ("name", !t.name.is_empty()),
            ("domain", !t.domain.is_empty()),
            ("settings", t.settings.is_some()),
            ("plan_id", t.plan_id != 0),
            ("subscription_status", !t.subscription_status.is_empty()),
            ("trial_end_time", t.trial_end_time.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let mask = API.mask(
            body.update_mask,
            &[
                "name",
                "domain",
                "settings",
                "plan_id",
                "subscription_status",
                "trial_end_time",
            ],
            &["slug", "id"],
            &populated,
        )?;
        let billing = ["plan_id", "subscription_status", "trial_end_time"];
        if !platform && billing.iter().any(|f| mask.has(f)) {
            return Err(errors::permission_denied("platform.tenants.write"));
        }
        let mut v = Vec::new();
        if mask.has("name") {
            check(
                &mut v,
                "tenant.name",
                validate::name(&t.name, validate::NAME_MAX),
            );
        }
        if mask.has("domain") {
            check(&mut v, "tenant.domain", validate::domain(&t.domain));
        }
        if mask.has("subscription_status") {
            validate_status(&mut v, "tenant.subscription_status", &t.subscription_status);
        }
        if mask.has("plan_id") && t.plan_id < 0 {
            check(
                &mut v,
                "tenant.plan_id",
                Err("must be a positive id or 0 for none".into()),
            );
        }
        let trial = match (&t.trial_end_time, mask.has("trial_end_time")) {
            (Some(ts), true) => Some(from_ts("tenant.trial_end_time", ts)?),
            _ => None,
        };
        violations(v)?;

        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current = sqlx::query_scalar::<_, i64>(
            "SELECT version FROM identity.tenants WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(t.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?
        .ok_or_else(|| not_found("tenant", t.id))?;
        check_etag(&t.etag, current)?;
        if mask.has("plan_id") && t.plan_id > 0 {
            check_plan(&mut tx, t.plan_id).await?;
        }
        if !mask.is_empty() {
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE identity.tenants SET version = version + 1, updated_at = now()",
            );
            if mask.has("name") {
                qb.push(", name = ").push_bind(t.name.trim().to_owned());
            }
            if mask.has("domain") {
                qb.push(", domain = ")
                    .push_bind(Some(t.domain.to_lowercase()).filter(|d| !d.is_empty()));
            }
            if mask.has("settings") {
                qb.push(", settings = ")
                    .push_bind(t.settings.as_ref().map(struct_to_json));
            }
            if mask.has("plan_id") {
                qb.push(", plan_id = ")
                    .push_bind(Some(t.plan_id).filter(|p| *p > 0));
            }
            if mask.has("subscription_status") {
                qb.push(", subscription_status = ")
                    .push_bind(t.subscription_status.clone());
            }
            if mask.has("trial_end_time") {
                qb.push(", trial_ends_at = ").push_bind(trial);
            }
            qb.push(" WHERE id = ").push_bind(t.id);
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_status(DOMAIN, e))?;
        }
        let row = fetch(&mut tx, t.id, false)
            .await?
            .ok_or_else(|| not_found("tenant", t.id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn delete_tenant(
        &self,
        req: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("id", body.id)?;
        if body.id == ctx.tenant_id {
            return Err(errors::failed_precondition(
                DOMAIN,
                "OWN_TENANT",
                "a tenant cannot delete itself",
            ));
        }
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, body.id, false)
            .await?
            .ok_or_else(|| not_found("tenant", body.id))?;
        check_etag(&body.etag, row.version)?;
        if row.slug == PLATFORM_TENANT_SLUG {
            return Err(errors::failed_precondition(
                DOMAIN,
                "PLATFORM_TENANT",
                "the platform tenant cannot be deleted",
            ));
        }
        set_deleted(&mut tx, "identity.tenants", body.id, true).await?;
        // Nobody of a deleted tenant may keep a session: revoke under that tenant's scope.
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(body.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        sqlx::query(
            "UPDATE identity.refresh_tokens SET revoked_at = now(), revoked_reason = 'tenant_deleted', updated_at = now()
             WHERE revoked_at IS NULL",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        let row = fetch(&mut tx, body.id, true)
            .await?
            .ok_or_else(|| not_found("tenant", body.id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn undelete_tenant(
        &self,
        req: Request<pb::UndeleteTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, id, true)
            .await?
            .ok_or_else(|| not_found("tenant", id))?;
        if row.deleted_at.is_none() {
            return Err(errors::already_exists(
                DOMAIN,
                "NOT_DELETED",
                format!("tenant {id} is not deleted"),
            ));
        }
        set_deleted(&mut tx, "identity.tenants", id, false).await?;
        let row = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| not_found("tenant", id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }
}
