//! The lot lifecycle: a lot is sold through a fixed sequence of states, each step a
//! named action, with `withdrawn` as a side exit and an audited revert one step back.
//!
//! | action | from | to |
//! |---|---|---|
//! | hold | available | hold (with an expiry) |
//! | release | hold | available |
//! | reserve | available, hold | reserved |
//! | exchange | reserved | exchanged |
//! | mark unconditional | exchanged | unconditional |
//! | settle | unconditional | settled (final) |
//! | withdraw | available, hold | withdrawn |
//! | revert (audited) | hold, reserved, withdrawn / exchanged / unconditional | available / reserved / exchanged |
//!
//! The service applies a transition inside the same transaction that locks the lot,
//! so two concurrent attempts on one lot cannot both succeed.

use std::fmt;

/// Where a lot is in its sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LotStatus {
    /// For sale.
    Available,
    /// Held for a buyer until the hold expires.
    Hold,
    /// A deposit is paid.
    Reserved,
    /// Contracts exchanged, subject to conditions.
    Exchanged,
    /// Conditions met.
    Unconditional,
    /// Sold and settled: final.
    Settled,
    /// Taken off the market.
    Withdrawn,
}

/// Every status, in pipeline order.
pub const ALL_STATUSES: [LotStatus; 7] = [
    LotStatus::Available,
    LotStatus::Hold,
    LotStatus::Reserved,
    LotStatus::Exchanged,
    LotStatus::Unconditional,
    LotStatus::Settled,
    LotStatus::Withdrawn,
];

impl LotStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LotStatus::Available => "available",
            LotStatus::Hold => "hold",
            LotStatus::Reserved => "reserved",
            LotStatus::Exchanged => "exchanged",
            LotStatus::Unconditional => "unconditional",
            LotStatus::Settled => "settled",
            LotStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<LotStatus> {
        ALL_STATUSES.into_iter().find(|s| s.as_str() == name)
    }

    /// The state an audited revert returns to, if any: one step back along the sale,
    /// and a withdrawn lot back on the market. A settled lot is final.
    pub fn revert_target(self) -> Option<LotStatus> {
        match self {
            LotStatus::Hold | LotStatus::Reserved | LotStatus::Withdrawn => {
                Some(LotStatus::Available)
            }
            LotStatus::Exchanged => Some(LotStatus::Reserved),
            LotStatus::Unconditional => Some(LotStatus::Exchanged),
            LotStatus::Available | LotStatus::Settled => None,
        }
    }
}

impl fmt::Display for LotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle action (one custom method each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `HoldLot`
    Hold,
    /// `ReleaseLot`
    Release,
    /// `ReserveLot`
    Reserve,
    /// `ExchangeLot`
    Exchange,
    /// `MarkLotUnconditional`
    MarkUnconditional,
    /// `SettleLot`
    Settle,
    /// `WithdrawLot`
    Withdraw,
    /// `RevertLot`
    Revert,
}

/// Every action.
pub const ALL_ACTIONS: [Action; 8] = [
    Action::Hold,
    Action::Release,
    Action::Reserve,
    Action::Exchange,
    Action::MarkUnconditional,
    Action::Settle,
    Action::Withdraw,
    Action::Revert,
];

impl Action {
    /// The RPC that takes this action; request ids are kept per method.
    pub fn method(self) -> &'static str {
        match self {
            Action::Hold => "HoldLot",
            Action::Release => "ReleaseLot",
            Action::Reserve => "ReserveLot",
            Action::Exchange => "ExchangeLot",
            Action::MarkUnconditional => "MarkLotUnconditional",
            Action::Settle => "SettleLot",
            Action::Withdraw => "WithdrawLot",
            Action::Revert => "RevertLot",
        }
    }

    /// The verb used in messages.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Reserve => "reserve",
            Action::Exchange => "exchange",
            Action::MarkUnconditional => "mark unconditional",
            Action::Settle => "settle",
            Action::Withdraw => "withdraw",
            Action::Revert => "revert",
        }
    }
}

/// A refused transition; the message names the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The lot's state.
    pub from: LotStatus,
    /// What was asked.
    pub action: Action,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} a lot that is {}",
            self.action.verb(),
            self.from
        )
    }
}

impl std::error::Error for Refused {}

/// The state `action` moves a lot in state `from` to, or why not.
pub fn next(from: LotStatus, action: Action) -> Result<LotStatus, Refused> {
    use LotStatus::*;
    let to = match (action, from) {
        (Action::Hold, Available) => Some(Hold),
        (Action::Release, Hold) => Some(Available),
        (Action::Reserve, Available | Hold) => Some(Reserved),
        (Action::Exchange, Reserved) => Some(Exchanged),
        (Action::MarkUnconditional, Exchanged) => Some(Unconditional),
        (Action::Settle, Unconditional) => Some(Settled),
        (Action::Withdraw, Available | Hold) => Some(Withdrawn),
        (Action::Revert, from) => from.revert_target(),
        _ => None,
    };
    to.ok_or(Refused { from, action })
}

#[cfg(test)]
mod tests {
    use super::*;
    use LotStatus::*;

    /// The whole table: every (state, action) pair, and where it leads if allowed.
    const ALLOWED: &[(LotStatus, Action, LotStatus)] = &[
        (Available, Action::Hold, Hold),
        (Available, Action::Reserve, Reserved),
        (Available, Action::Withdraw, Withdrawn),
        (Hold, Action::Release, Available),
        (Hold, Action::Reserve, Reserved),
        (Hold, Action::Withdraw, Withdrawn),
        (Hold, Action::Revert, Available),
        (Reserved, Action::Exchange, Exchanged),
        (Reserved, Action::Revert, Available),
        (Exchanged, Action::MarkUnconditional, Unconditional),
        (Exchanged, Action::Revert, Reserved),
        (Unconditional, Action::Settle, Settled),
        (Unconditional, Action::Revert, Exchanged),
        (Withdrawn, Action::Revert, Available),
    ];

    #[test]
    fn every_allowed_transition_leads_where_it_should_and_every_other_is_refused() {
        let mut allowed = 0;
        for from in ALL_STATUSES {
            for action in ALL_ACTIONS {
                match ALLOWED.iter().find(|(f, a, _)| *f == from && *a == action) {
                    Some((_, _, to)) => {
                        assert_eq!(next(from, action), Ok(*to), "{from} + {action:?}");
                        allowed += 1;
                    }
                    None => assert_eq!(
                        next(from, action),
                        Err(Refused { from, action }),
                        "{from} + {action:?}"
                    ),
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn a_settled_lot_is_final_and_refusals_name_the_current_state() {
        for action in ALL_ACTIONS {
            assert!(next(Settled, action).is_err());
        }
        assert_eq!(
            next(Settled, Action::Reserve).unwrap_err().to_string(),
            "cannot reserve a lot that is settled"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in ALL_STATUSES {
            assert_eq!(LotStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(LotStatus::parse("sold"), None);
    }
}
