//! `fusion.crm.v1.LeadService`: prospective buyers, as the sales team works them.
//!
//! A lead's status and pipeline stage name live keys of the tenant's pipeline, and the
//! status changes only through SetLeadStatus; its assignee is an active user of the
//! tenant (asked of identity, as the caller) and changes only through AssignLead; its
//! phone is kept as entered and in E.164 for
//! dedupe and search.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use fusion_db::list::ListParams;
use fusion_db::resource::{Read, Val};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::lead_service_server::LeadService;
use fusion_service::api::total;
use fusion_service::replay::{self, Begun};
use fusion_service::standard;

use crate::domain::pipeline;
use crate::grpc::API;
use crate::grpc::caller;
use crate::store::pipeline::{ensure_pipeline, require_lead_status};
use crate::{AppState, DOMAIN};

use crate::store::leads::*;

/// The LeadService implementation.
#[derive(Clone, Debug)]
pub(crate) struct LeadApi {
    state: AppState,
}

impl LeadApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The ExportLeads stream.
pub(crate) type ExportStream =
    Pin<Box<dyn Stream<Item = Result<pb::ExportLeadsResponse, Status>> + Send>>;

/// Rows an export reads per page.
const EXPORT_PAGE: i32 = 500;

#[tonic::async_trait]
impl LeadService for LeadApi {
    async fn create_lead(
        &self,
        req: Request<pb::CreateLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let lead = body.lead.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let created = standard::create::<Leads>(&self.state, &ctx, key, lead);
        Ok(Response::new(created.await?))
    }

    async fn get_lead(
        &self,
        req: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let lead = standard::get::<Leads>(&self.state, &ctx, id);
        Ok(Response::new(lead.await?))
    }

    async fn list_leads(
        &self,
        req: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Leads>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListLeadsResponse {
            leads: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_lead(
        &self,
        req: Request<pb::UpdateLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let lead = body.lead.unwrap_or_default();
        if may_change_pipeline(body.update_mask.as_ref(), &lead) {
            // Before the transaction: it may use a connection of its own.
            ensure_pipeline(&self.state, ctx.tenant_id).await?;
        }
        let updated = standard::update::<Leads>(&self.state, &ctx, lead, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_lead(
        &self,
        req: Request<pb::DeleteLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Leads>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_lead(
        &self,
        req: Request<pb::UndeleteLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Leads>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }

    async fn assign_lead(
        &self,
        req: Request<pb::AssignLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        API.require_id("id", r.id)?;
        if r.assignee_user_id != 0 {
            API.require_id("assignee_user_id", r.assignee_user_id)?;
            self.state
                .refs
                .user("assignee_user_id", r.assignee_user_id)
                .await?;
        }
        let mut tx = match replay::begin(&self.state.kit, ctx.tenant_id, "AssignLead", key).await? {
            Begun::Replayed(lead) => return Ok(Response::new(lead)),
            Begun::Fresh(attempt) => attempt,
        };
        let current: LeadRow = TABLE
            .fetch(&mut tx, r.id, Read::live().for_update())
            .await?;
        API.check_etag(&r.etag, current.version)?;
        let assignee = (r.assignee_user_id != 0).then_some(r.assignee_user_id);
        if current.assigned_to != assignee {
            TABLE
                .update(&mut tx, r.id, vec![("assigned_to", Val::Int(assignee))])
                .await?;
        }
        let row: LeadRow = TABLE.fetch(&mut tx, r.id, Read::live()).await?;
        Ok(Response::new(tx.commit(row.into_pb(&self.state)).await?))
    }

    async fn set_lead_status(
        &self,
        req: Request<pb::SetLeadStatusRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        API.require_id("id", r.id)?;
        let status = r.status.trim();
        if status.is_empty() {
            return Err(API.invalid("status", "is required"));
        }
        pipeline::key(status).map_err(|why| API.invalid("status", why))?;
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let mut tx =
            match replay::begin(&self.state.kit, ctx.tenant_id, "SetLeadStatus", key).await? {
                Begun::Replayed(lead) => return Ok(Response::new(lead)),
                Begun::Fresh(attempt) => attempt,
            };
        let current: LeadRow = TABLE
            .fetch(&mut tx, r.id, Read::live().for_update())
            .await?;
        API.check_etag(&r.etag, current.version)?;
        if current.status != status {
            require_lead_status(&mut tx, "status", status).await?;
            TABLE
                .update(&mut tx, r.id, vec![("status", Val::text(status))])
                .await?;
        }
        let row: LeadRow = TABLE.fetch(&mut tx, r.id, Read::live()).await?;
        Ok(Response::new(tx.commit(row.into_pb(&self.state)).await?))
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let ctx = caller(&req)?;
        super::convert::convert(&self.state, &ctx, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn merge_leads(
        &self,
        req: Request<pb::MergeLeadsRequest>,
    ) -> Result<Response<pb::MergeLeadsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let state = &self.state;
        let request = crate::store::merge::Request {
            method: "MergeLeads",
            survivor_id: r.survivor_id,
            merged_ids: &r.merged_ids,
            etag: &r.etag,
            dry_run: r.dry_run,
            request_id: fusion_db::idempotency::request_key(DOMAIN, &r.request_id, &r)?,
        };
        crate::store::merge::run(
            state,
            &ctx,
            &crate::store::merge::LEADS,
            request,
            |survivor: LeadRow, counts, merged_ids| pb::MergeLeadsResponse {
                survivor: Some(survivor.into_pb(state)),
                merged_ids,
                notes_repointed_count: counts.notes,
                tasks_repointed_count: counts.tasks,
                deals_repointed_count: counts.pointers[0],
                contacts_repointed_count: counts.pointers[1],
                dry_run: r.dry_run,
            },
        )
        .await
        .map(Response::new)
        .map_err(Into::into)
    }

    async fn import_leads(
        &self,
        req: Request<Streaming<pb::ImportLeadsRequest>>,
    ) -> Result<Response<pb::ImportLeadsResponse>, Status> {
        let ctx = caller(&req)?;
        super::import::import(&self.state, &ctx, req.into_inner())
            .await
            .map(Response::new)
    }

    type ExportLeadsStream = ExportStream;

    async fn export_leads(
        &self,
        req: Request<pb::ExportLeadsRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let order_by = if r.order_by.trim().is_empty() {
            "create_time".to_owned()
        } else {
            r.order_by
        };
        let mut params = ListParams::new(
            EXPORT_PAGE,
            String::new(),
            r.filter,
            order_by,
            r.show_deleted,
        );
        // The first page is read before the stream starts, so a bad filter or order is
        // the call's error rather than the stream's; it also counts the matching leads
        // (one count, as the export starts), and later pages do not.
        let first = standard::list::<Leads>(&self.state, &ctx, &params, None).await?;
        params.skip_total = true;
        let total_count = first.total_size;
        let state = self.state.clone();
        let (tx, rx) = mpsc::channel(64);
        // A client that cancels (or goes away) closes the channel: the next send fails
        // and the export stops reading.
        tokio::spawn(async move {
            let mut page = first;
            let mut exported_count = 0_i64;
            loop {
                for lead in page.items {
                    exported_count += 1;
                    let message = pb::ExportLeadsResponse {
                        lead: Some(lead),
                        exported_count,
                        total_count,
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                if page.next_page_token.is_empty() {
                    return;
                }
                params.page_token = page.next_page_token;
                page = match standard::list::<Leads>(&state, &ctx, &params, None).await {
                    Ok(next) => next,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
