//! Commissions paid when a deal's lot is exchanged, unconditional or settled:
//! finance's consumer of property's `property.lot.status_changed`
//! (`finance-lot-milestones`).
//!
//! A change made for a deal (the event names it) records where the deal's lot now is
//! and makes the deal's pending commissions whose milestone that reaches payable.
//! Milestones are ordered won < exchanged < unconditional < settled, so a lot settled
//! straight away makes the exchanged and unconditional parts payable too. A lot moving
//! back (released, say) clears the record but leaves what is payable payable.
//!
//! The record (`finance.deal_milestones`) is there because this event may be applied
//! before the deal's `crm.deal.won` (they come from different contexts, on different
//! consumers): the win then reads it and makes those parts payable at once. A change
//! for no deal concerns no commission. The consumer runs in the event's tenant, with
//! the inbox row that makes a redelivery a no-op in the same transaction.

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};
use fusion_proto::property::v1::LotStatusChanged;

use crate::domain::commission::Milestone;
use crate::error::FinanceError;
use crate::store::commissions::reach_milestone;

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "finance-lot-milestones";

/// The events it receives.
pub const EVENTS: &[&str] = &["property.lot.status_changed"];

/// Handles `property.lot.status_changed`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LotMilestones;

impl Handler for LotMilestones {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let change: LotStatusChanged = event.payload()?;
        anyhow::ensure!(change.lot_id > 0, "lot_id must be a positive id");
        anyhow::ensure!(
            change.deal_id >= 0,
            "deal_id must be a positive id, or 0 for none"
        );
        anyhow::ensure!(
            !change.to_status.is_empty() && change.to_status.len() <= 50,
            "to_status must be a status name of at most 50 characters"
        );
        if change.deal_id == 0 {
            return Ok(());
        }
        let milestone = Milestone::of_lot_status(&change.to_status);
        let payable = reach_milestone(tx, change.deal_id, milestone)
            .await
            .map_err(FinanceError::into_event_error)?;
        tracing::info!(
            deal_id = change.deal_id,
            lot_id = change.lot_id,
            to_status = %change.to_status,
            payable,
            "a deal's lot moved: commissions of its milestones made payable"
        );
        Ok(())
    }
}
