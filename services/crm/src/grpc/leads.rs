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

use fusion_db::TenantTx;
use fusion_db::list::ListParams;
use fusion_db::resource::Val;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::lead_service_server::LeadService;
use fusion_service::api::total;
use fusion_service::standard;

use crate::domain::pipeline;
use crate::grpc::{API, CrmApi, lock, parts, reply};
use crate::store::leads::*;
use crate::store::merge::{self, LEADS};
use crate::store::pipeline::{ensure_pipeline, require_lead_status};

/// The ExportLeads stream.
pub(crate) type ExportStream =
    Pin<Box<dyn Stream<Item = Result<pb::ExportLeadsResponse, Status>> + Send>>;

/// Rows an export reads per page.
const EXPORT_PAGE: i32 = 500;

#[tonic::async_trait]
impl LeadService for CrmApi {
    async fn create_lead(
        &self,
        req: Request<pb::CreateLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let lead = r.lead.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::create::<Leads>(&self.state, &ctx, key, lead).await)
    }

    async fn get_lead(
        &self,
        req: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Leads>(&self.state, &ctx, r.id).await)
    }

    async fn list_leads(
        &self,
        req: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        let (ctx, r) = parts(req)?;
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
        let (ctx, r) = parts(req)?;
        let lead = r.lead.unwrap_or_default();
        if may_change_pipeline(r.update_mask.as_ref(), &lead) {
            // Before the transaction: it may use a connection of its own.
            ensure_pipeline(&self.state, ctx.tenant_id).await?;
        }
        reply(standard::update::<Leads>(&self.state, &ctx, lead, r.update_mask).await)
    }

    async fn delete_lead(
        &self,
        req: Request<pb::DeleteLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Leads>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_lead(
        &self,
        req: Request<pb::UndeleteLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Leads>(&self.state, &ctx, r.id).await)
    }

    async fn assign_lead(
        &self,
        req: Request<pb::AssignLeadRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        API.require_id("id", r.id)?;
        if r.assignee_user_id != 0 {
            API.require_id("assignee_user_id", r.assignee_user_id)?;
            self.state
                .refs
                .user("assignee_user_id", r.assignee_user_id)
                .await?;
        }
        let assignee = (r.assignee_user_id != 0).then_some(r.assignee_user_id);
        let assign = async |_: &mut TenantTx, current: &LeadRow| {
            if current.assigned_to == assignee {
                return Ok(Vec::new());
            }
            Ok(vec![("assigned_to", Val::Int(assignee))])
        };
        let locked = lock::<Leads>(&self.state, &ctx, "AssignLead", key, r.id, &r.etag);
        locked
            .await?
            .set::<_, Status>(&self.state, r.id, assign)
            .await
            .map(Response::new)
    }

    async fn set_lead_status(
        &self,
        req: Request<pb::SetLeadStatusRequest>,
    ) -> Result<Response<pb::Lead>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        API.require_id("id", r.id)?;
        let status = r.status.trim();
        if status.is_empty() {
            return Err(API.invalid("status", "is required"));
        }
        pipeline::key(status).map_err(|why| API.invalid("status", why))?;
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let set = async |tx: &mut TenantTx, current: &LeadRow| {
            if current.status == status {
                return Ok(Vec::new());
            }
            require_lead_status(tx, "status", status).await?;
            Ok(vec![("status", Val::text(status))])
        };
        let locked = lock::<Leads>(&self.state, &ctx, "SetLeadStatus", key, r.id, &r.etag);
        locked
            .await?
            .set::<_, Status>(&self.state, r.id, set)
            .await
            .map(Response::new)
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let (ctx, r) = parts(req)?;
        reply(super::convert::convert(&self.state, &ctx, r).await)
    }

    async fn merge_leads(
        &self,
        req: Request<pb::MergeLeadsRequest>,
    ) -> Result<Response<pb::MergeLeadsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let request = merge::Request {
            method: "MergeLeads",
            survivor_id: r.survivor_id,
            merged_ids: &r.merged_ids,
            etag: &r.etag,
            dry_run: r.dry_run,
            request_id: self.state.kit.request_key(&r.request_id, &r)?,
        };
        let state = &self.state;
        let merged = merge::run(state, &ctx, &LEADS, request, |row: LeadRow, n, ids| {
            pb::MergeLeadsResponse {
                survivor: Some(row.into_pb(state)),
                merged_ids: ids,
                notes_repointed_count: n.notes,
                tasks_repointed_count: n.tasks,
                deals_repointed_count: n.pointers[0],
                contacts_repointed_count: n.pointers[1],
                dry_run: r.dry_run,
            }
        });
        reply(merged.await)
    }

    async fn import_leads(
        &self,
        req: Request<Streaming<pb::ImportLeadsRequest>>,
    ) -> Result<Response<pb::ImportLeadsResponse>, Status> {
        let (ctx, stream) = parts(req)?;
        reply(super::import::import(&self.state, &ctx, stream).await)
    }

    type ExportLeadsStream = ExportStream;

    async fn export_leads(
        &self,
        req: Request<pb::ExportLeadsRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let (ctx, r) = parts(req)?;
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
