//! `fusion.crm.v1.ContactService`: the people and companies a tenant deals with.
//!
//! A contact shares its person fields with leads (see [`super::person`]): its phone is
//! kept as entered and in E.164. Its `lead_id` is output only: ConvertLead sets it and
//! merges re-point it; Create and Update ignore it (a mask naming it is refused). A contact merged into
//! another stays deleted; MergeContacts folds duplicates into one (see `merge`).

use tonic::{Request, Response, Status};

use fusion_db::list::ListParams;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::contact_service_server::ContactService;
use fusion_service::api::total;
use fusion_service::standard;

use crate::grpc::{CrmApi, parts, reply};
use crate::store::contacts::*;
use crate::store::merge::{self, CONTACTS};

#[tonic::async_trait]
impl ContactService for CrmApi {
    async fn create_contact(
        &self,
        req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let contact = r.contact.unwrap_or_default();
        reply(standard::create::<Contacts>(&self.state, &ctx, key, contact).await)
    }

    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Contacts>(&self.state, &ctx, r.id).await)
    }

    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Contacts>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListContactsResponse {
            contacts: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_contact(
        &self,
        req: Request<pb::UpdateContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (ctx, r) = parts(req)?;
        let contact = r.contact.unwrap_or_default();
        reply(standard::update::<Contacts>(&self.state, &ctx, contact, r.update_mask).await)
    }

    async fn delete_contact(
        &self,
        req: Request<pb::DeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Contacts>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_contact(
        &self,
        req: Request<pb::UndeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Contacts>(&self.state, &ctx, r.id).await)
    }

    async fn merge_contacts(
        &self,
        req: Request<pb::MergeContactsRequest>,
    ) -> Result<Response<pb::MergeContactsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let request = merge::Request {
            method: "MergeContacts",
            survivor_id: r.survivor_id,
            merged_ids: &r.merged_ids,
            etag: &r.etag,
            dry_run: r.dry_run,
            request_id: self.state.kit.request_key(&r.request_id, &r)?,
        };
        let state = &self.state;
        let merged = merge::run(
            state,
            &ctx,
            &CONTACTS,
            request,
            |row: ContactRow, n, ids| pb::MergeContactsResponse {
                survivor: Some(row.into_pb(state)),
                merged_ids: ids,
                notes_repointed_count: n.notes,
                tasks_repointed_count: n.tasks,
                deals_repointed_count: n.pointers[0],
                leads_repointed_count: n.pointers[1],
                dry_run: r.dry_run,
            },
        );
        reply(merged.await)
    }
}
