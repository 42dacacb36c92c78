//! `fusion.property.v1.FeatureService`: the tenant's catalogue of lot features.
//!
//! Lots keep the names of their live features in `lots.features` so a filter on them is
//! an indexed containment test; every change to which names are live (rename, delete,
//! undelete) refreshes those copies in the same transaction.

use tonic::{Request, Response, Status};

use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::feature_service_server::FeatureService;
use fusion_service::api::{etag, opt_ts, populated, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{Call, Change, Kit, Method, Resource};

use super::rpc;
use crate::domain::validate;
use crate::stock::refresh_feature_names;
use crate::store::features::{FeatureRow, LIST, TABLE};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &["name", "category", "description"];

/// Features on the standard methods: lots keep copies of their live features' names,
/// refreshed whenever a name comes, goes or changes.
struct Features;

impl Resource for Features {
    type Row = FeatureRow;
    type Pb = pb::Feature;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Feature";
    const FIELD: &'static str = "feature";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: FeatureRow) -> pb::Feature {
        pb::Feature {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            category: r.category.unwrap_or_default(),
            description: r.description.unwrap_or_default(),
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(f: &pb::Feature) -> i64 {
        f.id
    }

    fn etag(f: &pb::Feature) -> &str {
        &f.etag
    }

    fn populated(f: &pb::Feature) -> Vec<&'static str> {
        populated(&[
            ("name", !f.name.is_empty()),
            ("category", !f.category.is_empty()),
            ("description", !f.description.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        f: &pb::Feature,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        values_of(DOMAIN, "feature", fields, |field| {
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
        .map_err(Into::into)
    }

    /// A live feature with the same name makes an undelete ALREADY_EXISTS (unique
    /// index); a rename, delete or undelete changes which names lots show.
    async fn after_write(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, FeatureRow>,
        f: &FeatureRow,
    ) -> Result<(), crate::error::PropertyError> {
        match change {
            Change::Created => Ok(()),
            Change::Updated(before) if before.name == f.name => Ok(()),
            Change::Updated(_) | Change::Deleted | Change::Undeleted => {
                Ok(refresh_feature_names(tx, f.id).await?)
            }
        }
    }
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
        rpc::create::<Features, _>(&self.state, req, |r| &r.request_id, |r| r.feature).await
    }

    async fn get_feature(
        &self,
        req: Request<pb::GetFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        rpc::get::<Features, _>(&self.state, req, |r| r.id).await
    }

    async fn list_features(
        &self,
        req: Request<pb::ListFeaturesRequest>,
    ) -> Result<Response<pb::ListFeaturesResponse>, Status> {
        rpc::list::<Features, _, _>(&self.state, req).await
    }

    async fn update_feature(
        &self,
        req: Request<pb::UpdateFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        rpc::update::<Features, _>(&self.state, req, |r| (r.feature, r.update_mask)).await
    }

    async fn delete_feature(
        &self,
        req: Request<pb::DeleteFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        rpc::delete::<Features, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_feature(
        &self,
        req: Request<pb::UndeleteFeatureRequest>,
    ) -> Result<Response<pb::Feature>, Status> {
        rpc::undelete::<Features, _>(&self.state, req, |r| r.id).await
    }
}
