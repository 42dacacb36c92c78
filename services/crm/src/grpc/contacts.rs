//! `fusion.crm.v1.ContactService` (being built: every method answers UNIMPLEMENTED until written).

use tonic::{Request, Response, Status};

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::contact_service_server::ContactService;

use crate::AppState;

/// The ContactService implementation.
#[derive(Clone, Debug)]
pub(crate) struct ContactApi {
    #[allow(dead_code)]
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
        _req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        Err(Status::unimplemented("CreateContact is not served yet"))
    }

    async fn get_contact(
        &self,
        _req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        Err(Status::unimplemented("GetContact is not served yet"))
    }

    async fn list_contacts(
        &self,
        _req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        Err(Status::unimplemented("ListContacts is not served yet"))
    }

    async fn update_contact(
        &self,
        _req: Request<pb::UpdateContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        Err(Status::unimplemented("UpdateContact is not served yet"))
    }

    async fn delete_contact(
        &self,
        _req: Request<pb::DeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        Err(Status::unimplemented("DeleteContact is not served yet"))
    }

    async fn undelete_contact(
        &self,
        _req: Request<pb::UndeleteContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        Err(Status::unimplemented("UndeleteContact is not served yet"))
    }

    async fn merge_contacts(
        &self,
        _req: Request<pb::MergeContactsRequest>,
    ) -> Result<Response<pb::MergeContactsResponse>, Status> {
        Err(Status::unimplemented("MergeContacts is not served yet"))
    }
}
