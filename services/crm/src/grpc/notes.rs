//! `fusion.crm.v1.NoteService`: dated, authored text on a lead, contact, deal, project,
//! stage or lot.
//!
//! The record a note is on must be live in the caller's tenant when the note is created
//! (see [`require_subject`]) and never changes afterwards; the caller is the author.
//! Adding a note to a lead or contact is contact with them, so it moves their
//! `last_contacted_at` forward in the same transaction. Lists put pinned notes first,
//! newest first.

use tonic::{Request, Response, Status};

use fusion_db::list::ListParams;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::note_service_server::NoteService;
use fusion_service::api::total;
use fusion_service::standard;

use crate::grpc::{CrmApi, parts, reply};
use crate::store::notes::*;
use crate::store::subject_scope;

#[tonic::async_trait]
impl NoteService for CrmApi {
    async fn create_note(
        &self,
        req: Request<pb::CreateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let note = r.note.unwrap_or_default();
        reply(standard::create::<Notes>(&self.state, &ctx, key, note).await)
    }

    async fn get_note(
        &self,
        req: Request<pb::GetNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Notes>(&self.state, &ctx, r.id).await)
    }

    async fn list_notes(
        &self,
        req: Request<pb::ListNotesRequest>,
    ) -> Result<Response<pb::ListNotesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let scope = subject_scope("notable_type", "notable_id", &r.notable_type, r.notable_id)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Notes>(&self.state, &ctx, &params, Some(&scope)).await?;
        Ok(Response::new(pb::ListNotesResponse {
            notes: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_note(
        &self,
        req: Request<pb::UpdateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let (ctx, r) = parts(req)?;
        let note = r.note.unwrap_or_default();
        reply(standard::update::<Notes>(&self.state, &ctx, note, r.update_mask).await)
    }

    async fn delete_note(
        &self,
        req: Request<pb::DeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Notes>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_note(
        &self,
        req: Request<pb::UndeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Notes>(&self.state, &ctx, r.id).await)
    }
}
