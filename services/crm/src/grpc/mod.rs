//! The gRPC surface of crm: one module per service, the method policy, and what every
//! resource shares (idempotent create, lists, the tenant's pipeline, wire forms of
//! tags and custom fields). Proto types stop here.

mod contacts;
mod convert;
mod deals;
mod duplicates;
mod import;
mod leads;
mod merge;
mod notes;
mod person;
mod pipeline;
mod search;
mod tasks;

use sqlx::PgConnection;
use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_db::resource::{self, Val, Values};
use fusion_db::{db_status, idempotency};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::{
    contact_service_server::ContactServiceServer, deal_service_server::DealServiceServer,
    lead_service_server::LeadServiceServer, note_service_server::NoteServiceServer,
    pipeline_service_server::PipelineServiceServer, task_service_server::TaskServiceServer,
};
use fusion_proto::crm::v1::{
    duplicate_service_server::DuplicateServiceServer, search_service_server::SearchServiceServer,
};
use fusion_service::api::Api;
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::domain::fields::{self, CustomField};
use crate::domain::pipeline::{DEFAULT_DEAL_STAGES, DEFAULT_LEAD_STATUSES};
use crate::{AppState, DOMAIN};

/// Errors and checks in this context's domain.
pub(crate) const API: Api = Api::new(DOMAIN);

const IDEMPOTENCY_TABLE: &str = "crm.idempotency_keys";

/// Every crm service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(LeadServiceServer::new(leads::LeadApi::new(state.clone())))
        .add_service(ContactServiceServer::new(contacts::ContactApi::new(
            state.clone(),
        )))
        .add_service(DealServiceServer::new(deals::DealApi::new(state.clone())))
        .add_service(TaskServiceServer::new(tasks::TaskApi::new(state.clone())))
        .add_service(NoteServiceServer::new(notes::NoteApi::new(state.clone())))
        .add_service(PipelineServiceServer::new(pipeline::PipelineApi::new(
            state.clone(),
        )))
        .add_service(SearchServiceServer::new(search::SearchApi::new(
            state.clone(),
        )))
        .add_service(DuplicateServiceServer::new(duplicates::DuplicateApi::new(
            state.clone(),
        )))
}

/// The permission every crm RPC needs; the one place to read it. Standard reads need
/// `crm.<resource>.read`, every other method `crm.<resource>.write`; the pipeline's
/// statuses and stages are `crm.pipeline.*`.
pub fn policy() -> MethodPolicy {
    let services: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "LeadService",
            "leads",
            &["GetLead", "ListLeads", "ExportLeads"],
            &[
                "CreateLead",
                "UpdateLead",
                "DeleteLead",
                "UndeleteLead",
                "AssignLead",
                "ConvertLead",
                "MergeLeads",
                "ImportLeads",
            ],
        ),
        (
            "ContactService",
            "contacts",
            &["GetContact", "ListContacts"],
            &[
                "CreateContact",
                "UpdateContact",
                "DeleteContact",
                "UndeleteContact",
                "MergeContacts",
            ],
        ),
        (
            "DealService",
            "deals",
            &["GetDeal", "ListDeals"],
            &[
                "CreateDeal",
                "UpdateDeal",
                "DeleteDeal",
                "UndeleteDeal",
                "MoveDealStage",
                "WinDeal",
                "LoseDeal",
            ],
        ),
        (
            "TaskService",
            "tasks",
            &["GetTask", "ListTasks"],
            &[
                "CreateTask",
                "UpdateTask",
                "DeleteTask",
                "UndeleteTask",
                "CompleteTask",
                "ReopenTask",
            ],
        ),
        (
            "NoteService",
            "notes",
            &["GetNote", "ListNotes"],
            &["CreateNote", "UpdateNote", "DeleteNote", "UndeleteNote"],
        ),
        (
            "PipelineService",
            "pipeline",
            &[
                "ListLeadStatuses",
                "GetLeadStatus",
                "ListDealStages",
                "GetDealStage",
                "GetCrmSettings",
            ],
            &[
                "CreateLeadStatus",
                "UpdateLeadStatus",
                "DeleteLeadStatus",
                "UndeleteLeadStatus",
                "CreateDealStage",
                "UpdateDealStage",
                "DeleteDealStage",
                "UndeleteDealStage",
                "UpdateCrmSettings",
            ],
        ),
    ];
    // Search and dedupe span resources: they need to read leads, and leave out (search)
    // or refuse (dedupe of contacts) what the caller may not read.
    let mut policy = MethodPolicy::new()
        .require("/fusion.crm.v1.SearchService/SearchCrm", "crm.leads.read")
        .require(
            "/fusion.crm.v1.DuplicateService/FindDuplicates",
            "crm.leads.read",
        );
    for (service, resource, reads, writes) in services {
        for method in *reads {
            policy = policy.require(
                &format!("/fusion.crm.v1.{service}/{method}"),
                &format!("crm.{resource}.read"),
            );
        }
        for method in *writes {
            policy = policy.require(
                &format!("/fusion.crm.v1.{service}/{method}"),
                &format!("crm.{resource}.write"),
            );
        }
    }
    policy
}

/// The verified caller.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<TenantContext, Status> {
    TenantContext::from_request(req)
}

/// This context's request ids (AIP-155): `REQUEST_IDS.replay(&mut tx, method, id)`
/// before a write, `REQUEST_IDS.remember(...)` in the same transaction after it.
pub(crate) const REQUEST_IDS: idempotency::RequestIds =
    idempotency::RequestIds::new(DOMAIN, IDEMPOTENCY_TABLE);

/// Converts the fields named in `fields` into column values (see
/// [`resource::values_of`]).
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, Status> {
    resource::values_of(DOMAIN, prefix, fields, convert)
}

/// Like [`values_of`] for a record with custom fields: `custom_fields` (when named in
/// `fields`) is checked as a whole, with a violation per offending part.
pub(crate) fn record_values(
    prefix: &str,
    fields: &[&str],
    custom: &[pb::CustomField],
    mut convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, Status> {
    let mut values = Vec::new();
    let mut violations = Vec::new();
    for field in fields {
        if *field == "custom_fields" {
            match custom_fields_val(prefix, custom) {
                Ok(v) => values.push(("custom_fields", v)),
                Err(mut found) => violations.append(&mut found),
            }
            continue;
        }
        match convert(field) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => {}
            Err(why) => violations.push(fusion_proto::errors::FieldViolation::new(
                format!("{prefix}.{field}"),
                why,
            )),
        }
    }
    API.violations(violations)?;
    Ok(values)
}

/// A "last contacted" time from the wire: unset clears it; never in the future.
pub(crate) fn contact_time(t: &Option<prost_types::Timestamp>) -> Result<Val, String> {
    let Some(t) = t else {
        return Ok(Val::Timestamp(None));
    };
    let at =
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
            .ok_or("is not a valid time")?;
    if at > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err("cannot be in the future".into());
    }
    Ok(Val::Timestamp(Some(at)))
}

/// Makes sure `tenant` has a pipeline: the first time its statuses or stages are
/// needed and it has none, it gets the defaults, in a transaction of their own (so a
/// caller's failed write never takes them back). Concurrent first calls agree (the keys
/// are unique); a tenant that deleted every status keeps its choice (deleted rows still
/// count). Each process remembers the tenants it has made sure of.
pub(crate) async fn ensure_pipeline(state: &AppState, tenant: i64) -> Result<(), Status> {
    if state
        .pipelines
        .lock()
        .map(|seen| seen.contains(&tenant))
        .unwrap_or(false)
    {
        return Ok(());
    }
    let mut tx = state.db.begin(tenant).await?;
    let (keys, labels): (Vec<&str>, Vec<&str>) = DEFAULT_LEAD_STATUSES
        .iter()
        .map(|(k, l, _)| (*k, *l))
        .unzip();
    let closed: Vec<bool> = DEFAULT_LEAD_STATUSES.iter().map(|s| s.2).collect();
    let positions: Vec<i32> = (0..).step_by(10).take(keys.len()).collect();
    sqlx::query(
        "INSERT INTO crm.lead_statuses (tenant_id, key, label, position, is_closed)
         SELECT $1, k, l, p, c FROM unnest($2::text[], $3::text[], $4::int[], $5::bool[]) AS t(k, l, p, c)
          WHERE NOT EXISTS (SELECT 1 FROM crm.lead_statuses)
         ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(tenant)
    .bind(&keys)
    .bind(&labels)
    .bind(&positions)
    .bind(&closed)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    let keys: Vec<&str> = DEFAULT_DEAL_STAGES.iter().map(|s| s.0).collect();
    let labels: Vec<&str> = DEFAULT_DEAL_STAGES.iter().map(|s| s.1).collect();
    let outcomes: Vec<&str> = DEFAULT_DEAL_STAGES.iter().map(|s| s.2).collect();
    let probabilities: Vec<i32> = DEFAULT_DEAL_STAGES.iter().map(|s| s.3).collect();
    let positions: Vec<i32> = (0..).step_by(10).take(keys.len()).collect();
    sqlx::query(
        "INSERT INTO crm.deal_stages (tenant_id, key, label, position, outcome, default_probability)
         SELECT $1, k, l, p, o, d
           FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::int[]) AS t(k, l, p, o, d)
          WHERE NOT EXISTS (SELECT 1 FROM crm.deal_stages)
         ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(tenant)
    .bind(&keys)
    .bind(&labels)
    .bind(&positions)
    .bind(&outcomes)
    .bind(&probabilities)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    tx.commit().await?;
    if let Ok(mut seen) = state.pipelines.lock() {
        seen.insert(tenant);
    }
    Ok(())
}

/// INVALID_ARGUMENT (on `field`) unless `key` names a live lead status of the tenant.
pub(crate) async fn require_lead_status(
    conn: &mut PgConnection,
    field: &str,
    key: &str,
) -> Result<(), Status> {
    // Key-share locked, so the status cannot be deleted before this write commits.
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM crm.lead_statuses WHERE key = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    if live.is_some() {
        return Ok(());
    }
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM crm.lead_statuses WHERE deleted_at IS NULL ORDER BY position, key",
    )
    .fetch_all(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    Err(API.invalid(
        field,
        format!(
            "{key:?} is not a lead status of this tenant; one of: {}",
            known.join(", ")
        ),
    ))
}

/// The tenant's first live lead status (by position), for a lead created without one.
pub(crate) async fn default_lead_status(conn: &mut PgConnection) -> Result<String, Status> {
    sqlx::query_scalar(
        "SELECT key FROM crm.lead_statuses WHERE deleted_at IS NULL AND NOT is_closed
          ORDER BY position, key LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?
    .ok_or_else(|| {
        API.precondition(
            "NO_LEAD_STATUS",
            "the tenant has no open lead status; create one first",
        )
    })
}

/// A live deal stage of the tenant: its outcome and default probability.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct StageInfo {
    pub key: String,
    pub outcome: String,
    pub default_probability: Option<i32>,
}

/// The live deal stage `key`, or INVALID_ARGUMENT on `field` naming the choices.
pub(crate) async fn require_deal_stage(
    conn: &mut PgConnection,
    field: &str,
    key: &str,
) -> Result<StageInfo, Status> {
    let found: Option<StageInfo> = sqlx::query_as(
        "SELECT key, outcome, default_probability FROM crm.deal_stages
          WHERE key = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    if let Some(stage) = found {
        return Ok(stage);
    }
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM crm.deal_stages WHERE deleted_at IS NULL ORDER BY position, key",
    )
    .fetch_all(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    Err(API.invalid(
        field,
        format!(
            "{key:?} is not a deal stage of this tenant; one of: {}",
            known.join(", ")
        ),
    ))
}

/// Tags from the wire, checked, as a JSON column value.
pub(crate) fn tags_val(tags: &[String]) -> Result<Val, String> {
    fields::tags(tags).map(|t| Val::Json(serde_json::json!(t)))
}

/// Tags as stored.
pub(crate) fn tags_of(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Custom fields from the wire, checked, as the stored document; violations are named
/// `<prefix>.custom_fields[<i>].<part>`.
pub(crate) fn custom_fields_val(
    prefix: &str,
    list: &[pb::CustomField],
) -> Result<Val, Vec<fusion_proto::errors::FieldViolation>> {
    let domain: Vec<CustomField> = list
        .iter()
        .map(|f| CustomField {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: f.r#type.clone(),
            options: f.options.clone(),
            value: f.value.clone(),
            values: f.values.clone(),
        })
        .collect();
    fields::custom_fields(&domain)
        .map(Val::Json)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|(part, why)| {
                    let field = match part.split_once('.') {
                        Some((i, part)) => format!("{prefix}.custom_fields[{i}].{part}"),
                        None => format!("{prefix}.custom_fields"),
                    };
                    fusion_proto::errors::FieldViolation::new(field, why)
                })
                .collect()
        })
}

/// Custom fields as stored, on the wire.
pub(crate) fn custom_fields_pb(doc: &serde_json::Value) -> Vec<pb::CustomField> {
    fields::custom_fields_of(doc)
        .into_iter()
        .map(|f| pb::CustomField {
            name: f.name,
            label: f.label,
            r#type: f.kind,
            options: f.options,
            value: f.value,
            values: f.values,
        })
        .collect()
}

/// The CRM tables behind the kinds of record a task or note may be about that this
/// context owns; the other kinds in [`crate::refs::SUBJECTS`] are property's.
const CRM_SUBJECTS: &[(&str, &str)] = &[
    ("lead", "crm.leads"),
    ("contact", "crm.contacts"),
    ("deal", "crm.deals"),
];

/// INVALID_ARGUMENT unless `kind` `id`, the record a task or note is about (fields
/// `<field_prefix>_type` and `<field_prefix>_id`), is live in the caller's tenant.
///
/// A lead, contact or deal is key-share locked in `conn`, the caller's transaction, so
/// it cannot be deleted before the write commits. A project, stage or lot is asked of
/// property as the caller, from inside the transaction: callers check the subject
/// before they write or lock anything, so the call holds only a pooled connection; it
/// keeps the request-id replay ahead of the check (a retry returns its first result
/// even if the record has gone since) and the kind → owner rule in this one place; and a
/// record of another context cannot be locked from here either way.
pub(crate) async fn require_subject(
    state: &AppState,
    conn: &mut PgConnection,
    field_prefix: &str,
    kind: &str,
    id: i64,
) -> Result<(), Status> {
    let id_field = format!("{field_prefix}_id");
    if !crate::refs::SUBJECTS.contains(&kind) {
        return Err(API.invalid(
            &format!("{field_prefix}_type"),
            format!("must be one of: {}", crate::refs::SUBJECTS.join(", ")),
        ));
    }
    API.require_id(&id_field, id)?;
    match CRM_SUBJECTS.iter().find(|(k, _)| *k == kind) {
        Some((_, table)) if resource::lock_live(conn, DOMAIN, table, id).await? => Ok(()),
        Some(_) => Err(API.invalid(&id_field, format!("no {kind} {id} in this tenant"))),
        None => state.refs.property(&id_field, kind, id).await,
    }
}

/// The scope of a List of tasks or notes confined to a kind of record (`type_column`,
/// empty means any) or one record (`id_column`, 0 means any): checked, and named after
/// the request fields, which share the columns' names.
pub(crate) fn subject_scope(
    type_column: &'static str,
    id_column: &'static str,
    kind: &str,
    id: i64,
) -> Result<Vec<(&'static str, fusion_db::list::ScopeValue)>, Status> {
    let kind = kind.trim();
    let mut scope = Vec::new();
    if !kind.is_empty() {
        if !crate::refs::SUBJECTS.contains(&kind) {
            return Err(API.invalid(
                type_column,
                format!("must be one of: {}", crate::refs::SUBJECTS.join(", ")),
            ));
        }
        scope.push((
            type_column,
            fusion_db::list::ScopeValue::Text(kind.to_owned()),
        ));
    }
    if id != 0 {
        if kind.is_empty() {
            return Err(API.invalid(
                type_column,
                format!("is required with {id_column} (ids are per kind of record)"),
            ));
        }
        API.require_id(id_column, id)?;
        scope.push((id_column, fusion_db::list::ScopeValue::Int(id)));
    }
    Ok(scope)
}
