//! `fusion.property.v1.StageService`: the releases a project's lots are sold in.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListSpec, ScopeValue};
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::stage_service_server::StageService;
use fusion_service::api::{etag, opt_ts, parse_date, populated, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{Call, Child, Kit, Method, Parent, Resource};

use super::caller;
use super::rpc;
use crate::domain::validate;
use crate::error::{PropertyError, reason};
use crate::store::media::refuse_live_media;
use crate::store::stages::{LIST, StageRow, TABLE};
use crate::{AppState, DOMAIN};

const PROJECTS: &str = "property.projects";

/// What Create sets: the mutable fields and the project, which never changes after.
const CREATE: &[&str] = &[
    "project_id",
    "name",
    "description",
    "release_date",
    "status",
    "position",
];
const MUTABLE: &[&str] = &["name", "description", "release_date", "status", "position"];
const IMMUTABLE: &[&str] = &["project_id"];

const STATUSES: &[&str] = &["planned", "released", "selling", "sold_out", "completed"];

/// Stages on the standard methods: a stage lives under one live project for good, and
/// one with live lots or media cannot be deleted.
struct Stages;

impl Resource for Stages {
    type Row = StageRow;
    type Pb = pb::Stage;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Stage";
    const FIELD: &'static str = "stage";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = IMMUTABLE;
    const PARENT: Option<Parent> = Some(Parent {
        table: PROJECTS,
        field: "project_id",
        what: "project",
        deleted_reason: reason::PROJECT_DELETED,
    });
    const CHILDREN: &'static [Child] = &[Child {
        table: "property.lots",
        column: "stage_id",
        what: "lots",
    }];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: StageRow) -> pb::Stage {
        pb::Stage {
            id: r.id,
            tenant_id: r.tenant_id,
            project_id: r.project_id,
            name: r.name,
            description: r.description.unwrap_or_default(),
            release_date: r.release_date.map(fusion_service::api::date_pb),
            status: r.status,
            position: r.order,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(s: &pb::Stage) -> i64 {
        s.id
    }

    fn etag(s: &pb::Stage) -> &str {
        &s.etag
    }

    fn populated(s: &pb::Stage) -> Vec<&'static str> {
        populated(&[
            ("name", !s.name.is_empty()),
            ("description", !s.description.is_empty()),
            ("release_date", s.release_date.is_some()),
            ("status", !s.status.is_empty()),
            ("position", s.position != 0),
        ])
    }

    fn values(
        _: &AppState,
        s: &pb::Stage,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        values_of(DOMAIN, "stage", fields, |field| {
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
                "position" => ("\"order\"", Val::Int32(Some(s.position))),
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
    }

    fn sent_parent_id(s: &pb::Stage) -> i64 {
        s.project_id
    }

    fn parent_id(s: &StageRow) -> i64 {
        s.project_id
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        s: &StageRow,
    ) -> Result<(), crate::error::PropertyError> {
        refuse_live_media(tx, "stage", s.id).await
    }
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
        rpc::create::<Stages, _>(&self.state, req, |r| &r.request_id, |r| r.stage).await
    }

    async fn get_stage(
        &self,
        req: Request<pb::GetStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        rpc::get::<Stages, _>(&self.state, req, |r| r.id).await
    }

    async fn list_stages(
        &self,
        req: Request<pb::ListStagesRequest>,
    ) -> Result<Response<pb::ListStagesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        if r.project_id < 0 {
            return Err(PropertyError::invalid(
                "project_id",
                "must be a positive id, or 0 for every project",
            )
            .into());
        }
        let scope = [("project_id", ScopeValue::Int(r.project_id))];
        let scope = (r.project_id != 0).then_some(&scope[..]);
        rpc::page::<Stages, _, _>(&self.state, &ctx, r, scope).await
    }

    async fn update_stage(
        &self,
        req: Request<pb::UpdateStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        rpc::update::<Stages, _>(&self.state, req, |r| (r.stage, r.update_mask)).await
    }

    async fn delete_stage(
        &self,
        req: Request<pb::DeleteStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        rpc::delete::<Stages, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_stage(
        &self,
        req: Request<pb::UndeleteStageRequest>,
    ) -> Result<Response<pb::Stage>, Status> {
        rpc::undelete::<Stages, _>(&self.state, req, |r| r.id).await
    }
}
