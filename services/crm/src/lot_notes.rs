//! What agents selling a lot learn when its status changes elsewhere: crm's consumer
//! of `property.lot.status_changed` (`crm-lot-notes`).
//!
//! Every live open deal of the tenant for that lot gets a system note ("Lot 12 is now
//! reserved for deal 9 (was available)"), except the deal the change was made for,
//! whose agent made it. The author is the consumer's service account
//! ([`Delivery::actor_id`]), none while it runs without one. The fan-out is capped at
//! [`MAX_NOTED_DEALS`] deals per event, the most recently updated first, so one event
//! is one bounded transaction however many open deals name the lot; the deals left
//! out are logged. The consumer runs in the event's tenant (`fusion-events` binds it,
//! with the inbox row that makes a redelivery a no-op in the same transaction), so a
//! change in one tenant never notes another tenant's deals.

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};
use fusion_proto::property::v1::LotStatusChanged;

use crate::lot_sales::{into_anyhow, is_status, optional_id, positive_id, status_phrase};
use crate::store::notes::{LotNote, note_open_deals_of_lot};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "crm-lot-notes";

/// The events it receives (one subject: nats-server 2.9 filters a consumer on one).
pub const EVENTS: &[&str] = &["property.lot.status_changed"];

/// The most open deals one status change notes.
pub const MAX_NOTED_DEALS: i64 = 200;

/// Handles `property.lot.status_changed`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LotNotes;

impl Handler for LotNotes {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let change = Change::read(&event.payload::<LotStatusChanged>()?)?;
        let (title, content) = (change.title(), change.content());
        let note = LotNote {
            lot_id: change.lot_id,
            except_deal_id: change.deal_id,
            author: event.actor_id(),
            title: &title,
            content: &content,
        };
        let noted = note_open_deals_of_lot(tx, &note, MAX_NOTED_DEALS)
            .await
            .map_err(into_anyhow)?;
        if noted.skipped > 0 {
            tracing::warn!(
                lot_id = change.lot_id,
                written = noted.written,
                skipped = noted.skipped,
                cap = MAX_NOTED_DEALS,
                "a lot's status change noted on its most recent open deals only"
            );
        } else {
            tracing::info!(
                lot_id = change.lot_id,
                written = noted.written,
                "lot status change noted on its open deals"
            );
        }
        Ok(())
    }
}

/// A `LotStatusChanged` payload, checked (it comes from another context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The lot.
    pub lot_id: i64,
    /// Its number in its stage.
    pub lot_number: String,
    /// The status before; empty for a new lot.
    pub from_status: String,
    /// The status after.
    pub to_status: String,
    /// The deal it was made for; 0 when none.
    pub deal_id: i64,
    /// Why, when given.
    pub reason: String,
}

impl Change {
    /// Checks `payload`: ids positive (the deal's 0 when none), statuses lowercase
    /// words, a lot number of at most 50 characters and a reason of at most 2,000.
    pub fn read(payload: &LotStatusChanged) -> anyhow::Result<Self> {
        positive_id("lot_id", payload.lot_id)?;
        optional_id("deal_id", payload.deal_id)?;
        anyhow::ensure!(
            is_status(&payload.to_status),
            "to_status must be a lowercase status name of at most 50 characters"
        );
        anyhow::ensure!(
            payload.from_status.is_empty() || is_status(&payload.from_status),
            "from_status must be empty or a lowercase status name of at most 50 characters"
        );
        let number = payload.lot_number.trim();
        anyhow::ensure!(
            number.chars().count() <= 50 && !number.chars().any(char::is_control),
            "lot_number must be at most 50 characters, without control characters"
        );
        anyhow::ensure!(
            payload.reason.chars().count() <= 2_000,
            "reason must be at most 2000 characters"
        );
        Ok(Self {
            lot_id: payload.lot_id,
            lot_number: if number.is_empty() {
                payload.lot_id.to_string()
            } else {
                number.to_owned()
            },
            from_status: payload.from_status.clone(),
            to_status: payload.to_status.clone(),
            deal_id: payload.deal_id,
            reason: payload.reason.trim().to_owned(),
        })
    }

    /// The note's title: "Lot 12 is now reserved".
    pub fn title(&self) -> String {
        format!(
            "Lot {} is now {}",
            self.lot_number,
            status_phrase(&self.to_status)
        )
    }

    /// The note's text: "Lot 12 is now reserved for deal 9 (was available).", then
    /// the reason when one was given.
    pub fn content(&self) -> String {
        let mut text = self.title();
        if self.deal_id > 0 {
            text.push_str(&format!(" for deal {}", self.deal_id));
        }
        if !self.from_status.is_empty() {
            text.push_str(&format!(" (was {})", status_phrase(&self.from_status)));
        }
        text.push('.');
        if !self.reason.is_empty() {
            text.push_str(&format!(" Reason: {}", self.reason));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(from: &str, to: &str, deal_id: i64, reason: &str) -> LotStatusChanged {
        LotStatusChanged {
            lot_id: 7,
            project_id: 1,
            stage_id: 2,
            lot_number: "12".into(),
            from_status: from.into(),
            to_status: to.into(),
            deal_id,
            reason: reason.into(),
            actor_user_id: 3,
        }
    }

    #[test]
    fn the_note_says_what_the_lot_is_now_and_was() {
        let c = Change::read(&changed("available", "reserved", 0, "")).unwrap();
        assert_eq!(c.title(), "Lot 12 is now reserved");
        assert_eq!(c.content(), "Lot 12 is now reserved (was available).");
        let c = Change::read(&changed("available", "hold", 9, "deposit tomorrow")).unwrap();
        assert_eq!(
            c.content(),
            "Lot 12 is now on hold for deal 9 (was available). Reason: deposit tomorrow"
        );
        let new = Change::read(&changed("", "available", 0, "")).unwrap();
        assert_eq!(new.content(), "Lot 12 is now available.");
    }

    #[test]
    fn a_malformed_change_is_refused() {
        for bad in [
            LotStatusChanged {
                lot_id: 0,
                ..changed("available", "hold", 0, "")
            },
            changed("available", "hold", -1, ""),
            changed("available", "", 0, ""),
            changed("Available", "hold", 0, ""),
            changed("available", "hold", 0, &"r".repeat(2_001)),
            LotStatusChanged {
                lot_number: "1".repeat(51),
                ..changed("available", "hold", 0, "")
            },
        ] {
            assert!(Change::read(&bad).is_err(), "{bad:?}");
        }
    }
}
