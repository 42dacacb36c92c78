//! `fusion.crm.v1.TaskService`: things to do, for a user of the tenant, optionally
//! about a lead, contact, deal, project, stage or lot.
//!
//! The record a task is about must be live in the caller's tenant when the task is
//! created (see [`require_subject`]) and never changes afterwards; the assignee is an
//! active user of the tenant (asked of identity, as the caller) and whoever assigns the
//! task, creating or reassigning it, becomes its `assigner_user_id`. A task's status
//! is output only: a new task is open, and only StartTask, CompleteTask, CancelTask
//! and ReopenTask move it (see [`Transition`]), so `complete_time` is set exactly while
//! the task is completed (the table checks it too). Each takes an AIP-155 request id.

use chrono::Utc;
use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::idempotency::RequestKey;
use fusion_db::list::ListParams;
use fusion_db::resource::Val;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::task_service_server::TaskService;
use fusion_service::api::total;
use fusion_service::standard;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::error::CrmError;
use crate::grpc::{API, CrmApi, lock, parts, reply};
use crate::store::subject_scope;
use crate::store::tasks::*;

/// Moves live task `id` (behind `etag`) as `transition` says from its current status,
/// setting or clearing its completion time with it; a retry with the request id of a
/// first call returns that call's result.
async fn transition(
    state: &AppState,
    ctx: &TenantContext,
    key: Option<RequestKey>,
    id: i64,
    etag: &str,
    transition: Transition,
) -> Result<pb::Task, Status> {
    API.require_id("id", id)?;
    let next = async |_: &mut TenantTx, current: &TaskRow| {
        let Some(status) = transition.next(current)? else {
            return Ok(Vec::new());
        };
        let completed_at = (status == COMPLETED).then(Utc::now);
        Ok(vec![
            ("status", Val::text(status)),
            ("completed_at", Val::Timestamp(completed_at)),
        ])
    };
    let locked = lock::<Tasks>(state, ctx, transition.method(), key, id, etag).await?;
    locked.set(state, id, next).await
}

/// The custom methods that move a task's status.
#[derive(Clone, Copy, Debug)]
enum Transition {
    /// open → in_progress.
    Start,
    /// open or in_progress → completed.
    Complete,
    /// open or in_progress → cancelled.
    Cancel,
    /// completed or cancelled → open.
    Reopen,
}

impl Transition {
    /// The method's name, under which its request ids are kept.
    fn method(self) -> &'static str {
        match self {
            Transition::Start => "StartTask",
            Transition::Complete => "CompleteTask",
            Transition::Cancel => "CancelTask",
            Transition::Reopen => "ReopenTask",
        }
    }

    /// The status `task` moves to: None when it is already there (the call returns it
    /// unchanged), FAILED_PRECONDITION when the method does not accept its status.
    fn next(self, task: &TaskRow) -> Result<Option<&'static str>, CrmError> {
        let status = task.status.as_str();
        let id = task.id;
        match (self, status) {
            (Transition::Start, IN_PROGRESS)
            | (Transition::Complete, COMPLETED)
            | (Transition::Cancel, CANCELLED) => Ok(None),
            (Transition::Start | Transition::Cancel, COMPLETED) => {
                Err(CrmError::TaskCompleted { id })
            }
            (Transition::Start | Transition::Complete, CANCELLED) => {
                Err(CrmError::TaskCancelled { id })
            }
            (Transition::Start, _) => Ok(Some(IN_PROGRESS)),
            (Transition::Complete, _) => Ok(Some(COMPLETED)),
            (Transition::Cancel, _) => Ok(Some(CANCELLED)),
            (Transition::Reopen, COMPLETED | CANCELLED) => Ok(Some(OPEN)),
            (Transition::Reopen, _) => Ok(None),
        }
    }
}

#[tonic::async_trait]
impl TaskService for CrmApi {
    async fn create_task(
        &self,
        req: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let task = r.task.unwrap_or_default();
        reply(standard::create::<Tasks>(&self.state, &ctx, key, task).await)
    }

    async fn get_task(
        &self,
        req: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Tasks>(&self.state, &ctx, r.id).await)
    }

    async fn list_tasks(
        &self,
        req: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let mut scope = subject_scope(
            "taskable_type",
            "taskable_id",
            &r.taskable_type,
            r.taskable_id,
        )?;
        if r.assigned_to_me {
            scope.push(("assigned_to", fusion_db::list::ScopeValue::Int(ctx.user_id)));
        }
        let order_by = list_query(&r.filter, &r.order_by)?;
        let (filter, page_token, pinned) = if r.overdue_only {
            let (now, token) = overdue_token(&r.page_token)?;
            (overdue_filter(&r.filter, now), token, Some(now))
        } else {
            (r.filter, r.page_token, None)
        };
        let params = ListParams::new(r.page_size, page_token, filter, order_by, r.show_deleted);
        let page = standard::list::<Tasks>(&self.state, &ctx, &params, Some(&scope)).await?;
        let next_page_token = match pinned {
            Some(now) if !page.next_page_token.is_empty() => format!(
                "{}{OVERDUE_TOKEN}{}",
                now.timestamp_micros(),
                page.next_page_token
            ),
            _ => page.next_page_token,
        };
        Ok(Response::new(pb::ListTasksResponse {
            tasks: page.items,
            next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_task(
        &self,
        req: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let task = r.task.unwrap_or_default();
        reply(standard::update::<Tasks>(&self.state, &ctx, task, r.update_mask).await)
    }

    async fn delete_task(
        &self,
        req: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Tasks>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_task(
        &self,
        req: Request<pb::UndeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Tasks>(&self.state, &ctx, r.id).await)
    }

    async fn start_task(
        &self,
        req: Request<pb::StartTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let moved = transition(&self.state, &ctx, key, r.id, &r.etag, Transition::Start);
        reply(moved.await)
    }

    async fn complete_task(
        &self,
        req: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let moved = transition(&self.state, &ctx, key, r.id, &r.etag, Transition::Complete);
        reply(moved.await)
    }

    async fn cancel_task(
        &self,
        req: Request<pb::CancelTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let moved = transition(&self.state, &ctx, key, r.id, &r.etag, Transition::Cancel);
        reply(moved.await)
    }

    async fn reopen_task(
        &self,
        req: Request<pb::ReopenTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let moved = transition(&self.state, &ctx, key, r.id, &r.etag, Transition::Reopen);
        reply(moved.await)
    }
}
