//! `fusion.crm.v1.TaskService` (being built: every method answers UNIMPLEMENTED until written).

use tonic::{Request, Response, Status};

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::task_service_server::TaskService;

use crate::AppState;

/// The TaskService implementation.
#[derive(Clone, Debug)]
pub(crate) struct TaskApi {
    #[allow(dead_code)]
    state: AppState,
}

impl TaskApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl TaskService for TaskApi {
    async fn create_task(
        &self,
        _req: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("CreateTask is not served yet"))
    }

    async fn get_task(
        &self,
        _req: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("GetTask is not served yet"))
    }

    async fn list_tasks(
        &self,
        _req: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        Err(Status::unimplemented("ListTasks is not served yet"))
    }

    async fn update_task(
        &self,
        _req: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("UpdateTask is not served yet"))
    }

    async fn delete_task(
        &self,
        _req: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("DeleteTask is not served yet"))
    }

    async fn undelete_task(
        &self,
        _req: Request<pb::UndeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("UndeleteTask is not served yet"))
    }

    async fn complete_task(
        &self,
        _req: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("CompleteTask is not served yet"))
    }

    async fn reopen_task(
        &self,
        _req: Request<pb::ReopenTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        Err(Status::unimplemented("ReopenTask is not served yet"))
    }
}
