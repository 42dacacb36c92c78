//! `fusion.crm.v1.PipelineService`: each tenant's lead statuses and deal stages.
//!
//! A tenant starts with the defaults of [`crate::domain::pipeline`] the first time its
//! pipeline is read or used. Keys are immutable and stay reserved once used (a deleted
//! status still exists, so the leads that name it stay valid); new values must name a
//! live key. A deal stage's outcome is immutable too: deals prove their status against
//! it in the database.

use tonic::{Request, Response, Status};

use fusion_db::list::ListParams;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::pipeline_service_server::PipelineService;
use fusion_service::api::{populated, total};
use fusion_service::standard;

use crate::grpc::{API, CrmApi, parts, reply};
use crate::store::pipeline::*;
use crate::store::settings::{lock_settings, read_settings, save_default_country};

#[tonic::async_trait]
impl PipelineService for CrmApi {
    async fn list_lead_statuses(
        &self,
        req: Request<pb::ListLeadStatusesRequest>,
    ) -> Result<Response<pb::ListLeadStatusesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            String::new(),
            String::new(),
            r.show_deleted,
        );
        let page = standard::list::<Statuses>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListLeadStatusesResponse {
            lead_statuses: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn get_lead_status(
        &self,
        req: Request<pb::GetLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let (ctx, r) = parts(req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::get::<Statuses>(&self.state, &ctx, r.id).await)
    }

    async fn create_lead_status(
        &self,
        req: Request<pb::CreateLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let (ctx, body) = parts(req)?;
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let status = body.lead_status.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::create::<Statuses>(&self.state, &ctx, key, status).await)
    }

    async fn update_lead_status(
        &self,
        req: Request<pb::UpdateLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let (ctx, body) = parts(req)?;
        let status = body.lead_status.unwrap_or_default();
        reply(standard::update::<Statuses>(&self.state, &ctx, status, body.update_mask).await)
    }

    async fn delete_lead_status(
        &self,
        req: Request<pb::DeleteLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Statuses>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_lead_status(
        &self,
        req: Request<pb::UndeleteLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Statuses>(&self.state, &ctx, r.id).await)
    }

    async fn list_deal_stages(
        &self,
        req: Request<pb::ListDealStagesRequest>,
    ) -> Result<Response<pb::ListDealStagesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            String::new(),
            String::new(),
            r.show_deleted,
        );
        let page = standard::list::<Stages>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListDealStagesResponse {
            deal_stages: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn get_deal_stage(
        &self,
        req: Request<pb::GetDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let (ctx, r) = parts(req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::get::<Stages>(&self.state, &ctx, r.id).await)
    }

    async fn create_deal_stage(
        &self,
        req: Request<pb::CreateDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let (ctx, body) = parts(req)?;
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let stage = body.deal_stage.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::create::<Stages>(&self.state, &ctx, key, stage).await)
    }

    async fn update_deal_stage(
        &self,
        req: Request<pb::UpdateDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let (ctx, body) = parts(req)?;
        let stage = body.deal_stage.unwrap_or_default();
        reply(standard::update::<Stages>(&self.state, &ctx, stage, body.update_mask).await)
    }

    async fn delete_deal_stage(
        &self,
        req: Request<pb::DeleteDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Stages>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_deal_stage(
        &self,
        req: Request<pb::UndeleteDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Stages>(&self.state, &ctx, r.id).await)
    }

    async fn get_crm_settings(
        &self,
        req: Request<pb::GetCrmSettingsRequest>,
    ) -> Result<Response<pb::CrmSettings>, Status> {
        let (ctx, _) = parts(req)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let settings = read_settings(&self.state, &mut tx, ctx.tenant_id).await?;
        tx.commit().await?;
        Ok(Response::new(settings))
    }

    async fn update_crm_settings(
        &self,
        req: Request<pb::UpdateCrmSettingsRequest>,
    ) -> Result<Response<pb::CrmSettings>, Status> {
        let (ctx, body) = parts(req)?;
        let sent = body.crm_settings.unwrap_or_default();
        let mask = API.mask(
            body.update_mask,
            &["default_region_code"],
            &["tenant_id", "update_time"],
            &populated(&[("default_region_code", !sent.default_region_code.is_empty())]),
        )?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current = lock_settings(&mut tx).await?;
        API.check_etag(&sent.etag, current.as_ref().map_or(0, |c| c.version))?;
        if mask.has("default_region_code") {
            let code = sent.default_region_code.trim().to_uppercase();
            if code.len() != 2 || code.parse::<phonenumber::country::Id>().is_err() {
                return Err(API.invalid(
                    "crm_settings.default_region_code",
                    "must be a CLDR region code (ISO 3166-1 alpha-2) such as AU",
                ));
            }
            save_default_country(&mut tx, ctx.tenant_id, &code).await?;
        }
        let settings = read_settings(&self.state, &mut tx, ctx.tenant_id).await?;
        tx.commit().await?;
        Ok(Response::new(settings))
    }
}
