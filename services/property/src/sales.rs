//! Selling a lot to a won deal: property's consumer of `crm.deal.won`
//! (`property-lot-sales`). The deal's lot moves to exchanged for that deal, from
//! available, hold or reserved, and its status history names the deal. The consumer
//! runs in the event's tenant (`fusion-events` binds it), so a deal can only ever sell
//! its own tenant's lot.

use fusion_db::TenantTx;
use fusion_db::resource::Read;
use fusion_events::{Delivery, Handler};
use fusion_proto::crm::v1::DealWon;

use crate::domain::lifecycle::LotStatus;
use crate::error::PropertyError;
use crate::stock::{self, StatusChange};
use crate::store::lots::{LotRow, TABLE, project_of, set_deal, set_status};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "property-lot-sales";

/// The events it receives.
pub const EVENTS: &[&str] = &["crm.deal.won"];

/// What a won deal did to its lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sale {
    /// The lot is now exchanged for the deal.
    Sold,
    /// It already was (a replay).
    AlreadySold,
    /// The deal names no lot, or one that is gone.
    NoLot,
    /// The lot cannot be sold to this deal: it is `status`, for `deal_id` if any.
    Refused {
        /// The lot's status.
        status: LotStatus,
        /// The deal it was sold to, if it was.
        deal_id: Option<i64>,
    },
}

/// Handles `crm.deal.won`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LotSales;

impl Handler for LotSales {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won: DealWon = event.payload()?;
        match sell(tx, won.lot_id, won.deal_id, event.actor_id()).await? {
            Sale::Refused { status, deal_id } => {
                // The flow that tells crm (`property.lot.sale_refused`) comes next.
                tracing::warn!(lot_id = won.lot_id, deal_id = won.deal_id, %status,
                    sold_to = ?deal_id, "a won deal's lot cannot be sold to it");
            }
            sale => tracing::info!(
                lot_id = won.lot_id,
                deal_id = won.deal_id,
                ?sale,
                "won deal applied to its lot"
            ),
        }
        Ok(())
    }
}

/// Moves lot `lot_id` to exchanged for deal `deal_id`, with the project and lot locked
/// as every transition does; the status history names `actor_id` (the consumer's
/// service account) as who did it.
pub async fn sell(
    tx: &mut TenantTx,
    lot_id: i64,
    deal_id: i64,
    actor_id: Option<i64>,
) -> Result<Sale, PropertyError> {
    if lot_id <= 0 {
        return Ok(Sale::NoLot);
    }
    let project_id = match project_of(tx, lot_id).await {
        Ok(project_id) => project_id,
        Err(PropertyError::NotFound { .. }) => return Ok(Sale::NoLot),
        Err(e) => return Err(e),
    };
    stock::lock_project(tx, project_id).await?;
    let lot: LotRow = TABLE.fetch(tx, lot_id, Read::live().for_update()).await?;
    let mut from = lot.status();
    if stock::release_if_lapsed(tx, &lot, None).await? {
        from = LotStatus::Available;
    }
    match from {
        LotStatus::Available | LotStatus::Hold | LotStatus::Reserved => {}
        LotStatus::Exchanged | LotStatus::Unconditional | LotStatus::Settled
            if lot.deal_id == Some(deal_id) =>
        {
            return Ok(Sale::AlreadySold);
        }
        status => {
            return Ok(Sale::Refused {
                status,
                deal_id: lot.deal_id,
            });
        }
    }
    // The buyer pays the price the lot had when it was reserved, else its list price.
    let price = lot.reserved_price.or(lot.price);
    set_status(tx, lot_id, LotStatus::Exchanged, None, price).await?;
    set_deal(tx, lot_id, Some(deal_id)).await?;
    let reason = format!("deal {deal_id} won");
    stock::record_status(
        tx,
        &lot.reference(),
        StatusChange {
            from: Some(from.as_str()),
            to: LotStatus::Exchanged.as_str(),
            reason: Some(&reason),
            deposit: None,
            actor_user_id: actor_id,
            deal_id: Some(deal_id),
        },
    )
    .await?;
    stock::refresh_figures(tx, project_id).await?;
    Ok(Sale::Sold)
}
