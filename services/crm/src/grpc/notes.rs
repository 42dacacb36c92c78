//! `fusion.crm.v1.NoteService` (being built: every method answers UNIMPLEMENTED until written).

use tonic::{Request, Response, Status};

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::note_service_server::NoteService;

use crate::AppState;

/// The NoteService implementation.
#[derive(Clone, Debug)]
pub(crate) struct NoteApi {
    #[allow(dead_code)]
    state: AppState,
}

impl NoteApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl NoteService for NoteApi {
    async fn create_note(
        &self,
        _req: Request<pb::CreateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        Err(Status::unimplemented("CreateNote is not served yet"))
    }

    async fn get_note(
        &self,
        _req: Request<pb::GetNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        Err(Status::unimplemented("GetNote is not served yet"))
    }

    async fn list_notes(
        &self,
        _req: Request<pb::ListNotesRequest>,
    ) -> Result<Response<pb::ListNotesResponse>, Status> {
        Err(Status::unimplemented("ListNotes is not served yet"))
    }

    async fn update_note(
        &self,
        _req: Request<pb::UpdateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        Err(Status::unimplemented("UpdateNote is not served yet"))
    }

    async fn delete_note(
        &self,
        _req: Request<pb::DeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        Err(Status::unimplemented("DeleteNote is not served yet"))
    }

    async fn undelete_note(
        &self,
        _req: Request<pb::UndeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        Err(Status::unimplemented("UndeleteNote is not served yet"))
    }
}
