//! `fusion.crm.v1.TaskService`: things to do, for a user of the tenant, optionally
//! about a lead, contact, deal, project, stage or lot.
//!
//! The record a task is about must be live in the caller's tenant when the task is
//! created (see [`require_subject`]) and never changes afterwards; the assignee is an
//! active user of the tenant (asked of identity, as the caller) and whoever assigns the
//! task, creating or reassigning it, becomes its `assigned_by`. Only CompleteTask
//! completes a task and only ReopenTask reopens a completed one, so `complete_time` is
//! set exactly while the task is completed (the table checks it too).

use chrono::{DateTime, SecondsFormat, Utc};
use tonic::{Request, Response, Status};

use fusion_db::filter::{self, FieldKind, FieldSpec};
use fusion_db::idempotency;
use fusion_db::list::{ListParams, ListSpec};
use fusion_db::order::parse_order_by;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::task_service_server::TaskService;
use fusion_service::api::{opt_ts, populated, total, ts};

use super::{
    API, REQUEST_IDS, caller, list_page, purge_ts, require_subject, subject_scope, values_of,
};
use crate::domain::validate;
use crate::refs::SUBJECTS;
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.tasks",
    select: "id, tenant_id, taskable_type, taskable_id, assigned_by, assigned_to, title, \
             description, due_date, completed_at, priority, status, \
             coalesce(status IN ('open', 'in_progress') AND due_date < now(), false) AS overdue, \
             version, created_at, updated_at, deleted_at",
    what: "task",
};

/// What ListTasks reads: the fields of the proto, then `priority_rank`, which only
/// `order_by priority` reaches (see [`list_query`]), so priorities sort by rank while
/// filters compare their names.
const LIST_FIELDS: &[FieldSpec] = &[
    FieldSpec::new("taskable_type", "taskable_type", FieldKind::Text),
    FieldSpec::new("taskable_id", "taskable_id", FieldKind::Int),
    FieldSpec::new("assigned_by", "assigned_by", FieldKind::Int),
    FieldSpec::new("assigned_to", "assigned_to", FieldKind::Int),
    FieldSpec::new("title", "title", FieldKind::Text),
    FieldSpec::new("priority", "priority", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("due_time", "due_date", FieldKind::Timestamp),
    FieldSpec::new("complete_time", "completed_at", FieldKind::Timestamp),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
    FieldSpec::new(PRIORITY_RANK, "priority_rank", FieldKind::Int),
];

/// The fields callers may name in a filter or `order_by`.
const FIELDS: &[FieldSpec] = LIST_FIELDS.split_at(LIST_FIELDS.len() - 1).0;

const PRIORITY_RANK: &str = "priority_rank";

/// What callers may order by, and the default, as the proto names them.
const ORDER_FIELDS: &[&str] = &[
    "due_time",
    "priority",
    "status",
    "title",
    "create_time",
    "update_time",
];
const DEFAULT_ORDER: &str = "due_time, priority desc";

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: LIST_FIELDS,
    order_fields: &[
        "due_time",
        PRIORITY_RANK,
        "status",
        "title",
        "create_time",
        "update_time",
    ],
    default_order: "due_time, priority_rank desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What UpdateTask may change (the status only among open, in progress and
/// cancelled).
const MUTABLE: &[&str] = &[
    "assigned_to",
    "title",
    "description",
    "due_time",
    "priority",
    "status",
];

/// What CreateTask sets besides [`MUTABLE`].
const CREATE_ONLY: &[&str] = &["taskable_type", "taskable_id"];

/// What an update mask may not name.
const FIXED: &[&str] = &[
    "taskable_type",
    "taskable_id",
    "assigned_by",
    "complete_time",
    "overdue",
];

const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
const STATUSES: &[&str] = &["open", "in_progress", "completed", "cancelled"];
const COMPLETED: &str = "completed";
const CANCELLED: &str = "cancelled";

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    pub id: i64,
    pub tenant_id: i64,
    pub taskable_type: Option<String>,
    pub taskable_id: Option<i64>,
    pub assigned_by: Option<i64>,
    pub assigned_to: Option<i64>,
    pub title: String,
    pub description: Option<String>,
    pub due_date: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub priority: String,
    pub status: String,
    pub overdue: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(TaskRow);

impl TaskRow {
    pub(crate) fn into_pb(self, state: &AppState) -> pb::Task {
        pb::Task {
            id: self.id,
            tenant_id: self.tenant_id,
            taskable_type: self.taskable_type.unwrap_or_default(),
            taskable_id: self.taskable_id.unwrap_or_default(),
            assigned_by: self.assigned_by.unwrap_or_default(),
            assigned_to: self.assigned_to.unwrap_or_default(),
            title: self.title,
            description: self.description.unwrap_or_default(),
            due_time: opt_ts(self.due_date),
            complete_time: opt_ts(self.completed_at),
            priority: self.priority,
            status: self.status,
            overdue: self.overdue,
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: fusion_service::api::etag(self.version),
        }
    }
}

/// The column values of the fields in `fields`, validated field by field. On create an
/// empty priority or status is left to the table's defaults (normal, open); on update
/// it is refused. Whether the subject exists is checked in the transaction, and a
/// status change against the task's current status.
fn values(t: &pb::Task, fields: &[&str], creating: bool) -> Result<Values, Status> {
    let kind = t.taskable_type.trim();
    values_of("task", fields, |field| {
        Ok(Some(match field {
            "taskable_type" => {
                if kind.is_empty() {
                    if t.taskable_id != 0 {
                        return Err("is required with taskable_id".into());
                    }
                    return Ok(None);
                }
                validate::one_of(kind, SUBJECTS)?;
                ("taskable_type", Val::text(kind))
            }
            "taskable_id" => {
                if kind.is_empty() {
                    return Ok(None);
                }
                if t.taskable_id <= 0 {
                    return Err(format!("must be the positive id of a {kind}"));
                }
                ("taskable_id", Val::Int(Some(t.taskable_id)))
            }
            "assigned_to" => {
                if t.assigned_to < 0 {
                    return Err("must be a positive id, or 0 for nobody".into());
                }
                (
                    "assigned_to",
                    Val::Int((t.assigned_to != 0).then_some(t.assigned_to)),
                )
            }
            "title" => {
                validate::required(&t.title, 255)?;
                ("title", Val::text(&t.title))
            }
            "description" => {
                validate::max_len(&t.description, 20_000)?;
                ("description", Val::text(&t.description))
            }
            "due_time" => ("due_date", Val::Timestamp(time(&t.due_time)?)),
            "priority" => {
                if t.priority.trim().is_empty() {
                    return if creating {
                        Ok(None)
                    } else {
                        Err("is required".into())
                    };
                }
                validate::one_of(&t.priority, PRIORITIES)?;
                ("priority", Val::text(&t.priority))
            }
            "status" => {
                if t.status.trim().is_empty() {
                    return if creating {
                        Ok(None)
                    } else {
                        Err("is required".into())
                    };
                }
                validate::one_of(&t.status, STATUSES)?;
                if creating && t.status.trim() == COMPLETED {
                    return Err(completes_only());
                }
                ("status", Val::text(&t.status))
            }
            _ => return Ok(None),
        }))
    })
}

fn completes_only() -> String {
    "only CompleteTask completes a task; use open, in_progress or cancelled".into()
}

/// A time from the wire; unset is none.
fn time(t: &Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(t) = t else {
        return Ok(None);
    };
    let nanos = u32::try_from(t.nanos).map_err(|_| "is not a valid time")?;
    DateTime::from_timestamp(t.seconds, nanos)
        .map(Some)
        .ok_or_else(|| "is not a valid time".into())
}

/// Checks the caller's filter and `order_by` against the fields the proto names, and
/// returns the `order_by` ListTasks runs: `priority` becomes its rank.
fn list_query(filter: &str, order_by: &str) -> Result<String, Status> {
    if let Some(expr) = filter::parse(filter).map_err(|e| API.invalid("filter", e.to_string()))? {
        filter::validate(&expr, FIELDS).map_err(|e| API.invalid("filter", e.to_string()))?;
    }
    parse_order_by(order_by, DEFAULT_ORDER, ORDER_FIELDS, FIELDS)
        .map_err(|m| API.invalid("order_by", m))?;
    if order_by.trim().is_empty() {
        return Ok(String::new());
    }
    Ok(order_by
        .split(',')
        .map(|term| {
            term.split_whitespace()
                .map(|word| {
                    if word == "priority" {
                        PRIORITY_RANK
                    } else {
                        word
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Separates a page token's pinned time from the list's own token.
const OVERDUE_TOKEN: char = '~';

/// The filter of an `overdue_only` list: the caller's (already checked, so a whole
/// expression, and AND binds loosest) AND open or in progress AND due before `now`.
/// `now` is the time of the first page's call: later pages read it back from their
/// token, and since it is part of the filter the token is signed for, a token whose
/// time was edited is refused.
fn overdue_filter(filter: &str, now: DateTime<Utc>) -> String {
    let due = format!(
        "(status = \"open\" OR status = \"in_progress\") AND due_time < \"{}\"",
        now.to_rfc3339_opts(SecondsFormat::Micros, true)
    );
    match filter.trim() {
        "" => due,
        filter => format!("{filter} AND {due}"),
    }
}

/// The pinned time and the list's token of an `overdue_only` page token; now and no
/// token for the first page.
fn overdue_token(token: &str) -> Result<(DateTime<Utc>, String), Status> {
    if token.is_empty() {
        let now = Utc::now();
        // Whole microseconds, as the token keeps them.
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        return Ok((now, String::new()));
    }
    token
        .split_once(OVERDUE_TOKEN)
        .and_then(|(micros, rest)| {
            let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
            Some((at, rest.to_owned()))
        })
        .ok_or_else(|| API.invalid("page_token", "not a valid page token"))
}

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
        let current: TaskRow = TABLE.fetch(&mut tx, id, false, true).await?;
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
        let row: TaskRow = TABLE.fetch(&mut tx, id, false, false).await?;
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
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let t = body.task.unwrap_or_default();
        let fields: Vec<&str> = MUTABLE.iter().chain(CREATE_ONLY).copied().collect();
        let mut values = values(&t, &fields, true)?;
        values.push(("assigned_by", Val::Int(Some(ctx.user_id))));
        const METHOD: &str = "CreateTask";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // A retry returns the first result whatever has changed since (AIP-155).
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        if t.assigned_to != 0 {
            self.state
                .refs
                .user("task.assigned_to", t.assigned_to)
                .await?;
        }
        let kind = t.taskable_type.trim();
        if !kind.is_empty() {
            require_subject(&self.state, &mut tx, "task.taskable", kind, t.taskable_id).await?;
        }
        let id = TABLE.insert(&mut tx, values).await?;
        let created = TABLE
            .fetch::<TaskRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_task(
        &self,
        req: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let row: TaskRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
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
        let page =
            list_page::<TaskRow>(&self.state, ctx.tenant_id, &LIST, &params, Some(&scope)).await?;
        let next_page_token = match pinned {
            Some(now) if !page.next_page_token.is_empty() => format!(
                "{}{OVERDUE_TOKEN}{}",
                now.timestamp_micros(),
                page.next_page_token
            ),
            _ => page.next_page_token,
        };
        Ok(Response::new(pb::ListTasksResponse {
            tasks: page
                .items
                .into_iter()
                .map(|t| t.into_pb(&self.state))
                .collect(),
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
        let t = body.task.unwrap_or_default();
        API.require_id("task.id", t.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            FIXED,
            &populated(&[
                ("assigned_to", t.assigned_to != 0),
                ("title", !t.title.is_empty()),
                ("description", !t.description.is_empty()),
                ("due_time", t.due_time.is_some()),
                ("priority", !t.priority.is_empty()),
                ("status", !t.status.is_empty()),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let mut values = values(&t, &changing, false)?;
        if mask.has("assigned_to") && t.assigned_to != 0 {
            self.state
                .refs
                .user("task.assigned_to", t.assigned_to)
                .await?;
        }
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: TaskRow = TABLE.fetch(&mut tx, t.id, false, true).await?;
        API.check_etag(&t.etag, current.version)?;
        let status = t.status.trim();
        if mask.has("status") && status != current.status {
            if status == COMPLETED {
                return Err(API.invalid("task.status", completes_only()));
            }
            if current.status == COMPLETED {
                return Err(API.precondition(
                    "TASK_COMPLETED",
                    format!(
                        "task {} is completed; reopen it with ReopenTask to change its status",
                        t.id
                    ),
                ));
            }
        }
        let assignee = (t.assigned_to != 0).then_some(t.assigned_to);
        if mask.has("assigned_to") && current.assigned_to != assignee {
            values.push(("assigned_by", Val::Int(Some(ctx.user_id))));
        }
        TABLE.update(&mut tx, t.id, values).await?;
        let row: TaskRow = TABLE.fetch(&mut tx, t.id, false, false).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_task(
        &self,
        req: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: TaskRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_task(
        &self,
        req: Request<pb::UndeleteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: TaskRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
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
                    CANCELLED => Err(API.precondition(
                        "TASK_CANCELLED",
                        format!(
                            "task {} is cancelled; reopen it before completing it",
                            task.id
                        ),
                    )),
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
