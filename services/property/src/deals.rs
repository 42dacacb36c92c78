//! The crm deals a hold or reservation is for (`HoldLot` / `ReserveLot` `deal_id`),
//! checked with crm as the caller, as crm checks the lots its deals are for with
//! property.
//!
//! The call goes through the client twin of the tenancy layer, which forwards the
//! caller's token and tenant, so crm answers exactly what the caller may see: another
//! tenant's deal is NOT_FOUND there and INVALID_ARGUMENT here, naming `deal_id`. It is
//! made before the lot's transaction opens, so no lock waits on crm.

use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceBuilder;

use fusion_proto::crm::v1::GetDealRequest;
use fusion_proto::crm::v1::deal_service_client::DealServiceClient;
use fusion_tenancy::{ForwardContext, ForwardContextLayer};

use crate::error::PropertyError;

/// The request field a deal is named by.
pub const FIELD: &str = "deal_id";

/// How long property waits for crm's answer before calling it unavailable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of crm's DealService that forwards the caller.
#[derive(Clone, Debug)]
pub struct Deals {
    crm: ForwardContext<Channel>,
}

impl Deals {
    /// A client over `crm` (a lazy channel: crm may start after property).
    pub fn new(crm: Channel) -> Self {
        Self {
            crm: ServiceBuilder::new()
                .layer(ForwardContextLayer)
                .service(crm),
        }
    }

    /// Checks that `deal_id` is a deal of the caller's tenant that is open and, if it
    /// names a lot, names lot `lot_id`: INVALID_ARGUMENT naming `deal_id` when it is
    /// absent (or deleted) or for another lot, FAILED_PRECONDITION `DEAL_CLOSED` when it
    /// is won or lost, UNAVAILABLE when crm cannot answer, and crm's own refusal
    /// (PERMISSION_DENIED, UNAUTHENTICATED) passed on.
    pub async fn check_open(&self, deal_id: i64, lot_id: i64) -> Result<(), PropertyError> {
        let mut client = DealServiceClient::new(self.crm.clone());
        let call = client.get_deal(GetDealRequest { id: deal_id });
        let deal = match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(deal)) => deal.into_inner(),
            Ok(Err(status)) => return Err(crm_error(status, deal_id)),
            Err(_) => {
                tracing::warn!(deal_id, "crm did not answer a deal check in time");
                return Err(PropertyError::CrmUnavailable { field: FIELD });
            }
        };
        // Get returns a soft-deleted deal too (AIP-164); for a reference it is absent.
        if deal.delete_time.is_some() {
            return Err(missing(deal_id));
        }
        if deal.status != "open" {
            return Err(PropertyError::DealClosed {
                deal_id,
                status: deal.status,
            });
        }
        if deal.lot_id != 0 && deal.lot_id != lot_id {
            return Err(PropertyError::invalid(
                FIELD,
                format!(
                    "deal {deal_id} is for lot {}, not lot {lot_id}",
                    deal.lot_id
                ),
            ));
        }
        Ok(())
    }
}

fn missing(deal_id: i64) -> PropertyError {
    PropertyError::invalid(FIELD, format!("no deal {deal_id} in this tenant"))
}

/// What crm's answer means for the caller: a missing deal is the caller's mistake in
/// `deal_id`; a refusal is passed on; anything else means crm could not answer.
fn crm_error(status: Status, deal_id: i64) -> PropertyError {
    match status.code() {
        Code::NotFound | Code::InvalidArgument => missing(deal_id),
        Code::PermissionDenied | Code::Unauthenticated => PropertyError::CrmRefused(status),
        _ => {
            tracing::warn!(code = ?status.code(), message = status.message(), deal_id,
                "deal check failed");
            PropertyError::CrmUnavailable { field: FIELD }
        }
    }
}
