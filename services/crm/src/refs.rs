//! References to other contexts — the users leads, deals and tasks are assigned to
//! (identity), the lots deals are for and the projects, stages and lots notes and
//! tasks are about (property) — checked with the owning service, as the caller.
//!
//! The calls go through the client twin of the tenancy layer, which forwards the
//! caller's token and tenant, so the owner answers exactly what the caller may see:
//! another tenant's user or lot is NOT_FOUND there, and INVALID_ARGUMENT here, naming
//! the field.

use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceBuilder;

use fusion_proto::identity::v1 as identity;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_proto::property::v1 as property;
use fusion_proto::property::v1::{
    lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
    stage_service_client::StageServiceClient,
};
use fusion_tenancy::{ForwardContext, ForwardContextLayer};

use crate::error::CrmError;

type Forwarding = ForwardContext<Channel>;

/// Clients of the services CRM records point into.
#[derive(Clone, Debug)]
pub struct Refs {
    identity: Forwarding,
    property: Forwarding,
}

/// The kinds of record notes and tasks may be about, and who owns each.
pub const SUBJECTS: &[&str] = &["lead", "contact", "deal", "project", "stage", "lot"];

impl Refs {
    /// Clients over channels to identity and property.
    pub fn new(identity: Channel, property: Channel) -> Self {
        let forward = |channel| {
            ServiceBuilder::new()
                .layer(ForwardContextLayer)
                .service(channel)
        };
        Self {
            identity: forward(identity),
            property: forward(property),
        }
    }

    /// Checks that `id`, named by `field`, is an active user of the caller's tenant.
    pub async fn user(&self, field: &str, id: i64) -> Result<(), CrmError> {
        let user = UserServiceClient::new(self.identity.clone())
            .get_user(identity::GetUserRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "identity", &format!("no user {id}")))?
            .into_inner();
        // Get returns a soft-deleted user too (AIP-164); for a reference it is absent.
        if user.delete_time.is_some() {
            return Err(CrmError::invalid(
                field,
                format!("no user {id} in this tenant"),
            ));
        }
        if user.active {
            Ok(())
        } else {
            Err(CrmError::invalid(field, format!("user {id} is not active")))
        }
    }

    /// Checks that the property record `kind` (project, stage or lot) `id`, named by
    /// `field`, is live in the caller's tenant.
    pub async fn property(&self, field: &str, kind: &str, id: i64) -> Result<(), CrmError> {
        let missing = format!("no {kind} {id}");
        // Whether the record is soft-deleted: Get returns it all the same (AIP-164),
        // but a deleted record cannot be referred to.
        let result = match kind {
            "project" => ProjectServiceClient::new(self.property.clone())
                .get_project(property::GetProjectRequest { id })
                .await
                .map(|r| r.into_inner().delete_time.is_some()),
            "stage" => StageServiceClient::new(self.property.clone())
                .get_stage(property::GetStageRequest { id })
                .await
                .map(|r| r.into_inner().delete_time.is_some()),
            "lot" => LotServiceClient::new(self.property.clone())
                .get_lot(property::GetLotRequest { id })
                .await
                .map(|r| r.into_inner().delete_time.is_some()),
            other => {
                return Err(CrmError::invalid(
                    field,
                    format!("{other} is not a property record"),
                ));
            }
        };
        match result {
            Ok(false) => Ok(()),
            Ok(true) => Err(CrmError::invalid(
                field,
                format!("{missing} in this tenant"),
            )),
            Err(status) => Err(owner_error(status, field, "property", &missing)),
        }
    }
}

/// What the owner's answer means for the caller: a missing record is the caller's
/// mistake in `field`; a refusal is passed on; anything else means the owner could
/// not answer.
fn owner_error(status: Status, field: &str, owner: &'static str, missing: &str) -> CrmError {
    match status.code() {
        Code::NotFound | Code::InvalidArgument => {
            CrmError::invalid(field, format!("{missing} in this tenant"))
        }
        Code::PermissionDenied | Code::Unauthenticated => CrmError::OwnerRefused(status),
        _ => {
            tracing::warn!(owner, code = ?status.code(), message = status.message(), "reference check failed");
            CrmError::OwnerUnavailable {
                owner,
                field: field.to_owned(),
            }
        }
    }
}
