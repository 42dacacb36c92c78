//! Lead statuses and deal stages: their rows, their descriptions for the standard methods, and the checks other resources make against them.
use sqlx::PgConnection;

use fusion_db::resource::{Val, Values};
use fusion_proto::crm::v1 as pb;

use crate::domain::pipeline::{DEFAULT_DEAL_STAGES, DEFAULT_LEAD_STATUSES};
use crate::error::CrmError;
use crate::{AppState, DOMAIN};
use chrono::{DateTime, Utc};
use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::Table;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};

use crate::domain::pipeline::{self, OUTCOMES};
use crate::domain::validate;
use crate::store::values_of;

pub(crate) const STATUSES: Table = Table {
    domain: DOMAIN,
    name: "crm.lead_statuses",
    select: "id, tenant_id, key, label, position, is_closed, version, created_at, updated_at, deleted_at",
    what: "lead status",
};

pub(crate) const STAGES: Table = Table {
    domain: DOMAIN,
    name: "crm.deal_stages",
    select: "id, tenant_id, key, label, position, outcome, default_probability, version, \
             created_at, updated_at, deleted_at",
    what: "deal stage",
};

/// What statuses and stages are filtered on.
const POSITION: &[FieldSpec] = &[FieldSpec::new("position", "position", FieldKind::Int)];

/// What a List of statuses or stages reads: in position order, filtered on position.
pub(crate) const fn list_of(table: Table) -> ListSpec {
    ListSpec {
        table: table.name,
        select: table.select,
        fields: POSITION,
        order_fields: &["position"],
        default_order: "position",
        soft_delete: true,
        tenant_scoped: true,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatusRow {
    id: i64,
    tenant_id: i64,
    key: String,
    label: String,
    position: i32,
    is_closed: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct StageRow {
    id: i64,
    tenant_id: i64,
    key: String,
    label: String,
    position: i32,
    outcome: String,
    default_probability: Option<i32>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(StatusRow, StageRow);

impl From<StatusRow> for pb::LeadStatus {
    fn from(r: StatusRow) -> Self {
        pb::LeadStatus {
            id: r.id,
            tenant_id: r.tenant_id,
            key: r.key,
            label: r.label,
            position: r.position,
            closed: r.is_closed,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            etag: etag(r.version),
        }
    }
}

impl From<StageRow> for pb::DealStage {
    fn from(r: StageRow) -> Self {
        pb::DealStage {
            id: r.id,
            tenant_id: r.tenant_id,
            key: r.key,
            label: r.label,
            position: r.position,
            outcome: r.outcome,
            default_probability: r.default_probability,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            etag: etag(r.version),
        }
    }
}

/// The column value of `field` of a status or stage when it is one they share (key,
/// label, position).
fn entry_value(
    field: &str,
    key: &str,
    label: &str,
    position: i32,
) -> Result<Option<(&'static str, Val)>, String> {
    Ok(Some(match field {
        "key" => {
            pipeline::key(key.trim())?;
            ("key", Val::text(key))
        }
        "label" => {
            validate::required(label, 100)?;
            ("label", Val::text(label))
        }
        "position" => ("position", Val::Int32(Some(position))),
        _ => return Ok(None),
    }))
}

pub(crate) fn status_values(s: &pb::LeadStatus, fields: &[&str]) -> Result<Values, CrmError> {
    values_of("lead_status", fields, |field| match field {
        "closed" => Ok(Some(("is_closed", Val::Bool(s.closed)))),
        _ => entry_value(field, &s.key, &s.label, s.position),
    })
}

pub(crate) fn stage_values(s: &pb::DealStage, fields: &[&str]) -> Result<Values, CrmError> {
    values_of("deal_stage", fields, |field| {
        Ok(Some(match field {
            "outcome" => {
                let outcome = if s.outcome.trim().is_empty() {
                    "open"
                } else {
                    s.outcome.trim()
                };
                validate::one_of(outcome, OUTCOMES)?;
                ("outcome", Val::text(outcome))
            }
            "default_probability" => match s.default_probability {
                Some(p) if !(0..=100).contains(&p) => {
                    return Err("must be between 0 and 100".into());
                }
                p => ("default_probability", Val::Int32(p)),
            },
            _ => return entry_value(field, &s.key, &s.label, s.position),
        }))
    })
}

pub(crate) const STATUS_CREATE: &[&str] = &["key", "label", "position", "closed"];
pub(crate) const STATUS_MUTABLE: &[&str] = &["label", "position", "closed"];
pub(crate) const STAGE_CREATE: &[&str] =
    &["key", "label", "position", "outcome", "default_probability"];
pub(crate) const STAGE_MUTABLE: &[&str] = &["label", "position", "default_probability"];

/// FAILED_PRECONDITION when row `id` of `table` is the tenant's last live open lead
/// status or deal stage: leads and deals must always have somewhere to start.
///
/// Such deletes and closes of one tenant's table take turns on a transaction-scoped
/// advisory lock (the row itself is already locked by the kit), so two cannot both
/// pass; each reads the open rows after the other has committed.
pub(crate) async fn refuse_last_open(
    tx: &mut TenantTx,
    table: Table,
    id: i64,
) -> Result<(), CrmError> {
    let tenant = tx.tenant_id();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), $2::int)")
        .bind(table.name)
        .bind(tenant)
        .execute(&mut **tx)
        .await?;
    // Both conditions are constants of this module.
    let open = if table.name == STATUSES.name {
        "NOT is_closed"
    } else {
        "outcome = 'open'"
    };
    let sql = format!(
        "SELECT id FROM {} WHERE deleted_at IS NULL AND {open} ORDER BY id",
        table.name
    );
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut **tx)
        .await?;
    if ids == [id] {
        Err(CrmError::LastOpen {
            what: table.what,
            id,
        })
    } else {
        Ok(())
    }
}

/// Lead statuses on the standard methods: the key is fixed once created, and the
/// tenant's last open status can be neither deleted nor closed.
pub(crate) struct Statuses;

impl Resource for Statuses {
    type Row = StatusRow;
    type Pb = pb::LeadStatus;
    type State = AppState;
    type Error = CrmError;

    const SINGULAR: &'static str = "LeadStatus";
    const FIELD: &'static str = "lead_status";
    const TABLE: Table = STATUSES;
    const LIST: ListSpec = list_of(STATUSES);
    const CREATE: &'static [&'static str] = STATUS_CREATE;
    const MUTABLE: &'static [&'static str] = STATUS_MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["key"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(_: &AppState, row: StatusRow) -> pb::LeadStatus {
        row.into()
    }

    fn id(s: &pb::LeadStatus) -> i64 {
        s.id
    }

    fn etag(s: &pb::LeadStatus) -> &str {
        &s.etag
    }

    fn populated(s: &pb::LeadStatus) -> Vec<&'static str> {
        populated(&[
            ("label", !s.label.is_empty()),
            ("position", s.position != 0),
            ("closed", s.closed),
        ])
    }

    fn values(
        _: &AppState,
        s: &pb::LeadStatus,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, CrmError> {
        status_values(s, fields)
    }

    async fn on_update(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        _: &StatusRow,
        s: &pb::LeadStatus,
        values: &mut Values,
    ) -> Result<(), CrmError> {
        let closes = s.closed && values.iter().any(|(c, _)| *c == "is_closed");
        if closes {
            refuse_last_open(tx, STATUSES, s.id).await?;
        }
        Ok(())
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &StatusRow,
    ) -> Result<(), CrmError> {
        refuse_last_open(tx, STATUSES, current.id).await
    }
}

/// Deal stages on the standard methods: the key and outcome are fixed once created
/// (deals prove their status against them), and the tenant's last open stage cannot
/// be deleted.
pub(crate) struct Stages;

impl Resource for Stages {
    type Row = StageRow;
    type Pb = pb::DealStage;
    type State = AppState;
    type Error = CrmError;

    const SINGULAR: &'static str = "DealStage";
    const FIELD: &'static str = "deal_stage";
    const TABLE: Table = STAGES;
    const LIST: ListSpec = list_of(STAGES);
    const CREATE: &'static [&'static str] = STAGE_CREATE;
    const MUTABLE: &'static [&'static str] = STAGE_MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["key", "outcome"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(_: &AppState, row: StageRow) -> pb::DealStage {
        row.into()
    }

    fn id(s: &pb::DealStage) -> i64 {
        s.id
    }

    fn etag(s: &pb::DealStage) -> &str {
        &s.etag
    }

    fn populated(s: &pb::DealStage) -> Vec<&'static str> {
        populated(&[
            ("label", !s.label.is_empty()),
            ("position", s.position != 0),
            ("default_probability", s.default_probability.is_some()),
        ])
    }

    fn values(
        _: &AppState,
        s: &pb::DealStage,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, CrmError> {
        stage_values(s, fields)
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &StageRow,
    ) -> Result<(), CrmError> {
        refuse_last_open(tx, STAGES, current.id).await
    }
}

/// Makes sure `tenant` has a pipeline: the first time its statuses or stages are
/// needed and it has none, it gets the defaults, in a transaction of their own (so a
/// caller's failed write never takes them back). Concurrent first calls agree (the keys
/// are unique); a tenant that deleted every status keeps its choice (deleted rows still
/// count). Each process remembers the tenants it has made sure of.
pub(crate) async fn ensure_pipeline(state: &AppState, tenant: i64) -> Result<(), CrmError> {
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
    .await?;
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
    .await?;
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
) -> Result<(), CrmError> {
    // Key-share locked, so the status cannot be deleted before this write commits.
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM crm.lead_statuses WHERE key = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if live.is_some() {
        return Ok(());
    }
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM crm.lead_statuses WHERE deleted_at IS NULL ORDER BY position, key",
    )
    .fetch_all(conn)
    .await?;
    Err(CrmError::invalid(
        field,
        format!(
            "{key:?} is not a lead status of this tenant; one of: {}",
            known.join(", ")
        ),
    ))
}

/// The tenant's first live lead status (by position), for a lead created without one.
pub(crate) async fn default_lead_status(conn: &mut PgConnection) -> Result<String, CrmError> {
    sqlx::query_scalar(
        "SELECT key FROM crm.lead_statuses WHERE deleted_at IS NULL AND NOT is_closed
          ORDER BY position, key LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    .ok_or(CrmError::NoLeadStatus)
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
) -> Result<StageInfo, CrmError> {
    let found: Option<StageInfo> = sqlx::query_as(
        "SELECT key, outcome, default_probability FROM crm.deal_stages
          WHERE key = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(stage) = found {
        return Ok(stage);
    }
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM crm.deal_stages WHERE deleted_at IS NULL ORDER BY position, key",
    )
    .fetch_all(conn)
    .await?;
    Err(CrmError::invalid(
        field,
        format!(
            "{key:?} is not a deal stage of this tenant; one of: {}",
            known.join(", ")
        ),
    ))
}

/// The tenant's live lead status keys and deal stage keys.
pub(crate) async fn live_keys(
    conn: &mut PgConnection,
) -> Result<(Vec<String>, Vec<String>), fusion_db::Error> {
    let statuses = sqlx::query_scalar("SELECT key FROM crm.lead_statuses WHERE deleted_at IS NULL")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| fusion_db::Error::from_sqlx(DOMAIN, e))?;
    let stages = sqlx::query_scalar("SELECT key FROM crm.deal_stages WHERE deleted_at IS NULL")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| fusion_db::Error::from_sqlx(DOMAIN, e))?;
    Ok((statuses, stages))
}
