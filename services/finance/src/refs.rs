//! References to other contexts — the crm deals and contacts invoices and commissions
//! are for, the identity users commissions are paid to, the property projects plans
//! are for — checked with the owning service, as the caller.
//!
//! The calls go through the client twin of the tenancy layer, which forwards the
//! caller's token and tenant, so the owner answers exactly what the caller may see:
//! another tenant's deal is NOT_FOUND there, and INVALID_ARGUMENT here, naming the
//! field.

use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceBuilder;

use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
};
use fusion_proto::identity::v1 as identity;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_proto::property::v1 as property;
use fusion_proto::property::v1::{
    lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
};
use fusion_tenancy::{ForwardContext, ForwardContextLayer};

use crate::error::FinanceError;

type Forwarding = ForwardContext<Channel>;

/// Clients of the services finance records point into.
#[derive(Clone, Debug)]
pub struct Refs {
    identity: Forwarding,
    crm: Forwarding,
    property: Forwarding,
}

impl Refs {
    /// Clients over channels to identity, crm and property.
    pub fn new(identity: Channel, crm: Channel, property: Channel) -> Self {
        let forward = |channel| {
            ServiceBuilder::new()
                .layer(ForwardContextLayer)
                .service(channel)
        };
        Self {
            identity: forward(identity),
            crm: forward(crm),
            property: forward(property),
        }
    }

    /// The live deal `id` of the caller's tenant, named by `field`.
    pub async fn deal(&self, field: &str, id: i64) -> Result<crm::Deal, FinanceError> {
        let deal = DealServiceClient::new(self.crm.clone())
            .get_deal(crm::GetDealRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "crm", &format!("no deal {id}")))?
            .into_inner();
        // Get returns a soft-deleted deal too (AIP-164); for a reference it is absent.
        if deal.delete_time.is_some() {
            return Err(FinanceError::invalid(
                field,
                format!("no deal {id} in this tenant"),
            ));
        }
        Ok(deal)
    }

    /// The live contact `id` of the caller's tenant, named by `field`.
    pub async fn contact(&self, field: &str, id: i64) -> Result<crm::Contact, FinanceError> {
        let contact = ContactServiceClient::new(self.crm.clone())
            .get_contact(crm::GetContactRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "crm", &format!("no contact {id}")))?
            .into_inner();
        if contact.delete_time.is_some() {
            return Err(FinanceError::invalid(
                field,
                format!("no contact {id} in this tenant"),
            ));
        }
        Ok(contact)
    }

    /// Checks that `id`, named by `field`, is an active user of the caller's tenant.
    pub async fn user(&self, field: &str, id: i64) -> Result<(), FinanceError> {
        let user = UserServiceClient::new(self.identity.clone())
            .get_user(identity::GetUserRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "identity", &format!("no user {id}")))?
            .into_inner();
        if user.delete_time.is_some() {
            return Err(FinanceError::invalid(
                field,
                format!("no user {id} in this tenant"),
            ));
        }
        if user.active {
            Ok(())
        } else {
            Err(FinanceError::invalid(
                field,
                format!("user {id} is not active"),
            ))
        }
    }

    /// Checks that project `id`, named by `field`, is live in the caller's tenant.
    pub async fn project(&self, field: &str, id: i64) -> Result<(), FinanceError> {
        let project = ProjectServiceClient::new(self.property.clone())
            .get_project(property::GetProjectRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "property", &format!("no project {id}")))?
            .into_inner();
        if project.delete_time.is_some() {
            return Err(FinanceError::invalid(
                field,
                format!("no project {id} in this tenant"),
            ));
        }
        Ok(())
    }

    /// The project of lot `id` (a won deal's lot, for the plan that applies to it).
    pub async fn lot_project(&self, field: &str, id: i64) -> Result<i64, FinanceError> {
        let lot = LotServiceClient::new(self.property.clone())
            .get_lot(property::GetLotRequest { id })
            .await
            .map_err(|s| owner_error(s, field, "property", &format!("no lot {id}")))?
            .into_inner();
        Ok(lot.project_id)
    }
}

/// What the owner's answer means for the caller: a missing record is the caller's
/// mistake in `field`; a refusal is passed on; anything else means the owner could
/// not answer.
fn owner_error(status: Status, field: &str, owner: &'static str, missing: &str) -> FinanceError {
    match status.code() {
        Code::NotFound | Code::InvalidArgument => {
            FinanceError::invalid(field, format!("{missing} in this tenant"))
        }
        Code::PermissionDenied | Code::Unauthenticated => FinanceError::OwnerRefused(status),
        _ => {
            tracing::warn!(owner, code = ?status.code(), message = status.message(), "reference check failed");
            FinanceError::OwnerUnavailable {
                owner,
                field: field.to_owned(),
            }
        }
    }
}
