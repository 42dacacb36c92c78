//! `fusion.property.v1.DeveloperService`: the builders a tenant's projects belong to.

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::idempotency;
use fusion_db::list::{ListParams, ListSpec};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::developer_service_server::DeveloperService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};

use super::{
    API, REQUEST_IDS, Table, Val, Values, caller, insert_row, list_page, purge_ts, update_row,
    values_of,
};
use crate::domain::validate;
use crate::{AppState, DOMAIN};

const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.developers",
    select: "id, tenant_id, name, slug, website, email, phone, description, version, created_at, updated_at, deleted_at",
    what: "developer",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("slug", "slug", FieldKind::Text),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "create_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

const MUTABLE: &[&str] = &["name", "slug", "website", "email", "phone", "description"];

#[derive(sqlx::FromRow)]
struct DeveloperRow {
    id: i64,
    tenant_id: i64,
    name: String,
    slug: String,
    website: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    description: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(DeveloperRow);

impl DeveloperRow {
    fn into_pb(self, state: &AppState) -> pb::Developer {
        pb::Developer {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            slug: self.slug,
            website: self.website.unwrap_or_default(),
            email: self.email.unwrap_or_default(),
            phone: self.phone.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: etag(self.version),
        }
    }
}

/// The column values of the fields in `fields`, validated.
fn values(d: &pb::Developer, fields: &[&str]) -> Result<Values, Status> {
    values_of("developer", fields, |field| {
        Ok(Some(match field {
            "name" => {
                validate::name(&d.name)?;
                ("name", Val::text(&d.name))
            }
            "slug" => {
                validate::slug(&d.slug)?;
                ("slug", Val::text(&d.slug))
            }
            "website" => {
                validate::url(&d.website)?;
                ("website", Val::text(&d.website))
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
        let d = body.developer.unwrap_or_default();
        let values = values(&d, MUTABLE)?;
        let request_id = idempotency::parse_request_id(DOMAIN, &body.request_id)?;
        const METHOD: &str = "CreateDeveloper";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let id = insert_row(&mut tx, TABLE.name, values).await?;
        let created = TABLE
            .fetch::<DeveloperRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_developer(
        &self,
        req: Request<pb::GetDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let row: DeveloperRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
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
        let page =
            list_page::<DeveloperRow>(&self.state, ctx.tenant_id, &LIST, &params, None).await?;
        Ok(Response::new(pb::ListDevelopersResponse {
            developers: page
                .items
                .into_iter()
                .map(|d| d.into_pb(&self.state))
                .collect(),
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
        let d = body.developer.unwrap_or_default();
        API.require_id("developer.id", d.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            &[],
            &populated(&[
                ("name", !d.name.is_empty()),
                ("slug", !d.slug.is_empty()),
                ("website", !d.website.is_empty()),
                ("email", !d.email.is_empty()),
                ("phone", !d.phone.is_empty()),
                ("description", !d.description.is_empty()),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let values = values(&d, &changing)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: DeveloperRow = TABLE.fetch(&mut tx, d.id, false, true).await?;
        API.check_etag(&d.etag, current.version)?;
        update_row(&mut tx, TABLE.name, d.id, values).await?;
        let row: DeveloperRow = TABLE.fetch(&mut tx, d.id, false, false).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_developer(
        &self,
        req: Request<pb::DeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        API.require_id("id", r.id)?;
        // Lock first, so a project created at the same moment is either seen here or
        // finds the developer gone.
        TABLE
            .fetch::<DeveloperRow>(&mut tx, r.id, false, true)
            .await?;
        TABLE
            .refuse_live_children(
                &mut tx,
                r.id,
                "property.projects",
                "developer_id",
                "projects",
            )
            .await?;
        let row: DeveloperRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_developer(
        &self,
        req: Request<pb::UndeleteDeveloperRequest>,
    ) -> Result<Response<pb::Developer>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: DeveloperRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }
}
