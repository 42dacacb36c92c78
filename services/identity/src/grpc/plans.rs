//! `fusion.identity.v1.PlanService`: the platform's plan catalogue.

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::plan_service_server::PlanService;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Kit, Method, Resource};

use super::opt_text;
use super::rpc;
use crate::domain::validate;
use crate::store::plans::{LIST, PlanRow, TABLE};
use crate::{AppState, DOMAIN};

/// `code` (first) is set at creation and never changes.
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

/// Every field Create sets but `code`.
const MUTABLE: &[&str] = CREATE.split_at(1).1;

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
        rpc::create::<Plans, _>(&self.state, req, |r| &r.request_id, |r| r.plan).await
    }

    async fn get_plan(
        &self,
        req: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        rpc::get::<Plans, _>(&self.state, req, |r| r.id).await
    }

    async fn list_plans(
        &self,
        req: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        rpc::list::<Plans, _, _>(&self.state, req).await
    }

    async fn update_plan(
        &self,
        req: Request<pb::UpdatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        rpc::update::<Plans, _>(&self.state, req, |r| (r.plan, r.update_mask)).await
    }

    async fn delete_plan(
        &self,
        req: Request<pb::DeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        rpc::delete::<Plans, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_plan(
        &self,
        req: Request<pb::UndeletePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        rpc::undelete::<Plans, _>(&self.state, req, |r| r.id).await
    }
}
