//! ImportLeads: a client stream of options, then batches of rows, checked row by row
//! with the same rules as CreateLead and loaded with multi-row INSERTs.
//!
//! The stream is read and checked before any row is written, so no database connection
//! waits on the client: an import is bounded in rows ([`MAX_ROWS`]), bytes
//! ([`MAX_BYTES`]), idle time between messages (`<PREFIX>_STREAM_IDLE_TIMEOUT_MS`) and imports
//! read at once ([`MAX_CONCURRENT`]). The checked rows are then written in one short
//! transaction, so an import is still all or nothing: nothing is written if a row was
//! invalid (unless invalid rows are to be skipped) or for a dry run. (COPY would load
//! faster, but PostgreSQL refuses COPY FROM on tables under row-level security, and
//! every crm table is.) Assignees are checked with
//! identity once per distinct user; statuses and stages against the pipeline read once.

use std::collections::{HashMap, HashSet};

use tonic::{Status, Streaming};

use fusion_db::PgConnection;
use fusion_db::resource::{self, Val};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::import_leads_request::Payload;
use fusion_proto::errors::FieldViolation;
use fusion_tenancy::TenantContext;

use fusion_service::limits::next_message;
use fusion_service::standard::Method;

use crate::error::CrmError;
use crate::grpc::API;
use crate::store::leads::{self, TABLE};
use crate::store::person::{set_e164, tenant_country};
use crate::store::pipeline::{default_lead_status, ensure_pipeline};
use crate::store::{self, REQUEST_IDS};
use crate::{AppState, DOMAIN};

/// Rows one batch message may carry (and rows written per statement).
const MAX_BATCH: usize = 1000;
/// Rows one import may carry in all.
const MAX_ROWS: usize = 50_000;
/// Bytes one import may send in all (its messages' encoded sizes summed): what one
/// import may hold in memory while its client sends.
const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Imports one process reads at once; more are refused with RESOURCE_EXHAUSTED
/// (`IMPORTS_BUSY`), so buffered imports hold at most this many times [`MAX_BYTES`].
const MAX_CONCURRENT: usize = 4;
static IMPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT);
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

/// A valid row that is not a duplicate within the import, waiting for the write.
struct Pending {
    email: Option<String>,
    /// Its column values, sorted by column; dropped once the import will not write.
    values: Option<Vec<(&'static str, Val)>>,
}

/// Runs an import over `stream` for the caller.
///
/// The stream is read and checked first, with no database connection held while the
/// client sends (a slow or stalled client holds only its own bounded buffer); the rows
/// are then written in one short transaction, in batches of [`MAX_BATCH`].
pub(crate) async fn import(
    state: &AppState,
    ctx: &TenantContext,
    mut stream: Streaming<pb::ImportLeadsRequest>,
) -> Result<pb::ImportLeadsResponse, Status> {
    let idle = state.config.service.stream_idle_timeout;
    let _slot = IMPORTS.try_acquire().map_err(|_| {
        fusion_proto::errors::resource_exhausted_with(
            DOMAIN,
            "IMPORTS_BUSY",
            std::time::Duration::from_secs(5),
        )
    })?;
    let options = match next_message(&mut stream, idle, DOMAIN).await? {
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
    let pipeline = {
        let mut tx = state.db.begin(ctx.tenant_id).await?;
        // A retry of a committed import returns its result without reading the rows.
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(saved);
        }
        let pipeline = Pipeline::load(state, &mut tx).await?;
        tx.rollback().await?;
        pipeline
    };
    let mut run = Run {
        state,
        options,
        pipeline,
        users: HashMap::new(),
        emails: HashSet::new(),
        response: pb::ImportLeadsResponse::default(),
        writing: true,
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut row = 0_i32;
    let mut bytes = 0_usize;
    while let Some(message) = next_message(&mut stream, idle, DOMAIN).await? {
        bytes += prost::Message::encoded_len(&message);
        if bytes > MAX_BYTES {
            return Err(API.invalid(
                "batch",
                format!("an import sends at most {MAX_BYTES} bytes; split it into several"),
            ));
        }
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
        if row as usize + batch.leads.len() > MAX_ROWS {
            return Err(API.invalid(
                "batch.leads",
                format!("an import holds at most {MAX_ROWS} rows; split it into several"),
            ));
        }
        for lead in &batch.leads {
            row += 1;
            run.response.received_count += 1;
            let values = match run.check(lead).await? {
                Ok(values) => values,
                Err(violations) => {
                    run.refuse(row, violations);
                    if !run.writing {
                        // All or nothing, and not all: nothing will be written.
                        pending.iter_mut().for_each(|p| p.values = None);
                    }
                    continue;
                }
            };
            let email = if run.options.dedupe_by_email {
                normalised_email(&lead.email)
            } else {
                None
            };
            if let Some(email) = &email
                && !run.emails.insert(email.clone())
            {
                run.response.duplicate_count += 1;
                continue;
            }
            let values = (run.writing && !run.options.dry_run).then(|| {
                let mut values = values;
                values.sort_by_key(|(column, _)| *column);
                values
            });
            pending.push(Pending { email, values });
        }
    }
    write(state, ctx, &mut run, request_id, pending).await
}

/// Counts the pending rows whose email a live lead holds as duplicates and, when the
/// import commits, writes the rest and saves the response under the request id.
async fn write(
    state: &AppState,
    ctx: &TenantContext,
    run: &mut Run<'_>,
    request_id: Option<fusion_db::idempotency::RequestKey>,
    pending: Vec<Pending>,
) -> Result<pb::ImportLeadsResponse, Status> {
    let commit =
        !run.options.dry_run && (run.response.invalid_count == 0 || run.options.skip_invalid_rows);
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    // A concurrent retry that committed while this one read its stream wins.
    if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
        return Ok(saved);
    }
    let mut columns: Option<Vec<&'static str>> = None;
    let mut pending = pending.into_iter().peekable();
    while pending.peek().is_some() {
        let chunk: Vec<Pending> = pending.by_ref().take(MAX_BATCH).collect();
        let emails: Vec<String> = chunk.iter().filter_map(|p| p.email.clone()).collect();
        let existing: HashSet<String> = if emails.is_empty() {
            HashSet::new()
        } else {
            leads::live_emails(&mut tx, &emails)
                .await?
                .into_iter()
                .collect()
        };
        let mut rows: Vec<Vec<Val>> = Vec::with_capacity(chunk.len());
        for p in chunk {
            if p.email.as_ref().is_some_and(|e| existing.contains(e)) {
                run.response.duplicate_count += 1;
                continue;
            }
            run.response.created_count += 1;
            if let (true, Some(values)) = (commit, p.values) {
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
        if let (false, Some(columns)) = (rows.is_empty(), &columns) {
            resource::insert_many(&mut tx, DOMAIN, TABLE.name, columns, rows).await?;
        }
    }
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
    Ok(std::mem::take(&mut run.response))
}

fn normalised_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}
