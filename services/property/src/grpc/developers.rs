//! `fusion.property.v1.DeveloperService`: the builders a tenant's projects belong to.

use tonic::{Request, Response, Status};

use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::developer_service_server::DeveloperService;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Child, Kit, Method, Resource};

use super::rpc;
use crate::domain::validate;
use crate::store::developers::{DeveloperRow, LIST, TABLE};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &[
    "name",
    "slug",
    "website_uri",
    "email",
    "phone",
    "description",
];

/// Developers on the standard methods: a developer with live projects cannot be deleted.
struct Developers;

impl Resource for Developers {
    type Row = DeveloperRow;
    type Pb = pb::Developer;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Developer";
    const FIELD: &'static str = "developer";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const CHILDREN: &'static [Child] = &[Child {
        table: "property.projects",
        column: "developer_id",
        what: "projects",
    }];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: DeveloperRow) -> pb::Developer {
        pb::Developer {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            slug: r.slug,
            website_uri: r.website.unwrap_or_default(),
            email: r.email.unwrap_or_default(),
            phone: r.phone.unwrap_or_default(),
            description: r.description.unwrap_or_default(),
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(d: &pb::Developer) -> i64 {
        d.id
    }

    fn etag(d: &pb::Developer) -> &str {
        &d.etag
    }

    fn populated(d: &pb::Developer) -> Vec<&'static str> {
        populated(&[
            ("name", !d.name.is_empty()),
            ("slug", !d.slug.is_empty()),
            ("website_uri", !d.website_uri.is_empty()),
            ("email", !d.email.is_empty()),
            ("phone", !d.phone.is_empty()),
            ("description", !d.description.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        d: &pb::Developer,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        values_of(DOMAIN, "developer", fields, |field| {
            Ok(Some(match field {
                "name" => {
                    validate::name(&d.name)?;
                    ("name", Val::text(&d.name))
                }
                "slug" => {
                    validate::slug(&d.slug)?;
                    ("slug", Val::text(&d.slug))
                }
                "website_uri" => {
                    validate::url(&d.website_uri)?;
                    ("website", Val::text(&d.website_uri))
                }
                "email" => {
                    validate::email(&d.email)?;
                    ("email", Val::text(&d.email))
                }
                "phone" => {
                    validate::max_len(&d.phone, 50)?;
                    ("phone", Val::text(&d.phone))
                }
                "description" => ("description", Val::text(&d.description)),
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
    }
}

/// The DeveloperService implementation.
#[derive(Clone, Debug)]
pub(crate) struct DeveloperApi {
    state: AppState,
}

impl DeveloperApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DeveloperService for DeveloperApi {
    async fn create_developer(
        &self,
        req: Request<pb::CreateDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        rpc::create::<Developers, _>(&self.state, req, |r| &r.request_id, |r| r.developer).await
    }

    async fn get_developer(
        &self,
        req: Request<pb::GetDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        rpc::get::<Developers, _>(&self.state, req, |r| r.id).await
    }

    async fn list_developers(
        &self,
        req: Request<pb::ListDevelopersRequest>,
    ) -> Result<Response<pb::ListDevelopersResponse>, Status> {
        rpc::list::<Developers, _, _>(&self.state, req).await
    }

    async fn update_developer(
        &self,
        req: Request<pb::UpdateDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        rpc::update::<Developers, _>(&self.state, req, |r| (r.developer, r.update_mask)).await
    }

    async fn delete_developer(
        &self,
        req: Request<pb::DeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        rpc::delete::<Developers, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_developer(
        &self,
        req: Request<pb::UndeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        rpc::undelete::<Developers, _>(&self.state, req, |r| r.id).await
    }
}
