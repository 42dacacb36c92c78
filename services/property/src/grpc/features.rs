//! `fusion.property.v1.FeatureService`: the tenant's catalogue of lot features.
//!
//! Lots keep the names of their live features in `lots.features` so a filter on them is
//! an indexed containment test; every change to which names are live (rename, delete,
//! undelete) refreshes those copies in the same transaction.

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::idempotency;
use fusion_db::list::{ListParams, ListSpec};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::feature_service_server::FeatureService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};

use super::{
    API, REQUEST_IDS, Table, Val, Values, caller, insert_row, list_page, purge_ts, update_row,
    values_of,
};
use crate::domain::validate;
use crate::stock::refresh_feature_names;
use crate::{AppState, DOMAIN};

const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.features",
    select: "id, tenant_id, name, category, description, version, created_at, updated_at, deleted_at",
    what: "feature",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("category", "category", FieldKind::Text),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "category", "create_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

const MUTABLE: &[&str] = &["name", "category", "description"];

#[derive(sqlx::FromRow)]
struct FeatureRow {
    id: i64,
    tenant_id: i64,
    name: String,
    category: Option<String>,
    description: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(FeatureRow);

impl FeatureRow {
    fn into_pb(self, state: &AppState) -> pb::Feature {
        pb::Feature {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            category: self.category.unwrap_or_default(),
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
fn values(f: &pb::Feature, fields: &[&str]) -> Result<Values, Status> {
    values_of("feature", fields, |field| {
        Ok(Some(match field {
            "name" => {
                validate::name(&f.name)?;
                ("name", Val::text(&f.name))
            }
            "category" => {
                validate::max_len(&f.category, 100)?;
                ("category", Val::text(&f.category))
            }
            "description" => ("description", Val::text(&f.description)),
            _ => return Ok(None),
        }))
    })
}

/// The FeatureService implementation.
#[derive(Clone, Debug)]
pub(crate) struct FeatureApi {
    state: AppState,
}

impl FeatureApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl FeatureService for FeatureApi {
    async fn create_feature(
        &self,
        req: Request<pb::CreateFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let f = body.feature.unwrap_or_default();
        let values = values(&f, MUTABLE)?;
        const METHOD: &str = "CreateFeature";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let id = insert_row(&mut tx, TABLE.name, values).await?;
        let created = TABLE
            .fetch::<FeatureRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_feature(
        &self,
        req: Request<pb::GetFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        let ctx = caller(&req)?;
        let row: FeatureRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn list_features(
        &self,
        req: Request<pb::ListFeaturesRequest>,
    ) -> Result<Response<pb::ListFeaturesResponse>, Status> {
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
            list_page::<FeatureRow>(&self.state, ctx.tenant_id, &LIST, &params, None).await?;
        Ok(Response::new(pb::ListFeaturesResponse {
            features: page
                .items
                .into_iter()
                .map(|f| f.into_pb(&self.state))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_feature(
        &self,
        req: Request<pb::UpdateFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let f = body.feature.unwrap_or_default();
        API.require_id("feature.id", f.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            &[],
            &populated(&[
                ("name", !f.name.is_empty()),
                ("category", !f.category.is_empty()),
                ("description", !f.description.is_empty()),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|m| mask.has(m)).collect();
        let values = values(&f, &changing)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: FeatureRow = TABLE.fetch(&mut tx, f.id, false, true).await?;
        API.check_etag(&f.etag, current.version)?;
        update_row(&mut tx, TABLE.name, f.id, values).await?;
        let row: FeatureRow = TABLE.fetch(&mut tx, f.id, false, false).await?;
        if row.name != current.name {
            refresh_feature_names(&mut tx, f.id).await?;
        }
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_feature(
        &self,
        req: Request<pb::DeleteFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: FeatureRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        refresh_feature_names(&mut tx, r.id).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_feature(
        &self,
        req: Request<pb::UndeleteFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        // A live feature with the same name makes this ALREADY_EXISTS (unique index).
        let row: FeatureRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        refresh_feature_names(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }
}
