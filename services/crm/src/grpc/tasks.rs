//! `fusion.crm.v1.TaskService`: things to do, for a user of the tenant, optionally
//! about a lead, contact, deal, project, stage or lot.
//!
//! The record a task is about must be live in the caller's tenant when the task is
//! created (see [`require_subject`]) and never changes afterwards; the assignee is an
//! active user of the tenant (asked of identity, as the caller) and whoever assigns the
//! task, creating or reassigning it, becomes its `assigned_by`. Only CompleteTask
//! completes a task and only ReopenTask reopens a completed one, so `complete_time` is
//! set exactly while the task is completed (the table checks it too).

use chrono::Utc;
use tonic::{Request, Response, Status};

use fusion_db::list::ListParams;
use fusion_db::resource::Read;
use fusion_db::resource::Val;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::task_service_server::TaskService;
use fusion_service::api::total;

use fusion_service::standard;

use crate::AppState;
use crate::error::CrmError;
use crate::grpc::API;
use crate::grpc::caller;
use crate::store::subject_scope;

use crate::store::tasks::*;

/// The TaskService implementation.
#[derive(Clone, Debug)]
pub(crate) struct TaskApi {
    state: AppState,
}

impl TaskApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Moves live task `id` (behind `etag`) to the status `change` picks from its current
    /// one (None leaves it as it is), setting or clearing its completion time with it.
    async fn transition(
        &self,
        tenant_id: i64,
        id: i64,
        etag: &str,
        change: impl FnOnce(&TaskRow) -> Result<Option<&'static str>, Status>,
    ) -> Result<pb::Task, Status> {
        API.require_id("id", id)?;
        let mut tx = self.state.db.begin(tenant_id).await?;
        let current: TaskRow = TABLE.fetch(&mut tx, id, Read::live().for_update()).await?;
        API.check_etag(etag, current.version)?;
        if let Some(status) = change(&current)? {
            let completed_at = (status == COMPLETED).then(Utc::now);
            TABLE
                .update(
                    &mut tx,
                    id,
                    vec![
                        ("status", Val::text(status)),
                        ("completed_at", Val::Timestamp(completed_at)),
                    ],
                )
                .await?;
        }
        let row: TaskRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
        tx.commit().await?;
        Ok(row.into_pb(&self.state))
    }
}

#[tonic::async_trait]
impl TaskService for TaskApi {
    async fn create_task(
        &self,
        req: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let task = body.task.unwrap_or_default();
        let created = standard::create::<Tasks>(&self.state, &ctx, key, task);
        Ok(Response::new(created.await?))
    }

    async fn get_task(
        &self,
        req: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let task = standard::get::<Tasks>(&self.state, &ctx, id);
        Ok(Response::new(task.await?))
    }

    async fn list_tasks(
        &self,
        req: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
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
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let task = body.task.unwrap_or_default();
        let updated = standard::update::<Tasks>(&self.state, &ctx, task, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_task(
        &self,
        req: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Tasks>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_task(
        &self,
        req: Request<pb::UndeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Tasks>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }

    async fn complete_task(
        &self,
        req: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let task = self
            .transition(ctx.tenant_id, r.id, &r.etag, |task| {
                match task.status.as_str() {
                    COMPLETED => Ok(None),
                    CANCELLED => Err(CrmError::TaskCancelled { id: task.id }.into()),
                    _ => Ok(Some(COMPLETED)),
                }
            })
            .await?;
        Ok(Response::new(task))
    }

    async fn reopen_task(
        &self,
        req: Request<pb::ReopenTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let task = self
            .transition(ctx.tenant_id, r.id, &r.etag, |task| {
                Ok(matches!(task.status.as_str(), COMPLETED | CANCELLED).then_some("open"))
            })
            .await?;
        Ok(Response::new(task))
    }
}
