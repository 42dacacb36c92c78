//! `fusion.property.v1.StageService`: the releases a project's lots are sold in.

use chrono::{DateTime, NaiveDate, Utc};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::idempotency;
use fusion_db::list::{ListParams, ListSpec, ScopeValue};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::stage_service_server::StageService;
use fusion_service::api::{etag, opt_ts, parse_date, populated, total, ts};

use super::lock_live;
use super::{
    API, REQUEST_IDS, Table, Val, Values, Versioned, caller, insert_row, list_page, purge_ts,
    update_row, values_of,
};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.stages",
    select: "id, tenant_id, project_id, name, description, release_date, status, \"order\", \
             version, created_at, updated_at, deleted_at",
    what: "stage",
};

const PROJECTS: &str = "property.projects";

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("project_id", "project_id", FieldKind::Int),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("release_date", "release_date", FieldKind::Date),
    FieldSpec::new("order", "\"order\"", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["order", "name", "release_date", "create_time"],
    default_order: "order",
    soft_delete: true,
    tenant_scoped: true,
};

/// What Create sets: the mutable fields and the project, which never changes after.
const CREATE: &[&str] = &[
    "project_id",
    "name",
    "description",
    "release_date",
    "status",
    "order",
];
const MUTABLE: &[&str] = &["name", "description", "release_date", "status", "order"];
const IMMUTABLE: &[&str] = &["project_id"];

const STATUSES: &[&str] = &["planned", "released", "selling", "sold_out", "completed"];

#[derive(sqlx::FromRow)]
struct StageRow {
    id: i64,
    tenant_id: i64,
    project_id: i64,
    name: String,
    description: Option<String>,
    release_date: Option<NaiveDate>,
    status: String,
    order: i32,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(StageRow);

impl StageRow {
    fn into_pb(self, state: &AppState) -> pb::Stage {
        pb::Stage {
            id: self.id,
            tenant_id: self.tenant_id,
            project_id: self.project_id,
            name: self.name,
            description: self.description.unwrap_or_default(),
            release_date: self.release_date.map(fusion_service::api::date_pb),
            status: self.status,
            order: self.order,
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: etag(self.version),
        }
    }
}

/// The column values of the fields in `fields`, validated.
fn values(s: &pb::Stage, fields: &[&str]) -> Result<Values, Status> {
    values_of("stage", fields, |field| {
        Ok(Some(match field {
            "project_id" => match s.project_id {
                0 => return Err("is required".into()),
                id if id > 0 => ("project_id", Val::Int(Some(id))),
                _ => return Err("must be a positive id".into()),
            },
            "name" => {
                validate::name(&s.name)?;
                ("name", Val::text(&s.name))
            }
            "description" => ("description", Val::text(&s.description)),
            "release_date" => {
                let d = s.release_date.unwrap_or_default();
                let date = parse_date(d.year, d.month, d.day)?;
                ("release_date", Val::Date(date))
            }
            "status" => {
                validate::one_of(&s.status, STATUSES)?;
                ("status", Val::text(&s.status))
            }
            "order" => ("\"order\"", Val::Int32(Some(s.order))),
            _ => return Ok(None),
        }))
    })
}

/// The StageService implementation.
#[derive(Clone, Debug)]
pub(crate) struct StageApi {
    state: AppState,
}

impl StageApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl StageService for StageApi {
    async fn create_stage(
        &self,
        req: Request<pb::CreateStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let s = body.stage.unwrap_or_default();
        let values = values(&s, CREATE)?;
        const METHOD: &str = "CreateStage";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        if !lock_live(&mut tx, PROJECTS, s.project_id).await? {
            return Err(API.not_found("project", s.project_id));
        }
        let id = insert_row(&mut tx, TABLE.name, values).await?;
        let created = TABLE
            .fetch::<StageRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_stage(
        &self,
        req: Request<pb::GetStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        let ctx = caller(&req)?;
        let row: StageRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn list_stages(
        &self,
        req: Request<pb::ListStagesRequest>,
    ) -> Result<Response<pb::ListStagesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        if r.project_id < 0 {
            return Err(API.invalid(
                "project_id",
                "must be a positive id, or 0 for every project",
            ));
        }
        let scope = [("project_id", ScopeValue::Int(r.project_id))];
        let scope = (r.project_id != 0).then_some(&scope[..]);
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = list_page::<StageRow>(&self.state, ctx.tenant_id, &LIST, &params, scope).await?;
        Ok(Response::new(pb::ListStagesResponse {
            stages: page
                .items
                .into_iter()
                .map(|s| s.into_pb(&self.state))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_stage(
        &self,
        req: Request<pb::UpdateStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let s = body.stage.unwrap_or_default();
        API.require_id("stage.id", s.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            IMMUTABLE,
            &populated(&[
                ("name", !s.name.is_empty()),
                ("description", !s.description.is_empty()),
                ("release_date", s.release_date.is_some()),
                ("status", !s.status.is_empty()),
                ("order", s.order != 0),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let values = values(&s, &changing)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: StageRow = TABLE.fetch(&mut tx, s.id, false, true).await?;
        API.check_etag(&s.etag, current.version)?;
        // The mask already refuses `project_id`; a whole stage sent back without one may
        // carry it only unchanged (AIP-203).
        if s.project_id != 0 && s.project_id != current.project_id {
            return Err(API.invalid("stage.project_id", "cannot be changed"));
        }
        update_row(&mut tx, TABLE.name, s.id, values).await?;
        let row: StageRow = TABLE.fetch(&mut tx, s.id, false, false).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_stage(
        &self,
        req: Request<pb::DeleteStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        API.require_id("id", r.id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // Lock the stage before looking for lots, so a lot created concurrently is
        // either seen here or finds the stage deleted (if lot creation locks it too).
        TABLE.fetch::<StageRow>(&mut tx, r.id, false, true).await?;
        TABLE
            .refuse_live_children(&mut tx, r.id, "property.lots", "stage_id", "lots")
            .await?;
        super::refuse_live_media(&mut tx, "stage", r.id).await?;
        let row: StageRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_stage(
        &self,
        req: Request<pb::UndeleteStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        API.require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // A live stage must not belong to a deleted project.
        let current: StageRow = TABLE.fetch(&mut tx, id, true, true).await?;
        if current.deleted() && !lock_live(&mut tx, PROJECTS, current.project_id).await? {
            return Err(API.precondition(
                "PROJECT_DELETED",
                format!(
                    "project {} is deleted; undelete it first",
                    current.project_id
                ),
            ));
        }
        let row: StageRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }
}
