//! `fusion.crm.v1.PipelineService`: each tenant's lead statuses and deal stages.
//!
//! A tenant starts with the defaults of [`crate::domain::pipeline`] the first time its
//! pipeline is read or used. Keys are immutable and stay reserved once used (a deleted
//! status still exists, so the leads that name it stay valid); new values must name a
//! live key. A deal stage's outcome is immutable too: deals prove their status against
//! it in the database.

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::{ListParams, ListSpec};
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::pipeline_service_server::PipelineService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};
use fusion_service::standard::{self, Call, Kit, Method, Resource};

use super::{API, caller, ensure_pipeline, values_of};
use crate::domain::pipeline::{self, OUTCOMES};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const STATUSES: Table = Table {
    domain: DOMAIN,
    name: "crm.lead_statuses",
    select: "id, tenant_id, key, label, position, is_closed, version, created_at, updated_at, deleted_at",
    what: "lead status",
};

const STAGES: Table = Table {
    domain: DOMAIN,
    name: "crm.deal_stages",
    select: "id, tenant_id, key, label, position, outcome, default_probability, version, \
             created_at, updated_at, deleted_at",
    what: "deal stage",
};

const fn list_of(table: Table) -> ListSpec {
    ListSpec {
        table: table.name,
        select: table.select,
        fields: &[],
        order_fields: &[],
        default_order: "position",
        soft_delete: true,
        tenant_scoped: true,
    }
}

const STATUS_LIST: ListSpec = ListSpec {
    fields: &[fusion_db::filter::FieldSpec::new(
        "position",
        "position",
        fusion_db::filter::FieldKind::Int,
    )],
    order_fields: &["position"],
    ..list_of(STATUSES)
};

const STAGE_LIST: ListSpec = ListSpec {
    fields: &[fusion_db::filter::FieldSpec::new(
        "position",
        "position",
        fusion_db::filter::FieldKind::Int,
    )],
    order_fields: &["position"],
    ..list_of(STAGES)
};

#[derive(sqlx::FromRow)]
struct StatusRow {
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
struct StageRow {
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
            is_closed: r.is_closed,
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

fn status_values(s: &pb::LeadStatus, fields: &[&str]) -> Result<Values, Status> {
    values_of("lead_status", fields, |field| {
        Ok(Some(match field {
            "key" => {
                pipeline::key(s.key.trim())?;
                ("key", Val::text(&s.key))
            }
            "label" => {
                validate::required(&s.label, 100)?;
                ("label", Val::text(&s.label))
            }
            "position" => ("position", Val::Int32(Some(s.position))),
            "is_closed" => ("is_closed", Val::Bool(s.is_closed)),
            _ => return Ok(None),
        }))
    })
}

fn stage_values(s: &pb::DealStage, fields: &[&str]) -> Result<Values, Status> {
    values_of("deal_stage", fields, |field| {
        Ok(Some(match field {
            "key" => {
                pipeline::key(s.key.trim())?;
                ("key", Val::text(&s.key))
            }
            "label" => {
                validate::required(&s.label, 100)?;
                ("label", Val::text(&s.label))
            }
            "position" => ("position", Val::Int32(Some(s.position))),
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
            _ => return Ok(None),
        }))
    })
}

const STATUS_CREATE: &[&str] = &["key", "label", "position", "is_closed"];
const STATUS_MUTABLE: &[&str] = &["label", "position", "is_closed"];
const STAGE_CREATE: &[&str] = &["key", "label", "position", "outcome", "default_probability"];
const STAGE_MUTABLE: &[&str] = &["label", "position", "default_probability"];

/// FAILED_PRECONDITION when row `id` of `table` is the tenant's last live open lead
/// status or deal stage: leads and deals must always have somewhere to start.
///
/// Such deletes and closes of one tenant's table take turns on a transaction-scoped
/// advisory lock (the row itself is already locked by the kit), so two cannot both
/// pass; each reads the open rows after the other has committed.
async fn refuse_last_open(tx: &mut TenantTx, table: Table, id: i64) -> Result<(), Status> {
    let tenant = tx.tenant_id();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), $2::int)")
        .bind(table.name)
        .bind(tenant)
        .execute(&mut **tx)
        .await
        .map_err(|e| fusion_db::db_status(DOMAIN, e))?;
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
        .await
        .map_err(|e| fusion_db::db_status(DOMAIN, e))?;
    if ids == [id] {
        Err(API.precondition(
            "LAST_OPEN",
            format!(
                "{} {id} is the tenant's last open one; add another first",
                table.what
            ),
        ))
    } else {
        Ok(())
    }
}

/// Lead statuses on the standard methods: the key is fixed once created, and the
/// tenant's last open status can be neither deleted nor closed.
struct Statuses;

impl Resource for Statuses {
    type Row = StatusRow;
    type Pb = pb::LeadStatus;
    type State = AppState;

    const SINGULAR: &'static str = "LeadStatus";
    const TABLE: Table = STATUSES;
    const LIST: ListSpec = STATUS_LIST;
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
            ("is_closed", s.is_closed),
        ])
    }

    fn values(
        _: &AppState,
        s: &pb::LeadStatus,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, Status> {
        status_values(s, fields)
    }

    async fn on_update(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        _: &StatusRow,
        s: &pb::LeadStatus,
        values: &mut Values,
    ) -> Result<(), Status> {
        let closes = s.is_closed && values.iter().any(|(c, _)| *c == "is_closed");
        if closes {
            refuse_last_open(tx, STATUSES, s.id).await?;
        }
        Ok(())
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &StatusRow,
    ) -> Result<(), Status> {
        refuse_last_open(tx, STATUSES, current.id).await
    }
}

/// Deal stages on the standard methods: the key and outcome are fixed once created
/// (deals prove their status against them), and the tenant's last open stage cannot
/// be deleted.
struct Stages;

impl Resource for Stages {
    type Row = StageRow;
    type Pb = pb::DealStage;
    type State = AppState;

    const SINGULAR: &'static str = "DealStage";
    const TABLE: Table = STAGES;
    const LIST: ListSpec = STAGE_LIST;
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
    ) -> Result<Values, Status> {
        stage_values(s, fields)
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &StageRow,
    ) -> Result<(), Status> {
        refuse_last_open(tx, STAGES, current.id).await
    }
}

/// The PipelineService implementation.
#[derive(Clone, Debug)]
pub(crate) struct PipelineApi {
    state: AppState,
}

impl PipelineApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl PipelineService for PipelineApi {
    async fn list_lead_statuses(
        &self,
        req: Request<pb::ListLeadStatusesRequest>,
    ) -> Result<Response<pb::ListLeadStatusesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            String::new(),
            String::new(),
            r.show_deleted,
        );
        let page = standard::list::<Statuses>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListLeadStatusesResponse {
            lead_statuses: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn get_lead_status(
        &self,
        req: Request<pb::GetLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let ctx = caller(&req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let id = req.into_inner().id;
        let status = standard::get::<Statuses>(&self.state, &ctx, id);
        Ok(Response::new(status.await?))
    }

    async fn create_lead_status(
        &self,
        req: Request<pb::CreateLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let status = body.lead_status.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let created = standard::create::<Statuses>(&self.state, &ctx, key, status);
        Ok(Response::new(created.await?))
    }

    async fn update_lead_status(
        &self,
        req: Request<pb::UpdateLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let status = body.lead_status.unwrap_or_default();
        let updated = standard::update::<Statuses>(&self.state, &ctx, status, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_lead_status(
        &self,
        req: Request<pb::DeleteLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Statuses>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_lead_status(
        &self,
        req: Request<pb::UndeleteLeadStatusRequest>,
    ) -> Result<Response<pb::LeadStatus>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Statuses>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }

    async fn list_deal_stages(
        &self,
        req: Request<pb::ListDealStagesRequest>,
    ) -> Result<Response<pb::ListDealStagesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            String::new(),
            String::new(),
            r.show_deleted,
        );
        let page = standard::list::<Stages>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListDealStagesResponse {
            deal_stages: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn get_deal_stage(
        &self,
        req: Request<pb::GetDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let ctx = caller(&req)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let id = req.into_inner().id;
        let stage = standard::get::<Stages>(&self.state, &ctx, id);
        Ok(Response::new(stage.await?))
    }

    async fn create_deal_stage(
        &self,
        req: Request<pb::CreateDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let stage = body.deal_stage.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let created = standard::create::<Stages>(&self.state, &ctx, key, stage);
        Ok(Response::new(created.await?))
    }

    async fn update_deal_stage(
        &self,
        req: Request<pb::UpdateDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let stage = body.deal_stage.unwrap_or_default();
        let updated = standard::update::<Stages>(&self.state, &ctx, stage, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_deal_stage(
        &self,
        req: Request<pb::DeleteDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Stages>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_deal_stage(
        &self,
        req: Request<pb::UndeleteDealStageRequest>,
    ) -> Result<Response<pb::DealStage>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Stages>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }

    async fn get_crm_settings(
        &self,
        req: Request<pb::GetCrmSettingsRequest>,
    ) -> Result<Response<pb::CrmSettings>, Status> {
        let ctx = caller(&req)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let settings = read_settings(&self.state, &mut tx, ctx.tenant_id).await?;
        tx.commit().await?;
        Ok(Response::new(settings))
    }

    async fn update_crm_settings(
        &self,
        req: Request<pb::UpdateCrmSettingsRequest>,
    ) -> Result<Response<pb::CrmSettings>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let sent = body.crm_settings.unwrap_or_default();
        let mask = API.mask(
            body.update_mask,
            &["default_country"],
            &["tenant_id", "update_time"],
            &populated(&[("default_country", !sent.default_country.is_empty())]),
        )?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // Locks the tenant's row (when there is one) so concurrent updates see each other.
        let current: Option<SettingsRow> = sqlx::query_as(
            "SELECT default_country, version, updated_at FROM crm.tenant_settings FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| fusion_db::db_status(DOMAIN, e))?;
        API.check_etag(&sent.etag, current.as_ref().map_or(0, |c| c.version))?;
        if mask.has("default_country") {
            let code = sent.default_country.trim().to_uppercase();
            if code.len() != 2 || code.parse::<phonenumber::country::Id>().is_err() {
                return Err(API.invalid(
                    "crm_settings.default_country",
                    "must be an ISO 3166 country code such as AU",
                ));
            }
            sqlx::query(
                "INSERT INTO crm.tenant_settings (tenant_id, default_country) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE
                    SET default_country = EXCLUDED.default_country, updated_at = now(),
                        version = crm.tenant_settings.version + 1",
            )
            .bind(ctx.tenant_id)
            .bind(&code)
            .execute(&mut *tx)
            .await
            .map_err(|e| fusion_db::db_status(DOMAIN, e))?;
        }
        let settings = read_settings(&self.state, &mut tx, ctx.tenant_id).await?;
        tx.commit().await?;
        Ok(Response::new(settings))
    }
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    default_country: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

/// The tenant's settings, or the defaults (version 0) while it has none stored.
async fn read_settings(
    state: &AppState,
    tx: &mut fusion_db::TenantTx,
    tenant: i64,
) -> Result<pb::CrmSettings, Status> {
    let row: Option<SettingsRow> =
        sqlx::query_as("SELECT default_country, version, updated_at FROM crm.tenant_settings")
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| fusion_db::db_status(DOMAIN, e))?;
    Ok(match row {
        Some(r) => pb::CrmSettings {
            tenant_id: tenant,
            default_country: r.default_country,
            update_time: Some(ts(r.updated_at)),
            etag: etag(r.version),
        },
        None => pb::CrmSettings {
            tenant_id: tenant,
            default_country: state.config.default_country.as_ref().to_owned(),
            update_time: None,
            etag: etag(0),
        },
    })
}
