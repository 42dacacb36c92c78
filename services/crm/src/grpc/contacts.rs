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

use crate::grpc::caller;
use crate::{AppState, DOMAIN};

use crate::store::contacts::*;

/// The ContactService implementation.
#[derive(Clone, Debug)]
pub(crate) struct ContactApi {
    state: AppState,
}

impl ContactApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl ContactService for ContactApi {
    async fn create_contact(
        &self,
        req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let contact = body.contact.unwrap_or_default();
        let created = standard::create::<Contacts>(&self.state, &ctx, key, contact);
        Ok(Response::new(created.await?))
    }

    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let contact = standard::get::<Contacts>(&self.state, &ctx, id);
        Ok(Response::new(contact.await?))
    }

    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
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
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let contact = body.contact.unwrap_or_default();
        let updated = standard::update::<Contacts>(&self.state, &ctx, contact, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_contact(
        &self,
        req: Request<pb::DeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Contacts>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_contact(
        &self,
        req: Request<pb::UndeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Contacts>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }

    async fn merge_contacts(
        &self,
        req: Request<pb::MergeContactsRequest>,
    ) -> Result<Response<pb::MergeContactsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let state = &self.state;
        let request = crate::store::merge::Request {
            method: "MergeContacts",
            survivor_id: r.survivor_id,
            merged_ids: &r.merged_ids,
            etag: &r.etag,
            dry_run: r.dry_run,
            request_id: fusion_db::idempotency::request_key(DOMAIN, &r.request_id, &r)?,
        };
        crate::store::merge::run(
            state,
            &ctx,
            &crate::store::merge::CONTACTS,
            request,
            |survivor: ContactRow, counts, merged_ids| pb::MergeContactsResponse {
                survivor: Some(survivor.into_pb(state)),
                merged_ids,
                notes_repointed_count: counts.notes,
                tasks_repointed_count: counts.tasks,
                deals_repointed_count: counts.pointers[0],
                leads_repointed_count: counts.pointers[1],
                dry_run: r.dry_run,
            },
        )
        .await
        .map(Response::new)
        .map_err(Into::into)
    }
}
