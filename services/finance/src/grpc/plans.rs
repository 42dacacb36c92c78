//! `fusion.finance.v1.CommissionPlanService`: the standard methods, on the shared kit
//! (see `crate::store::plans`).

use tonic::{Request, Response, Status};

use fusion_db::list::ListParams;
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::commission_plan_service_server::CommissionPlanService;
use fusion_service::api::total;
use fusion_service::standard;

use crate::grpc::{FinanceApi, parts, reply};
use crate::store::plans::Plans;

#[tonic::async_trait]
impl CommissionPlanService for FinanceApi {
    async fn create_commission_plan(
        &self,
        req: Request<pb::CreateCommissionPlanRequest>,
    ) -> Result<Response<pb::CommissionPlan>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let plan = r.commission_plan.unwrap_or_default();
        reply(standard::create::<Plans>(&self.state, &ctx, key, plan).await)
    }

    async fn get_commission_plan(
        &self,
        req: Request<pb::GetCommissionPlanRequest>,
    ) -> Result<Response<pb::CommissionPlan>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Plans>(&self.state, &ctx, r.id).await)
    }

    async fn list_commission_plans(
        &self,
        req: Request<pb::ListCommissionPlansRequest>,
    ) -> Result<Response<pb::ListCommissionPlansResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Plans>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListCommissionPlansResponse {
            commission_plans: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_commission_plan(
        &self,
        req: Request<pb::UpdateCommissionPlanRequest>,
    ) -> Result<Response<pb::CommissionPlan>, Status> {
        let (ctx, r) = parts(req)?;
        let plan = r.commission_plan.unwrap_or_default();
        reply(standard::update::<Plans>(&self.state, &ctx, plan, r.update_mask).await)
    }

    async fn delete_commission_plan(
        &self,
        req: Request<pb::DeleteCommissionPlanRequest>,
    ) -> Result<Response<pb::CommissionPlan>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Plans>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_commission_plan(
        &self,
        req: Request<pb::UndeleteCommissionPlanRequest>,
    ) -> Result<Response<pb::CommissionPlan>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Plans>(&self.state, &ctx, r.id).await)
    }
}
