//! The gRPC surface of property: one module per service, the method policy, and the
//! flows every resource shares (get, soft delete, undelete, idempotent create). Proto
//! types stop here.

mod developers;
mod features;
mod lifecycle;
mod lots;
mod media;
mod projects;
mod stages;

use sqlx::PgConnection;

use fusion_db::resource;
pub(crate) use fusion_db::resource::{Table, Val, Values};
use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_db::{TenantTx, idempotency};
use fusion_proto::property::v1::{
    developer_service_server::DeveloperServiceServer, feature_service_server::FeatureServiceServer,
    lot_service_server::LotServiceServer, media_service_server::MediaServiceServer,
    project_service_server::ProjectServiceServer, stage_service_server::StageServiceServer,
};
use fusion_service::api::Api;
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::{AppState, DOMAIN};

pub(crate) use lifecycle::release_if_lapsed;
pub(crate) use lots::LotRow;
pub(crate) use media::refuse_live_media;

/// Where lots live, for the housekeeping job.
pub(crate) fn lot_table() -> Table {
    lots::TABLE
}

/// Errors and checks in this context's domain.
pub(crate) const API: Api = Api::new(DOMAIN);

const IDEMPOTENCY_TABLE: &str = "property.idempotency_keys";

/// Every property service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(DeveloperServiceServer::new(developers::DeveloperApi::new(
        state.clone(),
    )))
    .add_service(ProjectServiceServer::new(projects::ProjectApi::new(
        state.clone(),
    )))
    .add_service(StageServiceServer::new(stages::StageApi::new(
        state.clone(),
    )))
    .add_service(LotServiceServer::new(lots::LotApi::new(state.clone())))
    .add_service(FeatureServiceServer::new(features::FeatureApi::new(
        state.clone(),
    )))
    .add_service(MediaServiceServer::new(media::MediaApi::new(state.clone())))
}

/// The permission every property RPC needs; the one place to read it. Reads need
/// `property.<resource>.read`; every other method (including the lot lifecycle) needs
/// `property.<resource>.write`.
pub fn policy() -> MethodPolicy {
    const STANDARD_READS: &[&str] = &["Get", "List"];
    let services: &[(&str, &str, &str, &[&str])] = &[
        ("DeveloperService", "developers", "Developer", &[]),
        ("ProjectService", "projects", "Project", &[]),
        ("StageService", "stages", "Stage", &[]),
        ("FeatureService", "features", "Feature", &[]),
        (
            "LotService",
            "lots",
            "Lot",
            &[
                "HoldLot",
                "ReleaseLot",
                "ReserveLot",
                "ExchangeLot",
                "MarkUnconditional",
                "SettleLot",
                "WithdrawLot",
                "RevertLot",
                "SetLotPrice",
            ],
        ),
        ("MediaService", "media", "Media", &["UploadMedia"]),
    ];
    let mut policy = MethodPolicy::new();
    for (service, resource, singular, custom_writes) in services {
        let path = |m: &str| format!("/fusion.property.v1.{service}/{m}");
        let read = format!("property.{resource}.read");
        let write = format!("property.{resource}.write");
        for verb in STANDARD_READS {
            let method = match (*verb, *singular) {
                ("List", "Media") => "ListMedia".to_owned(),
                ("List", s) => format!("List{s}s"),
                (v, s) => format!("{v}{s}"),
            };
            policy = policy.require(&path(&method), &read);
        }
        for verb in ["Update", "Delete", "Undelete"] {
            policy = policy.require(&path(&format!("{verb}{singular}")), &write);
        }
        if *singular != "Media" {
            policy = policy.require(&path(&format!("Create{singular}")), &write);
        }
        for method in *custom_writes {
            policy = policy.require(&path(method), &write);
        }
    }
    let lots = |m: &str| format!("/fusion.property.v1.LotService/{m}");
    for method in [
        "ListLotStatusChanges",
        "ListLotPrices",
        "WatchLotAvailability",
    ] {
        policy = policy.require(&lots(method), "property.lots.read");
    }
    policy.require(
        "/fusion.property.v1.MediaService/DownloadMedia",
        "property.media.read",
    )
}

/// The verified caller.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<TenantContext, Status> {
    TenantContext::from_request(req)
}

/// This context's request ids (AIP-155): `REQUEST_IDS.replay(&mut tx, method, id)`
/// before a write, `REQUEST_IDS.remember(...)` in the same transaction after it.
pub(crate) const REQUEST_IDS: idempotency::RequestIds =
    idempotency::RequestIds::new(DOMAIN, IDEMPOTENCY_TABLE);

/// The AIP-164 purge time of a row deleted at `deleted_at`.
pub(crate) fn purge_ts(
    state: &AppState,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<prost_types::Timestamp> {
    fusion_service::api::purge_ts(deleted_at, state.config.purge_retention)
}

/// Inserts a row of the caller's tenant into `table` and returns its id.
pub(crate) async fn insert_row(
    tx: &mut TenantTx,
    table: &'static str,
    values: Values,
) -> Result<i64, Status> {
    resource::insert(tx, DOMAIN, table, values).await
}

/// Sets `values` on row `id` of `table`, bumping its version (etag).
pub(crate) async fn update_row(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
    values: Values,
) -> Result<(), Status> {
    resource::update(conn, DOMAIN, table, id, values).await
}

/// Converts the fields of a resource named in `fields` into column values with
/// `convert`, collecting a field violation (`<prefix>.<field>`) for each that fails.
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, Status> {
    resource::values_of(DOMAIN, prefix, fields, convert)
}

/// Whether row `id` of `table` is live, key-share locking it for the rest of the
/// transaction (see [`resource::lock_live`]).
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
) -> Result<bool, Status> {
    resource::lock_live(conn, DOMAIN, table, id).await
}
