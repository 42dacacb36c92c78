//! `fusion.property.v1.ProjectService`: the developments whose lots a tenant sells.
//!
//! The stock figures (`total_lots`, `available_lots`, `min_price`, `max_price`) are
//! output only: the lot handlers keep them exact, so they are read here and never set.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::idempotency;
use fusion_db::list::{ListParams, ListSpec};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::project_service_server::ProjectService;
use fusion_service::api::{dec_str, etag, opt_ts, parse_decimal, populated, total, ts};

use super::{
    API, REQUEST_IDS, Table, Val, Values, Versioned, caller, insert_row, list_page, purge_ts,
    update_row, values_of,
};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.projects",
    select: "id, tenant_id, developer_id, name, slug, description, address, suburb, state, \
             postcode, country, latitude, longitude, status, total_lots, available_lots, \
             min_price, max_price, featured, version, created_at, updated_at, deleted_at",
    what: "project",
};

const DEVELOPERS: &str = "property.developers";

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("developer_id", "developer_id", FieldKind::Int),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("slug", "slug", FieldKind::Text),
    FieldSpec::new("suburb", "suburb", FieldKind::Text),
    FieldSpec::new("state", "state", FieldKind::Text),
    FieldSpec::new("postcode", "postcode", FieldKind::Text),
    FieldSpec::new("country", "country", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("featured", "featured", FieldKind::Bool),
    FieldSpec::new("latitude", "latitude", FieldKind::Decimal),
    FieldSpec::new("longitude", "longitude", FieldKind::Decimal),
    FieldSpec::new("total_lots", "total_lots", FieldKind::Int),
    FieldSpec::new("available_lots", "available_lots", FieldKind::Int),
    FieldSpec::new("min_price", "min_price", FieldKind::Decimal),
    FieldSpec::new("max_price", "max_price", FieldKind::Decimal),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "name",
        "create_time",
        "min_price",
        "max_price",
        "available_lots",
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

const MUTABLE: &[&str] = &[
    "developer_id",
    "name",
    "slug",
    "description",
    "address",
    "suburb",
    "state",
    "postcode",
    "country",
    "latitude",
    "longitude",
    "status",
    "featured",
];

const STATUSES: &[&str] = &["planning", "selling", "sold_out", "completed", "on_hold"];

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: i64,
    tenant_id: i64,
    developer_id: Option<i64>,
    name: String,
    slug: String,
    description: Option<String>,
    address: Option<String>,
    suburb: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    latitude: Option<Decimal>,
    longitude: Option<Decimal>,
    status: String,
    total_lots: Option<i32>,
    available_lots: Option<i32>,
    min_price: Option<Decimal>,
    max_price: Option<Decimal>,
    featured: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(ProjectRow);

impl ProjectRow {
    fn into_pb(self, state: &AppState) -> pb::Project {
        pb::Project {
            id: self.id,
            tenant_id: self.tenant_id,
            developer_id: self.developer_id.unwrap_or_default(),
            name: self.name,
            slug: self.slug,
            description: self.description.unwrap_or_default(),
            address: self.address.unwrap_or_default(),
            suburb: self.suburb.unwrap_or_default(),
            state: self.state.unwrap_or_default(),
            postcode: self.postcode.unwrap_or_default(),
            country: self.country.unwrap_or_default(),
            latitude: dec_str(self.latitude),
            longitude: dec_str(self.longitude),
            status: self.status,
            total_lots: self.total_lots.unwrap_or_default(),
            available_lots: self.available_lots.unwrap_or_default(),
            min_price: dec_str(self.min_price),
            max_price: dec_str(self.max_price),
            featured: self.featured,
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: etag(self.version),
        }
    }
}

/// The column values of the fields in `fields`, validated.
fn values(p: &pb::Project, fields: &[&str]) -> Result<Values, Status> {
    values_of("project", fields, |field| {
        Ok(Some(match field {
            "developer_id" => match p.developer_id {
                0 => ("developer_id", Val::Int(None)),
                id if id > 0 => ("developer_id", Val::Int(Some(id))),
                _ => return Err("must be a positive id, or 0 for none".into()),
            },
            "name" => {
                validate::name(&p.name)?;
                ("name", Val::text(&p.name))
            }
            "slug" => {
                validate::slug(&p.slug)?;
                ("slug", Val::text(&p.slug))
            }
            "description" => ("description", Val::text(&p.description)),
            "address" => {
                validate::max_len(&p.address, 255)?;
                ("address", Val::text(&p.address))
            }
            "suburb" => {
                validate::max_len(&p.suburb, 100)?;
                ("suburb", Val::text(&p.suburb))
            }
            "state" => {
                validate::max_len(&p.state, 100)?;
                ("state", Val::text(&p.state))
            }
            "postcode" => {
                validate::max_len(&p.postcode, 20)?;
                ("postcode", Val::text(&p.postcode))
            }
            "country" => {
                validate::max_len(&p.country, 100)?;
                ("country", Val::text(&p.country))
            }
            "latitude" => {
                let range = (Decimal::from(-90), Decimal::from(90));
                let v = parse_decimal(&p.latitude, 2, 8, Some(range))?;
                ("latitude", Val::Decimal(v))
            }
            "longitude" => {
                let range = (Decimal::from(-180), Decimal::from(180));
                let v = parse_decimal(&p.longitude, 3, 8, Some(range))?;
                ("longitude", Val::Decimal(v))
            }
            "status" => {
                validate::one_of(&p.status, STATUSES)?;
                ("status", Val::text(&p.status))
            }
            "featured" => ("featured", Val::Bool(p.featured)),
            _ => return Ok(None),
        }))
    })
}

/// NOT_FOUND unless developer `id` is live in the caller's tenant.
async fn require_developer(conn: &mut PgConnection, id: i64) -> Result<(), Status> {
    if super::lock_live(conn, DEVELOPERS, id).await? {
        Ok(())
    } else {
        Err(API.not_found("developer", id))
    }
}

/// The ProjectService implementation.
#[derive(Clone, Debug)]
pub(crate) struct ProjectApi {
    state: AppState,
}

impl ProjectApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(
        &self,
        req: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let p = body.project.unwrap_or_default();
        let mut values = values(&p, MUTABLE)?;
        // A new project has no lots; storing 0 rather than NULL lets filters such as
        // `available_lots = 0` match what Get shows.
        values.push(("total_lots", Val::Int32(Some(0))));
        values.push(("available_lots", Val::Int32(Some(0))));
        const METHOD: &str = "CreateProject";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        if p.developer_id != 0 {
            require_developer(&mut tx, p.developer_id).await?;
        }
        let id = insert_row(&mut tx, TABLE.name, values).await?;
        let created = TABLE
            .fetch::<ProjectRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let ctx = caller(&req)?;
        let row: ProjectRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page =
            list_page::<ProjectRow>(&self.state, ctx.tenant_id, &LIST, &params, None).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page
                .items
                .into_iter()
                .map(|p| p.into_pb(&self.state))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_project(
        &self,
        req: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let p = body.project.unwrap_or_default();
        API.require_id("project.id", p.id)?;
        // Without a mask an unset field cannot be told from a cleared one, so `false`
        // (like 0 and "") means "leave as is".
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            &[],
            &populated(&[
                ("developer_id", p.developer_id != 0),
                ("name", !p.name.is_empty()),
                ("slug", !p.slug.is_empty()),
                ("description", !p.description.is_empty()),
                ("address", !p.address.is_empty()),
                ("suburb", !p.suburb.is_empty()),
                ("state", !p.state.is_empty()),
                ("postcode", !p.postcode.is_empty()),
                ("country", !p.country.is_empty()),
                ("latitude", !p.latitude.is_empty()),
                ("longitude", !p.longitude.is_empty()),
                ("status", !p.status.is_empty()),
                ("featured", p.featured),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let values = values(&p, &changing)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: ProjectRow = TABLE.fetch(&mut tx, p.id, false, true).await?;
        API.check_etag(&p.etag, current.version)?;
        if mask.has("developer_id") && p.developer_id != 0 {
            require_developer(&mut tx, p.developer_id).await?;
        }
        update_row(&mut tx, TABLE.name, p.id, values).await?;
        let row: ProjectRow = TABLE.fetch(&mut tx, p.id, false, false).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        API.require_id("id", r.id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // Lock the project before looking for stages: a stage being created holds a key
        // share on it, so either that stage is committed (and seen) or it waits and
        // then finds the project deleted.
        TABLE
            .fetch::<ProjectRow>(&mut tx, r.id, false, true)
            .await?;
        TABLE
            .refuse_live_children(&mut tx, r.id, "property.stages", "project_id", "stages")
            .await?;
        super::refuse_live_media(&mut tx, "project", r.id).await?;
        let row: ProjectRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_project(
        &self,
        req: Request<pb::UndeleteProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        API.require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // A live project must not point at a deleted developer.
        let current: ProjectRow = TABLE.fetch(&mut tx, id, true, true).await?;
        if let (true, Some(developer)) = (current.deleted(), current.developer_id)
            && !super::lock_live(&mut tx, DEVELOPERS, developer).await?
        {
            return Err(API.precondition(
                "DEVELOPER_DELETED",
                format!("developer {developer} is deleted; undelete it first"),
            ));
        }
        let row: ProjectRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }
}
