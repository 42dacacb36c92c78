//! ImportLeads: a client stream of options, then batches of rows, checked row by row
//! with the same rules as CreateLead and loaded with multi-row INSERTs.
//!
//! The whole import is one transaction, so "all or nothing" needs no buffering: rows are
//! inserted as their batch arrives, and the transaction is rolled back at the end if a
//! row was invalid (unless invalid rows are to be skipped) or for a dry run. Memory is
//! bounded by one batch (and, with dedupe, the set of this import's emails). (COPY would load faster, but PostgreSQL refuses COPY FROM on
//! tables under row-level security, and every crm table is.) Assignees are checked with
//! identity once per distinct user; statuses and stages against the pipeline read once.

use std::collections::{HashMap, HashSet};

use tonic::{Status, Streaming};

use fusion_db::PgConnection;
use fusion_db::resource::{self, Val};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::import_leads_request::Payload;
use fusion_proto::errors::FieldViolation;
use fusion_tenancy::TenantContext;

use fusion_service::standard::Method;

use crate::error::CrmError;
use crate::grpc::API;
use crate::store::leads::{self, TABLE};
use crate::store::person::{set_e164, tenant_country};
use crate::store::pipeline::{default_lead_status, ensure_pipeline};
use crate::store::{self, REQUEST_IDS};
use crate::{AppState, DOMAIN};

/// Rows one batch message may carry.
const MAX_BATCH: usize = 1000;
/// Row errors listed in the response at most.
const MAX_ERRORS: usize = 1000;

const METHOD: &str = "ImportLeads";

/// The tenant's live pipeline keys, read once per import.
struct Pipeline {
    statuses: HashSet<String>,
    stages: HashSet<String>,
    default_status: String,
    /// The tenant's country for phone numbers.
    country: phonenumber::country::Id,
}

impl Pipeline {
    async fn load(state: &AppState, conn: &mut PgConnection) -> Result<Self, Status> {
        let (statuses, stages) = store::pipeline::live_keys(&mut *conn).await?;
        Ok(Self {
            statuses: statuses.into_iter().collect(),
            stages: stages.into_iter().collect(),
            default_status: default_lead_status(&mut *conn).await?,
            country: tenant_country(state, conn).await?,
        })
    }
}

/// Everything an import tracks as rows arrive.
struct Run<'a> {
    state: &'a AppState,
    options: pb::ImportLeadsOptions,
    pipeline: Pipeline,
    /// Assignees already asked about: `None` when valid, else why not.
    users: HashMap<i64, Option<String>>,
    /// Normalised emails of this import's rows so far.
    emails: HashSet<String>,
    response: pb::ImportLeadsResponse,
    /// Whether rows are still being written (an all-or-nothing import stops writing at
    /// its first invalid row, and keeps checking the rest).
    writing: bool,
}

impl Run<'_> {
    fn refuse(&mut self, row: i32, violations: Vec<FieldViolation>) {
        self.response.invalid_count += 1;
        if !self.options.skip_invalid_rows {
            self.writing = false;
        }
        for v in violations {
            if self.response.errors.len() < MAX_ERRORS {
                self.response.errors.push(pb::ImportRowError {
                    row_number: row,
                    field: v.field.strip_prefix("lead.").unwrap_or(&v.field).to_owned(),
                    description: v.description,
                });
            }
        }
    }

    /// The row's column values, or its violations; an error when the row cannot be
    /// judged (identity cannot be asked), which fails the import.
    async fn check(&mut self, lead: &pb::Lead) -> Result<Checked, Status> {
        // Every problem of the row is reported, not just the first kind found.
        let (mut values, mut violations) = match leads::values(lead, leads::MUTABLE, Method::Create)
        {
            Ok(values) => (values, Vec::new()),
            Err(CrmError::Invalid(violations)) => (Vec::new(), violations),
            Err(other) => return Err(other.into()),
        };
        let status = lead.status.trim();
        if status.is_empty() {
            values.push((
                "status",
                Val::Text(Some(self.pipeline.default_status.clone())),
            ));
        } else if !self.pipeline.statuses.contains(status) {
            violations.push(FieldViolation::new(
                "status",
                format!("{status:?} is not a lead status of this tenant"),
            ));
        }
        let stage = lead.stage.trim();
        if !stage.is_empty() && !self.pipeline.stages.contains(stage) {
            violations.push(FieldViolation::new(
                "stage",
                format!("{stage:?} is not a deal stage of this tenant"),
            ));
        }
        // Every row carries the same columns, so an unassigned row says so explicitly.
        if lead.assignee_user_id == 0 {
            values.push(("assigned_to", Val::Int(None)));
        } else {
            let id = lead.assignee_user_id;
            if !self.users.contains_key(&id) {
                let verdict = if id < 0 {
                    Some("must be a positive id".to_owned())
                } else {
                    match self.state.refs.user("assignee_user_id", id).await {
                        Ok(()) => None,
                        Err(CrmError::Invalid(_)) => {
                            Some(format!("no active user {id} in this tenant"))
                        }
                        // Identity being down is the import's failure, not the row's.
                        Err(e) => return Err(e.into()),
                    }
                };
                self.users.insert(id, verdict);
            }
            match &self.users[&id] {
                None => values.push(("assigned_to", Val::Int(Some(id)))),
                Some(why) => violations.push(FieldViolation::new("assignee_user_id", why.clone())),
            }
        }
        if violations.is_empty() {
            set_e164(
                &mut values,
                &lead.phone,
                &lead.country,
                self.pipeline.country,
            );
            Ok(Ok(values))
        } else {
            Ok(Err(violations))
        }
    }
}

/// A row's column values, or why it is refused.
type Checked = Result<Vec<(&'static str, Val)>, Vec<FieldViolation>>;

/// Runs an import over `stream` for the caller.
pub(crate) async fn import(
    state: &AppState,
    ctx: &TenantContext,
    mut stream: Streaming<pb::ImportLeadsRequest>,
) -> Result<pb::ImportLeadsResponse, Status> {
    let options = match stream.message().await? {
        Some(pb::ImportLeadsRequest {
            payload: Some(Payload::Options(options)),
        }) => options,
        Some(_) => {
            return Err(API.invalid("options", "the first message must carry the options"));
        }
        None => return Err(API.invalid("options", "the stream ended before the options")),
    };
    let request_id = fusion_db::idempotency::request_key(DOMAIN, &options.request_id, &options)
        .map_err(|_| API.invalid("options.request_id", "must be a UUID"))?;
    let request_id = if options.dry_run { None } else { request_id };
    ensure_pipeline(state, ctx.tenant_id).await?;
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    // A retry of a committed import returns its result; concurrent retries wait here.
    if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
        return Ok(saved);
    }
    let pipeline = Pipeline::load(state, &mut tx).await?;
    let mut run = Run {
        state,
        options,
        pipeline,
        users: HashMap::new(),
        emails: HashSet::new(),
        response: pb::ImportLeadsResponse::default(),
        writing: true,
    };
    let mut row = 0_i32;
    let mut columns: Option<Vec<&'static str>> = None;
    while let Some(message) = stream.message().await? {
        let batch = match message.payload {
            Some(Payload::Batch(batch)) => batch,
            Some(Payload::Options(_)) => {
                return Err(API.invalid("options", "only the first message may carry options"));
            }
            None => {
                return Err(
                    API.invalid("batch", "every message after the first must carry a batch")
                );
            }
        };
        if batch.leads.len() > MAX_BATCH {
            return Err(API.invalid(
                "batch.leads",
                format!("a batch holds at most {MAX_BATCH} rows"),
            ));
        }
        // Live leads already holding this batch's emails, for dedupe.
        let existing: HashSet<String> = if run.options.dedupe_by_email {
            let emails: Vec<String> = batch
                .leads
                .iter()
                .filter_map(|l| normalised_email(&l.email))
                .collect();
            leads::live_emails(&mut tx, &emails)
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        let mut rows: Vec<Vec<Val>> = Vec::with_capacity(batch.leads.len());
        for lead in &batch.leads {
            row += 1;
            run.response.received_count += 1;
            let values = match run.check(lead).await? {
                Ok(values) => values,
                Err(violations) => {
                    run.refuse(row, violations);
                    continue;
                }
            };
            if run.options.dedupe_by_email
                && let Some(email) = normalised_email(&lead.email)
                && (existing.contains(&email) || !run.emails.insert(email))
            {
                run.response.duplicate_count += 1;
                continue;
            }
            run.response.created_count += 1;
            if run.writing {
                let mut values = values;
                values.sort_by_key(|(column, _)| *column);
                let names: Vec<&'static str> = values.iter().map(|(c, _)| *c).collect();
                match &columns {
                    None => columns = Some(names),
                    Some(known) if *known != names => {
                        return Err(CrmError::Internal("import rows with different columns").into());
                    }
                    Some(_) => {}
                }
                rows.push(values.into_iter().map(|(_, v)| v).collect());
            }
        }
        if run.writing
            && !rows.is_empty()
            && let Some(columns) = &columns
        {
            resource::insert_many(&mut tx, DOMAIN, TABLE.name, columns, rows).await?;
        }
    }
    let commit =
        !run.options.dry_run && (run.response.invalid_count == 0 || run.options.skip_invalid_rows);
    run.response.committed = commit;
    if commit {
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &run.response)
            .await?;
        tx.commit().await?;
    } else {
        if !run.options.dry_run {
            run.response.created_count = 0;
        }
        tx.rollback().await?;
    }
    Ok(run.response)
}

fn normalised_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}
