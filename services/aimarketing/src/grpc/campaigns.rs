//! `fusion.aimarketing.v1.CampaignService`: the standard methods (on the shared kit),
//! the status steps — schedule, start, pause, resume, complete, cancel — each a custom
//! method that locks the campaign, checks the step against its status and is replayed
//! on a retry with the same request id, and the campaign's leads.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, ScopeValue};
use fusion_db::resource::Val;
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::campaign_service_server::CampaignService;
use fusion_proto::errors::FieldViolation;
use fusion_service::api::total;
use fusion_service::custom::lock;
use fusion_service::replay::{self, Begun};
use fusion_service::standard;
use fusion_tenancy::{LeasedStream, TenantContext};

use crate::domain::campaign::{self, CANCEL, COMPLETE, PAUSE, RESUME, SCHEDULE, START, Step};
use crate::error::AiMarketingError;
use crate::grpc::{AiMarketingApi, parts, reply};
use crate::store::campaign_leads::{self, MAX_IDS};
use crate::store::campaigns::{self, CampaignRow, Campaigns, open_for_leads};

impl AiMarketingApi {
    /// Moves campaign `id` one `step`, refusing a status the step does not start from
    /// (and a schedule without a start date).
    async fn step(
        &self,
        ctx: &TenantContext,
        step: &Step,
        key: Option<fusion_db::idempotency::RequestKey>,
        id: i64,
        etag: &str,
    ) -> Result<pb::Campaign, AiMarketingError> {
        let next = async |_: &mut fusion_db::TenantTx, current: &CampaignRow| {
            if !step.allows(&current.status) {
                return Err(AiMarketingError::CampaignStatus {
                    id: current.id,
                    status: current.status.clone(),
                    action: step.action,
                    allowed: step.allowed,
                });
            }
            if step.to == campaign::SCHEDULED && current.start_date.is_none() {
                return Err(AiMarketingError::CampaignStartDateMissing { id: current.id });
            }
            Ok(vec![("status", Val::text(step.to))])
        };
        lock::<Campaigns>(&self.state, ctx, step.method, key, id, etag)
            .await?
            .set(&self.state, id, next)
            .await
    }

    /// A status step request's parts.
    async fn step_request<R: prost::Message>(
        &self,
        req: Request<R>,
        step: &Step,
        fields: impl Fn(&R) -> (i64, &str, &str),
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        let (id, etag, request_id) = fields(&r);
        let key = self.state.kit.request_key(request_id, &r)?;
        reply(self.step(&ctx, step, key, id, etag).await)
    }
}

/// The lead ids of a RemoveCampaignLeads request: 1 to [`MAX_IDS`] positive ids.
fn removed_ids(r: &pb::RemoveCampaignLeadsRequest) -> Result<(), AiMarketingError> {
    let mut violations = Vec::new();
    if r.campaign_id <= 0 {
        violations.push(FieldViolation::new("campaign_id", "must be a positive id"));
    }
    if r.lead_ids.is_empty() || r.lead_ids.len() > MAX_IDS {
        violations.push(FieldViolation::new(
            "lead_ids",
            format!("name 1 to {MAX_IDS} leads"),
        ));
    }
    for (i, id) in r.lead_ids.iter().enumerate() {
        if *id <= 0 {
            violations.push(FieldViolation::new(
                format!("lead_ids[{i}]"),
                "must be a positive id",
            ));
        }
    }
    AiMarketingError::check(violations)
}

#[tonic::async_trait]
impl CampaignService for AiMarketingApi {
    async fn create_campaign(
        &self,
        req: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let campaign = r.campaign.unwrap_or_default();
        reply(standard::create::<Campaigns>(&self.state, &ctx, key, campaign).await)
    }

    async fn get_campaign(
        &self,
        req: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Campaigns>(&self.state, &ctx, r.id).await)
    }

    async fn list_campaigns(
        &self,
        req: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Campaigns>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_campaign(
        &self,
        req: Request<pb::UpdateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        let campaign = r.campaign.unwrap_or_default();
        reply(standard::update::<Campaigns>(&self.state, &ctx, campaign, r.update_mask).await)
    }

    async fn delete_campaign(
        &self,
        req: Request<pb::DeleteCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Campaigns>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_campaign(
        &self,
        req: Request<pb::UndeleteCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Campaigns>(&self.state, &ctx, r.id).await)
    }

    async fn schedule_campaign(
        &self,
        req: Request<pb::ScheduleCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &SCHEDULE, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    async fn start_campaign(
        &self,
        req: Request<pb::StartCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &START, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    async fn pause_campaign(
        &self,
        req: Request<pb::PauseCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &PAUSE, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    async fn resume_campaign(
        &self,
        req: Request<pb::ResumeCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &RESUME, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    async fn complete_campaign(
        &self,
        req: Request<pb::CompleteCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &COMPLETE, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    async fn cancel_campaign(
        &self,
        req: Request<pb::CancelCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.step_request(req, &CANCEL, |r| (r.id, &r.etag, &r.request_id))
            .await
    }

    type AddCampaignLeadsStream = LeasedStream<pb::AddCampaignLeadsResponse>;

    async fn add_campaign_leads(
        &self,
        req: Request<pb::AddCampaignLeadsRequest>,
    ) -> Result<Response<Self::AddCampaignLeadsStream>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let added = crate::campaign_leads::add(&self.state, &ctx, req.get_ref()).await?;
        // The stream ends when the token that opened it expires or is revoked.
        Ok(Response::new(fusion_tenancy::end_with_token(&req, added)))
    }

    async fn remove_campaign_leads(
        &self,
        req: Request<pb::RemoveCampaignLeadsRequest>,
    ) -> Result<Response<pb::RemoveCampaignLeadsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let kit = &self.state.kit;
        let key = kit.request_key(&r.request_id, &r)?;
        removed_ids(&r)?;
        let result = async {
            let mut tx = match replay::begin(kit, ctx.tenant_id, "RemoveCampaignLeads", key).await?
            {
                Begun::Replayed(answer) => return Ok(answer),
                Begun::Fresh(attempt) => attempt,
            };
            let campaign = open_for_leads(&mut tx, r.campaign_id).await?;
            let removed = campaign_leads::remove(&mut tx, &campaign, &r.lead_ids).await?;
            let row = campaigns::TABLE
                .fetch(&mut tx, r.campaign_id, fusion_db::resource::Read::live())
                .await?;
            let answer = pb::RemoveCampaignLeadsResponse {
                removed_lead_count: removed,
                campaign: Some(campaigns::to_pb(kit, row)),
            };
            Ok::<_, AiMarketingError>(tx.commit(answer).await?)
        };
        reply(result.await)
    }

    async fn list_campaign_leads(
        &self,
        req: Request<pb::ListCampaignLeadsRequest>,
    ) -> Result<Response<pb::ListCampaignLeadsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let kit = &self.state.kit;
        kit.api.require_id("campaign_id", r.campaign_id)?;
        let result = async {
            campaigns::TABLE
                .get::<CampaignRow>(
                    &kit.db,
                    ctx.tenant_id,
                    r.campaign_id,
                    fusion_db::resource::Read::live(),
                )
                .await?;
            let params = ListParams::new(r.page_size, r.page_token, r.filter, r.order_by, false);
            let scope = [("campaign_id", ScopeValue::Int(r.campaign_id))];
            let page = fusion_db::list::tenant_page::<campaign_leads::CampaignLeadRow>(
                &kit.db,
                kit.api.domain(),
                &campaign_leads::LIST,
                &params,
                &kit.pages,
                ctx.tenant_id,
                Some(&scope),
            )
            .await?;
            Ok::<_, AiMarketingError>(pb::ListCampaignLeadsResponse {
                campaign_leads: page.items.into_iter().map(campaign_leads::to_pb).collect(),
                next_page_token: page.next_page_token,
                total_size: total(page.total_size),
            })
        };
        reply(result.await)
    }
}
