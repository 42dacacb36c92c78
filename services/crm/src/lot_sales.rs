//! A won deal whose lot property would not sell to it: crm's consumer of
//! `property.lot.sale_refused` (`crm-lot-sales`).
//!
//! WinDeal refuses a second won deal on a lot it can see; property refuses the sale
//! when the lot is taken some other way (sold to a deal crm no longer has as the
//! winner, or withdrawn). The deal then carries a `lot_conflict` (the lot's status,
//! the deal it is sold to, when crm learned of it) and its assignee gets a high-priority
//! task on it, due today, saying what happened; an unassigned deal gets an unassigned
//! task. Only a deal that is still won and still names that lot is flagged, once: a
//! refusal that arrives after the deal was reopened or given another lot changes
//! nothing. The consumer runs in the event's tenant (`fusion-events` binds it, and
//! records the event in the inbox in the same transaction, so a redelivery has no
//! second effect); the task's assigner is the consumer's service account
//! ([`Delivery::actor_id`]), none while it runs without one.
//!
//! "Today" is the tenant's date in its own time zone, which identity gives with the
//! consumer's service token ([`fusion_events::ServiceCaller::time_zone`]); a consumer
//! running without service credentials falls back to
//! [`crate::CrmConfig::events_time_zone`] (see [`end_of_day`]).

use chrono::{DateTime, Duration, NaiveTime, TimeZone as _, Utc};

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};
use fusion_proto::property::v1::LotSaleRefused;

use crate::error::CrmError;
use crate::store::deals::{Conflict, flag_lot_conflict};
use crate::store::tasks::{SystemTask, insert_system_task};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "crm-lot-sales";

/// The events it receives (one subject: nats-server 2.9 filters a consumer on one).
pub const EVENTS: &[&str] = &["property.lot.sale_refused"];

/// Handles `property.lot.sale_refused`.
#[derive(Clone, Copy, Debug)]
pub struct LotSales {
    /// The zone the task's "today" is in when the event comes without the tenant's.
    pub time_zone: chrono_tz::Tz,
}

impl LotSales {
    /// The tenant's zone as identity gave it with the consumer's token, else the
    /// configured one.
    fn zone_of(&self, event: &Delivery) -> chrono_tz::Tz {
        event
            .caller
            .as_ref()
            .and_then(|caller| caller.time_zone.parse().ok())
            .unwrap_or(self.time_zone)
    }
}

impl Handler for LotSales {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let refused = Refusal::read(&event.payload::<LotSaleRefused>()?)?;
        let sold_to = (refused.sold_to_deal_id > 0).then_some(refused.sold_to_deal_id);
        let conflict = flag_lot_conflict(
            tx,
            refused.deal_id,
            refused.lot_id,
            &refused.lot_status,
            sold_to,
        )
        .await
        .map_err(into_anyhow)?;
        let deal = match conflict {
            Conflict::Flagged(deal) => deal,
            Conflict::AlreadyFlagged => {
                refused.left_alone("the deal's lot conflict is already flagged");
                return Ok(());
            }
            Conflict::Stale => {
                refused.left_alone(
                    "a refused sale for a deal that is no longer won with that lot: nothing to flag",
                );
                return Ok(());
            }
        };
        let title = refused.task_title();
        let description = refused.task_description();
        let task = SystemTask {
            deal_id: deal.id,
            assignee: deal.assigned_to,
            assigner: event.actor_id(),
            title: &title,
            description: &description,
            priority: "high",
            due: end_of_day(self.zone_of(event), Utc::now()),
        };
        let task_id = insert_system_task(tx, &task).await.map_err(into_anyhow)?;
        tracing::warn!(deal_id = deal.id, lot_id = refused.lot_id, task_id,
            lot_status = %refused.lot_status, sold_to = ?sold_to,
            "a won deal's lot could not be sold to it: deal flagged, task created");
        Ok(())
    }
}

/// A `LotSaleRefused` payload, checked: it comes from another context, so it is
/// bounded like any input (a malformed one fails, and is dead-lettered after the
/// consumer's deliveries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The lot.
    pub lot_id: i64,
    /// The won deal that was refused.
    pub deal_id: i64,
    /// The lot's status, a lowercase word (`exchanged`).
    pub lot_status: String,
    /// The deal the lot is sold to; 0 when none.
    pub sold_to_deal_id: i64,
}

impl Refusal {
    /// Checks `payload`.
    pub fn read(payload: &LotSaleRefused) -> anyhow::Result<Self> {
        positive_id("lot_id", payload.lot_id)?;
        positive_id("deal_id", payload.deal_id)?;
        optional_id("sold_to_deal_id", payload.sold_to_deal_id)?;
        anyhow::ensure!(
            is_status(&payload.lot_status),
            "lot_status must be a lowercase status name of at most 50 characters"
        );
        Ok(Self {
            lot_id: payload.lot_id,
            deal_id: payload.deal_id,
            lot_status: payload.lot_status.clone(),
            sold_to_deal_id: payload.sold_to_deal_id,
        })
    }

    /// Logs why the refusal changes nothing.
    fn left_alone(&self, why: &str) {
        tracing::info!(deal_id = self.deal_id, lot_id = self.lot_id, "{why}");
    }

    /// The task's title: what happened, in a line an agent understands.
    pub fn task_title(&self) -> String {
        let status = status_phrase(&self.lot_status);
        let taken = if self.sold_to_deal_id > 0 {
            format!("it is already {status} for deal {}", self.sold_to_deal_id)
        } else {
            format!("it is {status}")
        };
        format!(
            "Lot {} could not be sold to this deal: {taken}",
            self.lot_id
        )
    }

    /// The task's description: why, and what the agent can do.
    pub fn task_description(&self) -> String {
        let status = status_phrase(&self.lot_status);
        let taken = if self.sold_to_deal_id > 0 {
            format!(
                "the lot is {status} for deal {}, which took it first",
                self.sold_to_deal_id
            )
        } else {
            format!("the lot is {status}")
        };
        format!(
            "Deal {deal} was won, but property refused to sell lot {lot} to it: {taken}. \
             The deal is won on paper only (see its lot conflict). Talk to the buyer, then \
             reopen the deal (move it back to an open stage) or give it another lot; either \
             clears the conflict.",
            deal = self.deal_id,
            lot = self.lot_id,
        )
    }
}

/// Checks an id of an event's payload: positive.
pub(crate) fn positive_id(field: &str, id: i64) -> anyhow::Result<()> {
    anyhow::ensure!(id > 0, "{field} must be a positive id");
    Ok(())
}

/// Checks an id of an event's payload that may be 0 for none.
pub(crate) fn optional_id(field: &str, id: i64) -> anyhow::Result<()> {
    anyhow::ensure!(id >= 0, "{field} must be a positive id, or 0 for none");
    Ok(())
}

/// A lot status name as property writes them: a lowercase word of letters and
/// underscores, at most 50 characters (crm's column).
pub(crate) fn is_status(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 50
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// A lot status as a sentence says it: "on hold", "exchanged".
pub(crate) fn status_phrase(status: &str) -> String {
    match status {
        "hold" => "on hold".to_owned(),
        other => other.replace('_', " "),
    }
}

/// The last second of `now`'s date in `zone`: when a task "due today" is due. (On a
/// day whose last second does not exist in the zone, an hour from now.)
pub fn end_of_day(zone: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&zone).date_naive();
    let last = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
    zone.from_local_datetime(&today.and_time(last))
        .latest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now + Duration::hours(1))
}

/// A store error as the consumer reports it: a database error stays one, so the
/// consumer retries an outage without counting it against the event.
pub(crate) fn into_anyhow(err: CrmError) -> anyhow::Error {
    match err {
        CrmError::Db(e) => e.into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: &str, sold_to: i64) -> LotSaleRefused {
        LotSaleRefused {
            lot_id: 12,
            deal_id: 34,
            lot_status: status.into(),
            sold_to_deal_id: sold_to,
        }
    }

    #[test]
    fn the_task_says_which_lot_and_which_deal_took_it() {
        let r = Refusal::read(&refusal("exchanged", 9)).unwrap();
        assert_eq!(
            r.task_title(),
            "Lot 12 could not be sold to this deal: it is already exchanged for deal 9"
        );
        assert!(r.task_description().contains("deal 9"));
        let withdrawn = Refusal::read(&refusal("withdrawn", 0)).unwrap();
        assert_eq!(
            withdrawn.task_title(),
            "Lot 12 could not be sold to this deal: it is withdrawn"
        );
    }

    #[test]
    fn a_malformed_refusal_is_refused() {
        for bad in [
            LotSaleRefused {
                lot_id: 0,
                ..refusal("exchanged", 9)
            },
            LotSaleRefused {
                deal_id: -1,
                ..refusal("exchanged", 9)
            },
            refusal("exchanged", -9),
            refusal("", 9),
            refusal("Exchanged!", 9),
            refusal(&"x".repeat(51), 9),
        ] {
            assert!(Refusal::read(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn due_today_is_the_last_second_of_the_tenants_date() {
        // 09:00 in Sydney (UTC+11 in November) is still the previous day in UTC.
        let now: DateTime<Utc> = "2026-11-28T22:00:00Z".parse().unwrap();
        assert_eq!(
            end_of_day(chrono_tz::Tz::Australia__Sydney, now).to_rfc3339(),
            "2026-11-29T12:59:59+00:00"
        );
        assert_eq!(
            end_of_day(chrono_tz::Tz::UTC, now).to_rfc3339(),
            "2026-11-28T23:59:59+00:00"
        );
    }
}
