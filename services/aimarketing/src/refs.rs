//! Records of other contexts — crm's leads, contacts and deals, property's lots and
//! projects, identity's users — read from their owner, as the caller.
//!
//! The calls go through the client twin of the tenancy layer, which forwards the
//! caller's token and tenant, so the owner answers exactly what the caller may see:
//! another tenant's lead is NOT_FOUND there. What a read found is a [`Seen`]: the
//! record, or why the caller does not get it; each use decides what that means (a
//! prompt renders without the fields, a campaign refuses the lead id).

use tonic::transport::Channel;
use tonic::{Code, Response, Status};
use tower::ServiceBuilder;

use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
    lead_service_client::LeadServiceClient, note_service_client::NoteServiceClient,
};
use fusion_proto::identity::v1 as identity;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_proto::property::v1 as property;
use fusion_proto::property::v1::{
    lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
};
use fusion_tenancy::{ForwardContext, ForwardContextLayer};

use crate::error::AiMarketingError;

type Forwarding = ForwardContext<Channel>;

/// What a read of another context's record found.
#[derive(Debug)]
pub enum Seen<T> {
    /// The live record.
    Visible(T),
    /// The caller may not read it (the owner's PERMISSION_DENIED).
    Refused(Status),
    /// No such live record in the caller's tenant.
    Missing,
}

impl<T> Seen<T> {
    /// The record, if the caller sees it.
    pub fn visible(self) -> Option<T> {
        match self {
            Seen::Visible(record) => Some(record),
            Seen::Refused(_) | Seen::Missing => None,
        }
    }

    /// The record named by request field `field`: missing is the caller's mistake in
    /// that field (INVALID_ARGUMENT), a refusal is passed on.
    pub fn required(self, field: &str, what: &str, id: i64) -> Result<T, AiMarketingError> {
        match self {
            Seen::Visible(record) => Ok(record),
            Seen::Refused(status) => Err(AiMarketingError::OwnerRefused(status)),
            Seen::Missing => Err(AiMarketingError::invalid(
                field,
                format!("no {what} {id} in this tenant"),
            )),
        }
    }
}

/// A record that may be soft-deleted (AIP-164: Get returns it with `delete_time`).
trait Deletable {
    fn deleted(&self) -> bool;
}

macro_rules! deletable {
    ($($t:ty),+) => {$(
        impl Deletable for $t {
            fn deleted(&self) -> bool {
                self.delete_time.is_some()
            }
        }
    )+};
}

deletable!(
    crm::Lead,
    crm::Contact,
    crm::Deal,
    property::Lot,
    property::Project,
    identity::User
);

/// What an owner's answer to a Get means for the caller.
fn seen<T: Deletable>(
    answer: Result<Response<T>, Status>,
    owner: &'static str,
    field: &str,
) -> Result<Seen<T>, AiMarketingError> {
    match answer {
        Ok(record) => {
            let record = record.into_inner();
            Ok(if record.deleted() {
                Seen::Missing
            } else {
                Seen::Visible(record)
            })
        }
        Err(status) => match status.code() {
            Code::NotFound | Code::InvalidArgument => Ok(Seen::Missing),
            Code::PermissionDenied => Ok(Seen::Refused(status)),
            Code::Unauthenticated => Err(AiMarketingError::OwnerRefused(status)),
            _ => Err(unavailable(&status, owner, field)),
        },
    }
}

fn unavailable(status: &Status, owner: &'static str, field: &str) -> AiMarketingError {
    tracing::warn!(owner, code = ?status.code(), message = status.message(), "read from another context failed");
    AiMarketingError::OwnerUnavailable {
        owner,
        field: field.to_owned(),
    }
}

/// Clients of the services ai-marketing reads from.
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

    /// Crm lead `id`, read for request field `field`.
    pub async fn lead(&self, field: &str, id: i64) -> Result<Seen<crm::Lead>, AiMarketingError> {
        let answer = LeadServiceClient::new(self.crm.clone())
            .get_lead(crm::GetLeadRequest { id })
            .await;
        seen(answer, "crm", field)
    }

    /// Crm contact `id`, read for request field `field`.
    pub async fn contact(
        &self,
        field: &str,
        id: i64,
    ) -> Result<Seen<crm::Contact>, AiMarketingError> {
        let answer = ContactServiceClient::new(self.crm.clone())
            .get_contact(crm::GetContactRequest { id })
            .await;
        seen(answer, "crm", field)
    }

    /// Crm deal `id`, read for request field `field`.
    pub async fn deal(&self, field: &str, id: i64) -> Result<Seen<crm::Deal>, AiMarketingError> {
        let answer = DealServiceClient::new(self.crm.clone())
            .get_deal(crm::GetDealRequest { id })
            .await;
        seen(answer, "crm", field)
    }

    /// Property lot `id`, read for request field `field`.
    pub async fn lot(&self, field: &str, id: i64) -> Result<Seen<property::Lot>, AiMarketingError> {
        let answer = LotServiceClient::new(self.property.clone())
            .get_lot(property::GetLotRequest { id })
            .await;
        seen(answer, "property", field)
    }

    /// Property project `id`, read for request field `field`.
    pub async fn project(
        &self,
        field: &str,
        id: i64,
    ) -> Result<Seen<property::Project>, AiMarketingError> {
        let answer = ProjectServiceClient::new(self.property.clone())
            .get_project(property::GetProjectRequest { id })
            .await;
        seen(answer, "property", field)
    }

    /// Identity user `id`, read for request field `field`.
    pub async fn user(
        &self,
        field: &str,
        id: i64,
    ) -> Result<Seen<identity::User>, AiMarketingError> {
        let answer = UserServiceClient::new(self.identity.clone())
            .get_user(identity::GetUserRequest { id })
            .await;
        seen(answer, "identity", field)
    }

    /// The latest `count` notes on lead `id` the caller may read (pinned first, then
    /// newest first); none when crm refuses the caller its notes.
    pub async fn lead_notes(
        &self,
        id: i64,
        count: i32,
    ) -> Result<Vec<crm::Note>, AiMarketingError> {
        let answer = NoteServiceClient::new(self.crm.clone())
            .list_notes(crm::ListNotesRequest {
                page_size: count,
                notable_type: "lead".to_owned(),
                notable_id: id,
                ..Default::default()
            })
            .await;
        match answer {
            Ok(page) => Ok(page.into_inner().notes),
            Err(status) if status.code() == Code::PermissionDenied => Ok(Vec::new()),
            Err(status) if status.code() == Code::Unauthenticated => {
                Err(AiMarketingError::OwnerRefused(status))
            }
            Err(status) => Err(unavailable(&status, "crm", "lead_id")),
        }
    }

    /// One page of the live lots property's ListLots returns to the caller for
    /// `filter`, of project `project_id` (0: every project), oldest first (creation
    /// time never changes, so the pages neither skip nor repeat a lot that changes
    /// meanwhile).
    /// Property's refusal is passed on; anything else it answers is its failure.
    pub async fn lot_page(
        &self,
        field: &str,
        filter: &str,
        project_id: i64,
        page_size: i32,
        page_token: String,
    ) -> Result<property::ListLotsResponse, AiMarketingError> {
        let answer = LotServiceClient::new(self.property.clone())
            .list_lots(property::ListLotsRequest {
                page_size,
                page_token,
                filter: filter.to_owned(),
                order_by: "create_time".to_owned(),
                show_deleted: false,
                project_id,
                stage_id: 0,
            })
            .await;
        match answer {
            Ok(page) => Ok(page.into_inner()),
            Err(status) => Err(match status.code() {
                Code::PermissionDenied | Code::Unauthenticated => {
                    AiMarketingError::OwnerRefused(status)
                }
                _ => unavailable(&status, "property", field),
            }),
        }
    }

    /// One page of the live leads crm's ListLeads returns to the caller for `filter`
    /// (oldest first, so leads created meanwhile come last rather than shifting pages).
    /// crm's refusal of the filter is the caller's mistake in `field`.
    pub async fn lead_page(
        &self,
        field: &str,
        filter: &str,
        page_size: i32,
        page_token: String,
    ) -> Result<crm::ListLeadsResponse, AiMarketingError> {
        let answer = LeadServiceClient::new(self.crm.clone())
            .list_leads(crm::ListLeadsRequest {
                page_size,
                page_token,
                filter: filter.to_owned(),
                order_by: "create_time".to_owned(),
                show_deleted: false,
            })
            .await;
        match answer {
            Ok(page) => Ok(page.into_inner()),
            Err(status) => Err(match status.code() {
                Code::InvalidArgument => {
                    // crm names what is wrong with the filter; pass its words on under
                    // this request's field.
                    let why = tonic_types::StatusExt::get_details_bad_request(&status)
                        .and_then(|b| b.field_violations.into_iter().next())
                        .map_or_else(|| status.message().to_owned(), |v| v.description);
                    AiMarketingError::invalid(field, why)
                }
                Code::PermissionDenied | Code::Unauthenticated => {
                    AiMarketingError::OwnerRefused(status)
                }
                _ => unavailable(&status, "crm", field),
            }),
        }
    }
}
