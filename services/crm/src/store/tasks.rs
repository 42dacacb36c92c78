//! Tasks: their row, their description for the standard methods, their list queries,
//! and the tasks crm gives agents itself (a won deal whose lot could not be sold).

use chrono::{DateTime, SecondsFormat, Utc};

use fusion_db::filter::{self, FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::order::parse_order_by;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::{etag, opt_ts, populated, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{Call, Kit, Method, Resource};

use crate::domain::validate;
use crate::error::CrmError;
use crate::refs::SUBJECTS;
use crate::store::{require_subject, values_of};
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
pub(crate) const LIST_FIELDS: &[FieldSpec] = &[
    FieldSpec::new("taskable_type", "taskable_type", FieldKind::Text),
    FieldSpec::new("taskable_id", "taskable_id", FieldKind::Int),
    FieldSpec::new("assigner_user_id", "assigned_by", FieldKind::Int),
    FieldSpec::new("assignee_user_id", "assigned_to", FieldKind::Int),
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
pub(crate) const FIELDS: &[FieldSpec] = LIST_FIELDS.split_at(LIST_FIELDS.len() - 1).0;

pub(crate) const PRIORITY_RANK: &str = "priority_rank";

/// What callers may order by, and the default, as the proto names them.
pub(crate) const ORDER_FIELDS: &[&str] = &[
    "due_time",
    "priority",
    "status",
    "title",
    "create_time",
    "update_time",
];
pub(crate) const DEFAULT_ORDER: &str = "due_time, priority desc";

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

/// What UpdateTask may change (not the status: StartTask, CompleteTask, CancelTask
/// and ReopenTask move it).
pub(crate) const MUTABLE: &[&str] = &[
    "assignee_user_id",
    "title",
    "description",
    "due_time",
    "priority",
];

/// What an update mask may not name.
pub(crate) const FIXED: &[&str] = &[
    "taskable_type",
    "taskable_id",
    "assigner_user_id",
    "status",
    "complete_time",
    "overdue",
];

pub(crate) const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
pub(crate) const OPEN: &str = "open";
pub(crate) const IN_PROGRESS: &str = "in_progress";
pub(crate) const COMPLETED: &str = "completed";
pub(crate) const CANCELLED: &str = "cancelled";

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

/// Tasks on the standard methods: the subject must be live when the task is created
/// and never changes; the assignee is an active user (asked of identity as the
/// caller); whoever assigns the task becomes its `assigner_user_id`; the status is
/// output only (a new task is open; the custom methods move it).
pub(crate) struct Tasks;

impl Resource for Tasks {
    type Row = TaskRow;
    type Pb = pb::Task;
    type State = AppState;
    type Error = crate::error::CrmError;

    const SINGULAR: &'static str = "Task";
    const FIELD: &'static str = "task";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = &[
        "assignee_user_id",
        "title",
        "description",
        "due_time",
        "priority",
        "taskable_type",
        "taskable_id",
    ];
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = FIXED;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: TaskRow) -> pb::Task {
        pb::Task {
            id: r.id,
            tenant_id: r.tenant_id,
            taskable_type: r.taskable_type.unwrap_or_default(),
            taskable_id: r.taskable_id.unwrap_or_default(),
            assigner_user_id: r.assigned_by.unwrap_or_default(),
            assignee_user_id: r.assigned_to.unwrap_or_default(),
            title: r.title,
            description: r.description.unwrap_or_default(),
            due_time: opt_ts(r.due_date),
            complete_time: opt_ts(r.completed_at),
            priority: r.priority,
            status: r.status,
            overdue: r.overdue,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(t: &pb::Task) -> i64 {
        t.id
    }

    fn etag(t: &pb::Task) -> &str {
        &t.etag
    }

    fn populated(t: &pb::Task) -> Vec<&'static str> {
        populated(&[
            ("assignee_user_id", t.assignee_user_id != 0),
            ("title", !t.title.is_empty()),
            ("description", !t.description.is_empty()),
            ("due_time", t.due_time.is_some()),
            ("priority", !t.priority.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        t: &pb::Task,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, crate::error::CrmError> {
        values(t, fields, method)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        t: &pb::Task,
        values: &mut Values,
    ) -> Result<(), crate::error::CrmError> {
        values.push(("assigned_by", Val::Int(Some(call.caller.user_id))));
        if t.assignee_user_id != 0 {
            call.state
                .refs
                .user("task.assignee_user_id", t.assignee_user_id)
                .await?;
        }
        let kind = t.taskable_type.trim();
        if !kind.is_empty() {
            require_subject(
                call.state,
                call.caller,
                tx,
                "task.taskable",
                kind,
                t.taskable_id,
            )
            .await?;
        }
        Ok(())
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &TaskRow,
        t: &pb::Task,
        values: &mut Values,
    ) -> Result<(), crate::error::CrmError> {
        let changes = |column: &str| values.iter().any(|(c, _)| *c == column);
        let reassigning = changes("assigned_to");
        if reassigning && t.assignee_user_id != 0 {
            call.state
                .refs
                .user("task.assignee_user_id", t.assignee_user_id)
                .await?;
        }
        let assignee = (t.assignee_user_id != 0).then_some(t.assignee_user_id);
        if reassigning && current.assigned_to != assignee {
            values.push(("assigned_by", Val::Int(Some(call.caller.user_id))));
        }
        Ok(())
    }
}

/// The column values of the fields in `fields`, validated field by field. On create an
/// empty priority is left to the table's default (normal); on update it is refused.
/// Whether the subject exists is checked in the transaction.
pub(crate) fn values(t: &pb::Task, fields: &[&str], method: Method) -> Result<Values, CrmError> {
    let creating = method == Method::Create;
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
            "assignee_user_id" => {
                if t.assignee_user_id < 0 {
                    return Err("must be a positive id, or 0 for nobody".into());
                }
                (
                    "assigned_to",
                    Val::Int((t.assignee_user_id != 0).then_some(t.assignee_user_id)),
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
            _ => return Ok(None),
        }))
    })
}

/// A time from the wire; unset is none.
pub(crate) fn time(t: &Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(t) = t else {
        return Ok(None);
    };
    fusion_service::api::parse_ts(t).map(Some)
}

/// Checks the caller's filter and `order_by` against the fields the proto names, and
/// returns the `order_by` ListTasks runs: `priority` becomes its rank.
pub(crate) fn list_query(filter: &str, order_by: &str) -> Result<String, CrmError> {
    if let Some(expr) =
        filter::parse(filter).map_err(|e| CrmError::invalid("filter", e.to_string()))?
    {
        filter::validate(&expr, FIELDS).map_err(|e| CrmError::invalid("filter", e.to_string()))?;
    }
    parse_order_by(order_by, DEFAULT_ORDER, ORDER_FIELDS, FIELDS)
        .map_err(|m| CrmError::invalid("order_by", m))?;
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
pub(crate) const OVERDUE_TOKEN: char = '~';

/// The filter of an `overdue_only` list: the caller's (already checked, so a whole
/// expression, and AND binds loosest) AND open or in progress AND due before `now`.
/// `now` is the time of the first page's call: later pages read it back from their
/// token, and since it is part of the filter the token is signed for, a token whose
/// time was edited is refused.
pub(crate) fn overdue_filter(filter: &str, now: DateTime<Utc>) -> String {
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
pub(crate) fn overdue_token(token: &str) -> Result<(DateTime<Utc>, String), CrmError> {
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
        .ok_or_else(|| CrmError::invalid("page_token", "not a valid page token"))
}

/// A task crm creates itself, on a deal, from an integration event.
#[derive(Clone, Debug)]
pub(crate) struct SystemTask<'a> {
    /// The deal it is about.
    pub deal_id: i64,
    /// Who should do it; unassigned when none.
    pub assignee: Option<i64>,
    /// Who assigned it: the consumer's service account, if it has one.
    pub assigner: Option<i64>,
    /// Title (at most 255 characters).
    pub title: &'a str,
    /// What to do.
    pub description: &'a str,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: &'a str,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// Inserts `task`, open, in the transaction's tenant; returns its id.
pub(crate) async fn insert_system_task(
    tx: &mut TenantTx,
    task: &SystemTask<'_>,
) -> Result<i64, CrmError> {
    let values = vec![
        ("taskable_type", Val::text("deal")),
        ("taskable_id", Val::Int(Some(task.deal_id))),
        ("assigned_to", Val::Int(task.assignee)),
        ("assigned_by", Val::Int(task.assigner)),
        ("title", Val::text(task.title)),
        ("description", Val::text(task.description)),
        ("priority", Val::text(task.priority)),
        ("due_date", Val::Timestamp(Some(task.due))),
    ];
    Ok(TABLE.insert(tx, values).await?)
}
