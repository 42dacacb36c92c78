//! `fusion.property.v1.ProjectService`: the developments whose lots a tenant sells.
//!
//! The stock figures (`lot_count`, `available_lot_count`, `min_price`, `max_price`) are
//! output only: the lot handlers keep them exact, so they are read here and never set.
//! A project's `currency_code` is set once, on create: every amount of its lots is in it.

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::project_service_server::ProjectService;
use fusion_service::api::{dec_str, etag, opt_ts, parse_decimal, populated, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{Call, Child, Kit, Method, Resource};

use super::rpc;
use crate::domain::validate;
use crate::error::PropertyError;
use crate::store::projects::{LIST, ProjectRow, TABLE};
use crate::store::{lock_live, media::refuse_live_media};
use crate::{AppState, DOMAIN};
use fusion_service::validate::currency_code;

const DEVELOPERS: &str = "property.developers";

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

/// What a Create sets: the mutable fields and the currency, which never changes after.
const CREATE: &[&str] = &[
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
    "currency_code",
];

const STATUSES: &[&str] = &["planning", "selling", "sold_out", "completed", "on_hold"];

/// Projects on the standard methods: a project may name a live developer, and one with
/// live stages or media cannot be deleted.
struct Projects;

impl Resource for Projects {
    type Row = ProjectRow;
    type Pb = pb::Project;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Project";
    const FIELD: &'static str = "project";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["currency_code"];
    const CHILDREN: &'static [Child] = &[Child {
        table: "property.stages",
        column: "project_id",
        what: "stages",
    }];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: ProjectRow) -> pb::Project {
        pb::Project {
            id: r.id,
            tenant_id: r.tenant_id,
            developer_id: r.developer_id.unwrap_or_default(),
            name: r.name,
            slug: r.slug,
            description: r.description.unwrap_or_default(),
            address: r.address.unwrap_or_default(),
            suburb: r.suburb.unwrap_or_default(),
            state: r.state.unwrap_or_default(),
            postcode: r.postcode.unwrap_or_default(),
            country: r.country.unwrap_or_default(),
            latitude: dec_str(r.latitude),
            longitude: dec_str(r.longitude),
            status: r.status,
            lot_count: r.total_lots.unwrap_or_default(),
            available_lot_count: r.available_lots.unwrap_or_default(),
            min_price: dec_str(r.min_price),
            max_price: dec_str(r.max_price),
            featured: r.featured,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
            currency_code: r.currency,
        }
    }

    fn id(p: &pb::Project) -> i64 {
        p.id
    }

    fn etag(p: &pb::Project) -> &str {
        &p.etag
    }

    /// Without a mask an unset field cannot be told from a cleared one, so `false`
    /// (like 0 and "") means "leave as is".
    fn populated(p: &pb::Project) -> Vec<&'static str> {
        populated(&[
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
        ])
    }

    fn values(
        _: &AppState,
        p: &pb::Project,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        values_of(DOMAIN, "project", fields, |field| {
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
                // Empty: the table's default, AUD (migration 0003).
                "currency_code" => match p.currency_code.as_str() {
                    "" => return Ok(None),
                    code => {
                        currency_code(code)?;
                        ("currency", Val::text(code))
                    }
                },
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
    }

    async fn on_create(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        p: &pb::Project,
        values: &mut Values,
    ) -> Result<(), crate::error::PropertyError> {
        if p.developer_id != 0 {
            require_developer(tx, p.developer_id).await?;
        }
        // A new project has no lots; storing 0 rather than NULL lets filters such as
        // `available_lot_count = 0` match what Get shows.
        values.push(("total_lots", Val::Int32(Some(0))));
        values.push(("available_lots", Val::Int32(Some(0))));
        Ok(())
    }

    /// The currency is immutable (AIP-203): a whole project sent back may carry it only
    /// unchanged.
    async fn on_update(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &ProjectRow,
        p: &pb::Project,
        values: &mut Values,
    ) -> Result<(), crate::error::PropertyError> {
        if !p.currency_code.is_empty() && p.currency_code != current.currency {
            return Err(PropertyError::invalid(
                "project.currency_code",
                "cannot be changed: the project's prices are in it",
            ));
        }
        let moving = values.iter().any(|(column, _)| *column == "developer_id");
        if moving && p.developer_id != 0 {
            require_developer(tx, p.developer_id).await?;
        }
        Ok(())
    }

    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        p: &ProjectRow,
    ) -> Result<(), crate::error::PropertyError> {
        refuse_live_media(tx, "project", p.id).await
    }

    /// A live project must not point at a deleted developer.
    async fn on_undelete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        p: &ProjectRow,
    ) -> Result<(), crate::error::PropertyError> {
        if let Some(developer) = p.developer_id
            && !lock_live(tx, DEVELOPERS, developer).await?
        {
            return Err(PropertyError::DeveloperDeleted {
                developer_id: developer,
            });
        }
        Ok(())
    }
}

/// NOT_FOUND unless developer `id` is live in the caller's tenant.
async fn require_developer(conn: &mut TenantTx, id: i64) -> Result<(), PropertyError> {
    if lock_live(conn, DEVELOPERS, id).await? {
        Ok(())
    } else {
        Err(PropertyError::not_found("developer", id))
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
        rpc::create::<Projects, _>(&self.state, req, |r| &r.request_id, |r| r.project).await
    }

    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        rpc::get::<Projects, _>(&self.state, req, |r| r.id).await
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        rpc::list::<Projects, _, _>(&self.state, req).await
    }

    async fn update_project(
        &self,
        req: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        rpc::update::<Projects, _>(&self.state, req, |r| (r.project, r.update_mask)).await
    }

    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        rpc::delete::<Projects, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_project(
        &self,
        req: Request<pb::UndeleteProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        rpc::undelete::<Projects, _>(&self.state, req, |r| r.id).await
    }
}
