//! `fusion.property.v1.DeveloperService`: the builders a tenant's projects belong to.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, ListSpec};
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::developer_service_server::DeveloperService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};
use fusion_service::standard::{self, Child, Kit, Method, Resource};

use super::caller;
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
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let developer = body.developer.unwrap_or_default();
        let created = standard::create::<Developers>(&self.state, &ctx, key, developer);
        Ok(Response::new(created.await?))
    }

    async fn get_developer(
        &self,
        req: Request<pb::GetDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let developer = standard::get::<Developers>(&self.state, &ctx, id);
        Ok(Response::new(developer.await?))
    }

    async fn list_developers(
        &self,
        req: Request<pb::ListDevelopersRequest>,
    ) -> Result<Response<pb::ListDevelopersResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Developers>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListDevelopersResponse {
            developers: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_developer(
        &self,
        req: Request<pb::UpdateDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let developer = body.developer.unwrap_or_default();
        let updated =
            standard::update::<Developers>(&self.state, &ctx, developer, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_developer(
        &self,
        req: Request<pb::DeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Developers>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_developer(
        &self,
        req: Request<pb::UndeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Developers>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }
}
