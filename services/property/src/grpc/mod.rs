//! The gRPC surface of property: one module per service and the method policy. Each
//! handler parses its request, calls the kit (`fusion_service::standard`), the domain
//! and the store, and converts the result; proto types stop here, SQL never starts here.

mod developers;
mod features;
mod lifecycle;
mod lots;
mod media;
mod projects;
mod rpc;
mod stages;

use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_proto::property::v1::{
    developer_service_server::DeveloperServiceServer, feature_service_server::FeatureServiceServer,
    lot_service_server::LotServiceServer, media_service_server::MediaServiceServer,
    project_service_server::ProjectServiceServer, stage_service_server::StageServiceServer,
};
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::AppState;

/// Every property service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(fusion_service::limited!(DeveloperServiceServer::new(
        developers::DeveloperApi::new(state.clone(),)
    )))
    .add_service(fusion_service::limited!(ProjectServiceServer::new(
        projects::ProjectApi::new(state.clone(),)
    )))
    .add_service(fusion_service::limited!(StageServiceServer::new(
        stages::StageApi::new(state.clone(),)
    )))
    .add_service(fusion_service::limited!(LotServiceServer::new(
        lots::LotApi::new(state.clone())
    )))
    .add_service(fusion_service::limited!(FeatureServiceServer::new(
        features::FeatureApi::new(state.clone(),)
    )))
    .add_service(fusion_service::limited!(MediaServiceServer::new(
        media::MediaApi::new(state.clone())
    )))
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
                "MarkLotUnconditional",
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
