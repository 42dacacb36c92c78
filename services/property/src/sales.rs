//! Lots and crm's deals: property's consumer `property-lot-sales` of crm's deal events.
//!
//! - `crm.deal.won`: the deal's lot moves to exchanged for that deal, from available,
//!   hold or reserved (a hold or reservation for no deal or for this one), and its
//!   status history names the deal. A lot already sold to another deal, held or
//!   reserved for another, or withdrawn is left alone, and `property.lot.sale_refused`
//!   tells crm, which flags the deal.
//! - `crm.deal.lost`, `crm.deal.reopened`: every lot of the tenant held, reserved or
//!   exchanged for that deal returns to available, for no deal, the history naming
//!   the deal; a lot taken for another deal or for none is never touched, and one
//!   unconditional or settled for the deal stays as it is (logged).
//!
//! One consumer receives the three, so one deal's won → reopened → won apply in the
//! order crm committed them. It runs in the event's tenant (`fusion-events` binds it),
//! so a deal can only ever change its own tenant's lots; its audit fields name the
//! consumer's service account ([`Delivery::actor_id`]).

use fusion_db::TenantTx;
use fusion_db::resource::Read;
use fusion_events::{Delivery, Event, Handler};
use fusion_proto::crm::v1::{DealLost, DealReopened, DealWon};
use fusion_proto::property::v1::LotSaleRefused;

use crate::SCHEMA;
use crate::domain::lifecycle::LotStatus;
use crate::error::PropertyError;
use crate::stock::{self, StatusChange};
use crate::store::lots::{LotRow, TABLE, lots_of_deal, project_of, set_deal, set_status};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "property-lot-sales";

/// A deal was won (`fusion.crm.v1.DealWon`).
pub const DEAL_WON: &str = "crm.deal.won";
/// A deal was lost (`fusion.crm.v1.DealLost`).
pub const DEAL_LOST: &str = "crm.deal.lost";
/// A won or lost deal was moved back to an open stage (`fusion.crm.v1.DealReopened`).
pub const DEAL_REOPENED: &str = "crm.deal.reopened";

/// The events it receives.
pub const EVENTS: &[&str] = &[DEAL_WON, DEAL_LOST, DEAL_REOPENED];

/// What property publishes when a won deal's lot cannot be sold to it
/// (`fusion.property.v1.LotSaleRefused`).
pub const LOT_SALE_REFUSED: &str = "property.lot.sale_refused";

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
        /// The deal it is sold, reserved or held for, if any.
        deal_id: Option<i64>,
    },
}

/// Handles `crm.deal.won`, `crm.deal.lost` and `crm.deal.reopened`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LotSales;

impl Handler for LotSales {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let actor = event.actor_id();
        match event.envelope.event_type.as_str() {
            DEAL_WON => {
                let won: DealWon = event.payload()?;
                let sale = sell(tx, won.lot_id, won.deal_id, actor).await?;
                if let Sale::Refused { status, deal_id } = sale {
                    tracing::warn!(lot_id = won.lot_id, deal_id = won.deal_id, %status,
                        taken_for = ?deal_id, "a won deal's lot cannot be sold to it");
                    refuse(tx, won.lot_id, won.deal_id, status, deal_id).await?;
                } else {
                    tracing::info!(
                        lot_id = won.lot_id,
                        deal_id = won.deal_id,
                        ?sale,
                        "won deal applied to its lot"
                    );
                }
            }
            DEAL_LOST => {
                let lost: DealLost = event.payload()?;
                let reason = format!("deal {} lost", lost.deal_id);
                release_for_deal(tx, lost.deal_id, &reason, actor).await?;
            }
            DEAL_REOPENED => {
                let reopened: DealReopened = event.payload()?;
                let reason = format!("deal {} reopened", reopened.deal_id);
                release_for_deal(tx, reopened.deal_id, &reason, actor).await?;
            }
            // The consumer acknowledges the types it does not list before handling.
            other => anyhow::bail!("{CONSUMER} does not handle {other}"),
        }
        Ok(())
    }
}

/// Appends `property.lot.sale_refused` for deal `deal_id` on lot `lot_id`, which is
/// `status` for `taken_for`, in the consumer's transaction.
async fn refuse(
    tx: &mut TenantTx,
    lot_id: i64,
    deal_id: i64,
    status: LotStatus,
    taken_for: Option<i64>,
) -> Result<(), PropertyError> {
    let refused = LotSaleRefused {
        lot_id,
        deal_id,
        lot_status: status.as_str().to_owned(),
        sold_to_deal_id: taken_for.unwrap_or_default(),
    };
    fusion_events::outbox::append(tx, SCHEMA, Event::new(LOT_SALE_REFUSED, lot_id, &refused))
        .await?;
    Ok(())
}

/// Moves lot `lot_id` to exchanged for deal `deal_id`, with the project and lot locked
/// as every transition does; `actor` is who the status history names.
pub async fn sell(
    tx: &mut TenantTx,
    lot_id: i64,
    deal_id: i64,
    actor: Option<i64>,
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
    let mut taken_for = lot.deal_id;
    if stock::release_if_lapsed(tx, &lot, None).await? {
        from = LotStatus::Available;
        taken_for = None;
    }
    match from {
        LotStatus::Available => {}
        // A hold or reservation for no deal, or for this one, becomes its sale.
        LotStatus::Hold | LotStatus::Reserved if taken_for.is_none_or(|d| d == deal_id) => {}
        LotStatus::Exchanged | LotStatus::Unconditional | LotStatus::Settled
            if taken_for == Some(deal_id) =>
        {
            return Ok(Sale::AlreadySold);
        }
        status => {
            return Ok(Sale::Refused {
                status,
                deal_id: taken_for,
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
            actor_user_id: actor,
            deal_id: Some(deal_id),
        },
    )
    .await?;
    stock::refresh_figures(tx, project_id).await?;
    Ok(Sale::Sold)
}

/// What a lost or reopened deal did to one lot taken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Back to available, from `from`.
    Released {
        /// The lot.
        lot_id: i64,
        /// Its status before.
        from: LotStatus,
    },
    /// Left as it is: it is `status` (unconditional or settled) for the deal.
    Kept {
        /// The lot.
        lot_id: i64,
        /// Its status.
        status: LotStatus,
    },
}

/// Returns every live lot of the transaction's tenant held, reserved or exchanged for
/// deal `deal_id` to available, for no deal (no hold, no reserved price), recording
/// `reason` and the deal in each one's status history; each lot is locked with its
/// project as every transition does. A lot unconditional or settled for the deal is
/// kept (and logged); a lot of another deal or of none is never looked at. Again for
/// the same deal it finds nothing left to release.
pub async fn release_for_deal(
    tx: &mut TenantTx,
    deal_id: i64,
    reason: &str,
    actor: Option<i64>,
) -> Result<Vec<Release>, PropertyError> {
    let mut done = Vec::new();
    if deal_id <= 0 {
        return Ok(done);
    }
    // Ordered by project, so the project locks are taken in one order.
    for (lot_id, project_id) in lots_of_deal(tx, deal_id).await? {
        stock::lock_project(tx, project_id).await?;
        let lot: LotRow = TABLE.fetch(tx, lot_id, Read::live().for_update()).await?;
        // Re-checked under the lock: it may have changed hands since it was found.
        if lot.deal_id != Some(deal_id) {
            continue;
        }
        if stock::release_if_lapsed(tx, &lot, None).await? {
            stock::refresh_figures(tx, project_id).await?;
            done.push(Release::Released {
                lot_id,
                from: LotStatus::Hold,
            });
            continue;
        }
        let from = lot.status();
        match from {
            LotStatus::Hold | LotStatus::Reserved | LotStatus::Exchanged => {}
            status => {
                tracing::warn!(lot_id, deal_id, %status, reason,
                    "the deal's lot is past exchange and stays as it is");
                done.push(Release::Kept { lot_id, status });
                continue;
            }
        }
        // As ReleaseLot leaves it: available, no hold, no reserved price, no deal.
        set_status(tx, lot_id, LotStatus::Available, None, None).await?;
        stock::record_status(
            tx,
            &lot.reference(),
            StatusChange {
                from: Some(from.as_str()),
                to: LotStatus::Available.as_str(),
                reason: Some(reason),
                deposit: None,
                actor_user_id: actor,
                deal_id: Some(deal_id),
            },
        )
        .await?;
        stock::refresh_figures(tx, project_id).await?;
        done.push(Release::Released { lot_id, from });
    }
    Ok(done)
}
