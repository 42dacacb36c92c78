//! `fusion.identity.v1.PlanService`: the platform's plan catalogue.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, list};
use fusion_db::{db_status, idempotency};
use fusion_proto::errors;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::plan_service_server::PlanService;

use super::{
    API, caller, check, check_etag, etag, not_found, opt_ts, purge_ts, REQUEST_IDS,
    require_id, set_deleted, total, ts, violations,
};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const COLUMNS: &str = "id, code, name, description, price_monthly, currency, max_users, features, active, version, \
                       created_at, updated_at, deleted_at";

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("code", "code", FieldKind::Text),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("currency", "currency", FieldKind::Text),
    FieldSpec::new("price_monthly", "price_monthly", FieldKind::Decimal),
    FieldSpec::new("max_users", "max_users", FieldKind::Int),
    FieldSpec::new("active", "active", FieldKind::Bool),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: "identity.plans",
    select: COLUMNS,
    fields: FIELDS,
    order_fields: &["code", "name", "price_monthly", "create_time"],
    default_order: "code",
    soft_delete: true,
    tenant_scoped: false,
};

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: i64,
    code: String,
    name: String,
    description: Option<String>,
    price_monthly: Decimal,
    currency: String,
    max_users: i32,
    features: Vec<String>,
    active: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<PlanRow> for pb::Plan {
    fn from(r: PlanRow) -> Self {
        pb::Plan {
            id: r.id,
            code: r.code,
            name: r.name,
            description: r.description.unwrap_or_default(),
            price_monthly: r.price_monthly.to_string(),
            currency: r.currency,
            max_users: r.max_users,
            features: r.features,
            active: r.active,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: purge_ts(r.deleted_at),
            etag: etag(r.version),
        }
    }
}

/// The PlanService implementation.
#[derive(Clone, Debug)]
pub(crate) struct PlanApi {
    state: AppState,
}

impl PlanApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

async fn fetch(
    conn: &mut PgConnection,
    id: i64,
    include_deleted: bool,
) -> Result<Option<PlanRow>, Status> {
    let sql = format!(
        "SELECT {COLUMNS} FROM identity.plans WHERE id = $1 {}",
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

/// A money amount: a non-negative decimal with at most two places that fits NUMERIC(12,2).
fn price(field: &str, raw: &str, v: &mut Vec<errors::FieldViolation>) -> Option<Decimal> {
    match raw.trim().parse::<Decimal>() {
        Ok(d) if d.is_sign_negative() => check(v, field, Err("must not be negative".into())),
        Ok(d) if d.scale() > 2 => {
            check(v, field, Err("must have at most two decimal places".into()))
        }
        Ok(d) if d >= Decimal::from(10_000_000_000i64) => {
            check(v, field, Err("is too large".into()))
        }
        Ok(d) => return Some(d),
        Err(_) => check(
            v,
            field,
            Err("must be a decimal amount such as \"99.00\"".into()),
        ),
    }
    None
}

fn currency(field: &str, raw: &str, v: &mut Vec<errors::FieldViolation>) {
    if !(raw.len() == 3 && raw.chars().all(|c| c.is_ascii_uppercase())) {
        check(v, field, Err("must be an ISO 4217 code such as AUD".into()));
    }
}

#[tonic::async_trait]
impl PlanService for PlanApi {
    async fn create_plan(
        &self,
        req: Request<pb::CreatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let p = body.plan.unwrap_or_default();
        let mut v = Vec::new();
        check(&mut v, "plan.code", validate::slug(&p.code));
        check(
            &mut v,
            "plan.name",
            validate::name(&p.name, validate::NAME_MAX),
        );
        let amount = price("plan.price_monthly", &p.price_monthly, &mut v);
        currency("plan.currency", &p.currency, &mut v);
        if p.max_users < 0 {
            check(&mut v, "plan.max_users", Err("must not be negative".into()));
        }
        violations(v)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        const METHOD: &str = "CreatePlan";
        if let Some(saved) = REQUEST_IDS.replay::<pb::Plan>(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO identity.plans (code, name, description, price_monthly, currency, max_users, features, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&p.code)
        .bind(p.name.trim())
        .bind(Some(p.description).filter(|d| !d.is_empty()))
        .bind(amount)
        .bind(&p.currency)
        .bind(p.max_users)
        .bind(&p.features)
        .bind(p.active)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        let created: pb::Plan = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| errors::internal(DOMAIN))?
            .into();
        REQUEST_IDS.remember(&mut tx, METHOD, request_id, &created).await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_plan(
        &self,
        req: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| not_found("plan", id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn list_plans(
        &self,
        req: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
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
        let page = list::<PlanRow>(
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
        Ok(Response::new(pb::ListPlansResponse {
            plans: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_plan(
        &self,
        req: Request<pb::UpdatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let p = body.plan.unwrap_or_default();
        require_id("plan.id", p.id)?;
        let populated: Vec<&str> = [
            ("name", !p.name.is_empty()),
            ("description", !p.description.is_empty()),
            ("price_monthly", !p.price_monthly.is_empty()),
            ("currency", !p.currency.is_empty()),
            ("max_users", p.max_users != 0),
            ("features", !p.features.is_empty()),
            ("active", p.active),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let mask = API.mask(
            body.update_mask,
            &[
                "name",
                "description",
                "price_monthly",
                "currency",
                "max_users",
                "features",
                "active",
            ],
            &["code", "id"],
            &populated,
        )?;
        let mut v = Vec::new();
        if mask.has("name") {
            check(
                &mut v,
                "plan.name",
                validate::name(&p.name, validate::NAME_MAX),
            );
        }
        let amount = if mask.has("price_monthly") {
            price("plan.price_monthly", &p.price_monthly, &mut v)
        } else {
            None
        };
        if mask.has("currency") {
            currency("plan.currency", &p.currency, &mut v);
        }
        if mask.has("max_users") && p.max_users < 0 {
            check(&mut v, "plan.max_users", Err("must not be negative".into()));
        }
        violations(v)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT version FROM identity.plans WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(p.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?
        .ok_or_else(|| not_found("plan", p.id))?;
        check_etag(&p.etag, current)?;
        if !mask.is_empty() {
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE identity.plans SET version = version + 1, updated_at = now()",
            );
            if mask.has("name") {
                qb.push(", name = ").push_bind(p.name.trim().to_owned());
            }
            if mask.has("description") {
                qb.push(", description = ")
                    .push_bind(Some(p.description.clone()).filter(|d| !d.is_empty()));
            }
            if let Some(amount) = amount {
                qb.push(", price_monthly = ").push_bind(amount);
            }
            if mask.has("currency") {
                qb.push(", currency = ").push_bind(p.currency.clone());
            }
            if mask.has("max_users") {
                qb.push(", max_users = ").push_bind(p.max_users);
            }
            if mask.has("features") {
                qb.push(", features = ").push_bind(p.features.clone());
            }
            if mask.has("active") {
                qb.push(", active = ").push_bind(p.active);
            }
            qb.push(" WHERE id = ").push_bind(p.id);
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_status(DOMAIN, e))?;
        }
        let row = fetch(&mut tx, p.id, false)
            .await?
            .ok_or_else(|| not_found("plan", p.id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn delete_plan(
        &self,
        req: Request<pb::DeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        require_id("id", body.id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, body.id, false)
            .await?
            .ok_or_else(|| not_found("plan", body.id))?;
        check_etag(&body.etag, row.version)?;
        set_deleted(&mut tx, "identity.plans", body.id, true).await?;
        let row = fetch(&mut tx, body.id, true)
            .await?
            .ok_or_else(|| not_found("plan", body.id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }

    async fn undelete_plan(
        &self,
        req: Request<pb::UndeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row = fetch(&mut tx, id, true)
            .await?
            .ok_or_else(|| not_found("plan", id))?;
        if row.deleted_at.is_none() {
            return Err(errors::already_exists(
                DOMAIN,
                "NOT_DELETED",
                format!("plan {id} is not deleted"),
            ));
        }
        set_deleted(&mut tx, "identity.plans", id, false).await?;
        let row = fetch(&mut tx, id, false)
            .await?
            .ok_or_else(|| not_found("plan", id))?;
        tx.commit().await?;
        Ok(Response::new(row.into()))
    }
}
