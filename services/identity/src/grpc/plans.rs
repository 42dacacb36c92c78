//! `fusion.identity.v1.PlanService`: the platform's plan catalogue.

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, ListSpec};
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::plan_service_server::PlanService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};
use fusion_service::standard::{self, Kit, Method, Resource};
use fusion_tenancy::TenantContext;

use super::opt_text;
use crate::domain::validate;
use crate::store::plans::{LIST, PlanRow, TABLE};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &[
    "name",
    "description",
    "monthly_price",
    "currency_code",
    "max_user_count",
    "features",
    "active",
];

/// `code` is set at creation and never changes.
const CREATE: &[&str] = &[
    "code",
    "name",
    "description",
    "monthly_price",
    "currency_code",
    "max_user_count",
    "features",
    "active",
];

/// A money amount: a non-negative decimal with at most two places that fits NUMERIC(12,2).
fn price(raw: &str) -> Result<Decimal, String> {
    match raw.trim().parse::<Decimal>() {
        Ok(d) if d.is_sign_negative() => Err("must not be negative".into()),
        Ok(d) if d.scale() > 2 => Err("must have at most two decimal places".into()),
        Ok(d) if d >= Decimal::from(10_000_000_000i64) => Err("is too large".into()),
        Ok(d) => Ok(d),
        Err(_) => Err("must be a decimal amount such as \"99.00\"".into()),
    }
}

/// Plans on the standard methods.
struct Plans;

impl Resource for Plans {
    type Row = PlanRow;
    type Pb = pb::Plan;
    type State = AppState;
    type Error = crate::error::IdentityError;

    const SINGULAR: &'static str = "Plan";
    const FIELD: &'static str = "plan";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["code", "id"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    /// Plans are never purged (tenants point at them, and `PURGED_TABLES` keeps them),
    /// so a deleted plan reports no `purge_time`.
    fn to_pb(_: &AppState, r: PlanRow) -> pb::Plan {
        pb::Plan {
            id: r.id,
            code: r.code,
            name: r.name,
            description: r.description.unwrap_or_default(),
            monthly_price: r.price_monthly.to_string(),
            currency_code: r.currency,
            max_user_count: r.max_users,
            features: r.features,
            active: r.active,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: None,
            etag: etag(r.version),
        }
    }

    fn id(p: &pb::Plan) -> i64 {
        p.id
    }

    fn etag(p: &pb::Plan) -> &str {
        &p.etag
    }

    fn populated(p: &pb::Plan) -> Vec<&'static str> {
        populated(&[
            ("name", !p.name.is_empty()),
            ("description", !p.description.is_empty()),
            ("monthly_price", !p.monthly_price.is_empty()),
            ("currency_code", !p.currency_code.is_empty()),
            ("max_user_count", p.max_user_count != 0),
            ("features", !p.features.is_empty()),
            ("active", p.active),
        ])
    }

    fn values(
        _: &AppState,
        p: &pb::Plan,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::IdentityError> {
        values_of(DOMAIN, "plan", fields, |field| {
            Ok(Some(match field {
                "code" => {
                    validate::slug(&p.code)?;
                    ("code", Val::Text(Some(p.code.clone())))
                }
                "name" => {
                    validate::name(&p.name, validate::NAME_MAX)?;
                    ("name", Val::Text(Some(p.name.trim().to_owned())))
                }
                "description" => ("description", opt_text(&p.description)),
                "monthly_price" => (
                    "price_monthly",
                    Val::Decimal(Some(price(&p.monthly_price)?)),
                ),
                "currency_code" => {
                    fusion_service::validate::currency_code(&p.currency_code)?;
                    ("currency", Val::Text(Some(p.currency_code.clone())))
                }
                "max_user_count" => {
                    if p.max_user_count < 0 {
                        return Err("must not be negative".into());
                    }
                    ("max_users", Val::Int32(Some(p.max_user_count)))
                }
                "features" => ("features", Val::TextList(p.features.clone())),
                "active" => ("active", Val::Bool(p.active)),
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
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

#[tonic::async_trait]
impl PlanService for PlanApi {
    async fn create_plan(
        &self,
        req: Request<pb::CreatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let plan = body.plan.unwrap_or_default();
        let created = standard::create::<Plans>(&self.state, &ctx, key, plan);
        Ok(Response::new(created.await?))
    }

    async fn get_plan(
        &self,
        req: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let id = req.into_inner().id;
        let plan = standard::get::<Plans>(&self.state, &ctx, id);
        Ok(Response::new(plan.await?))
    }

    async fn list_plans(
        &self,
        req: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let r = req.into_inner();
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Plans>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListPlansResponse {
            plans: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_plan(
        &self,
        req: Request<pb::UpdatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let plan = body.plan.unwrap_or_default();
        let updated = standard::update::<Plans>(&self.state, &ctx, plan, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_plan(
        &self,
        req: Request<pb::DeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Plans>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_plan(
        &self,
        req: Request<pb::UndeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Plans>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }
}
