//! Campaign rules that need neither the wire nor the database: the channels, the
//! status machine, and the metrics derived from counts and the budget.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The channels a campaign runs on (`type`).
pub const TYPES: &[&str] = &["email", "sms", "social", "event", "portal", "referral"];

/// Statuses.
pub const DRAFT: &str = "draft";
/// Scheduled: it has a start date and waits for it.
pub const SCHEDULED: &str = "scheduled";
/// Running.
pub const ACTIVE: &str = "active";
/// Stopped for a while.
pub const PAUSED: &str = "paused";
/// Ran its course.
pub const COMPLETED: &str = "completed";
/// Stopped for good before its end.
pub const CANCELLED: &str = "cancelled";

/// One step of the status machine: the custom method, the statuses it starts from,
/// the one it leads to, and what it is called in errors.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// The custom method (`ScheduleCampaign`).
    pub method: &'static str,
    /// The statuses it accepts.
    pub from: &'static [&'static str],
    /// The status it sets.
    pub to: &'static str,
    /// The past participle for messages (`scheduled`).
    pub action: &'static str,
    /// `from` in words, for messages.
    pub allowed: &'static str,
}

/// draft → scheduled.
pub const SCHEDULE: Step = Step {
    method: "ScheduleCampaign",
    from: &[DRAFT],
    to: SCHEDULED,
    action: "scheduled",
    allowed: "draft",
};

/// scheduled → active.
pub const START: Step = Step {
    method: "StartCampaign",
    from: &[SCHEDULED],
    to: ACTIVE,
    action: "started",
    allowed: "scheduled",
};

/// active → paused.
pub const PAUSE: Step = Step {
    method: "PauseCampaign",
    from: &[ACTIVE],
    to: PAUSED,
    action: "paused",
    allowed: "active",
};

/// paused → active.
pub const RESUME: Step = Step {
    method: "ResumeCampaign",
    from: &[PAUSED],
    to: ACTIVE,
    action: "resumed",
    allowed: "paused",
};

/// active or paused → completed.
pub const COMPLETE: Step = Step {
    method: "CompleteCampaign",
    from: &[ACTIVE, PAUSED],
    to: COMPLETED,
    action: "completed",
    allowed: "active or paused",
};

/// anything not closed → cancelled.
pub const CANCEL: Step = Step {
    method: "CancelCampaign",
    from: &[DRAFT, SCHEDULED, ACTIVE, PAUSED],
    to: CANCELLED,
    action: "cancelled",
    allowed: "draft, scheduled, active or paused",
};

impl Step {
    /// Whether the step starts from `status`.
    pub fn allows(&self, status: &str) -> bool {
        self.from.contains(&status)
    }
}

/// Whether a campaign in `status` is closed: only its description and tags change,
/// and its leads do not.
pub fn closed(status: &str) -> bool {
    status == COMPLETED || status == CANCELLED
}

/// Whether a campaign in `status` keeps a start date (every status a schedule led to).
pub fn needs_start_date(status: &str) -> bool {
    !(status == DRAFT || status == CANCELLED)
}

/// What the metrics are computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Leads in the campaign.
    pub targeted: i64,
    /// Of those, converted since they were added.
    pub converted: i64,
    /// Deals of those leads won since.
    pub won: i64,
    /// The value of the won deals in the campaign's currency.
    pub won_value: Decimal,
}

/// A campaign's metrics as stored in its `metrics` column (the seed's JSON) and sent
/// as `CampaignMetrics`: amounts as plain decimal strings with two decimals, costs
/// absent when there is nothing to divide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Leads targeted.
    pub targeted_lead_count: i64,
    /// Leads converted.
    pub converted_lead_count: i64,
    /// Deals won.
    pub won_deal_count: i64,
    /// Their value.
    pub won_deal_value: String,
    /// Budget per targeted lead.
    pub cost_per_lead: Option<String>,
    /// Budget per won deal.
    pub cost_per_sale: Option<String>,
}

/// An amount with two decimals, rounded half away from zero.
fn cents(d: Decimal) -> String {
    let mut d = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(2);
    d.to_string()
}

/// `budget / count`, when there is a budget and something to divide it by.
fn cost_per(budget: Option<Decimal>, count: i64) -> Option<String> {
    match budget {
        Some(budget) if count > 0 => Some(cents(budget / Decimal::from(count))),
        _ => None,
    }
}

impl Metrics {
    /// The metrics of a campaign with `budget` and `counts`.
    pub fn compute(budget: Option<Decimal>, counts: Counts) -> Self {
        Self {
            targeted_lead_count: counts.targeted,
            converted_lead_count: counts.converted,
            won_deal_count: counts.won,
            won_deal_value: cents(counts.won_value),
            cost_per_lead: cost_per(budget, counts.targeted),
            cost_per_sale: cost_per(budget, counts.won),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn each_step_starts_only_from_its_statuses() {
        let all = [DRAFT, SCHEDULED, ACTIVE, PAUSED, COMPLETED, CANCELLED];
        let allowed =
            |step: Step| -> Vec<&str> { all.iter().copied().filter(|s| step.allows(s)).collect() };
        assert_eq!(allowed(SCHEDULE), [DRAFT]);
        assert_eq!(allowed(START), [SCHEDULED]);
        assert_eq!(allowed(PAUSE), [ACTIVE]);
        assert_eq!(allowed(RESUME), [PAUSED]);
        assert_eq!(allowed(COMPLETE), [ACTIVE, PAUSED]);
        assert_eq!(allowed(CANCEL), [DRAFT, SCHEDULED, ACTIVE, PAUSED]);
        assert!(
            all.iter()
                .all(|s| closed(s) == (*s == COMPLETED || *s == CANCELLED))
        );
    }

    #[test]
    fn costs_divide_the_budget_exactly_and_round_half_away_from_zero() {
        let counts = Counts {
            targeted: 3,
            converted: 1,
            won: 2,
            won_value: d("1098000"),
        };
        let m = Metrics::compute(Some(d("100.00")), counts);
        assert_eq!(m.cost_per_lead.as_deref(), Some("33.33"));
        assert_eq!(m.cost_per_sale.as_deref(), Some("50.00"));
        assert_eq!(m.won_deal_value, "1098000.00");
        // 0.125 rounds up, not to even.
        let m = Metrics::compute(
            Some(d("0.25")),
            Counts {
                targeted: 2,
                ..Counts::default()
            },
        );
        assert_eq!(m.cost_per_lead.as_deref(), Some("0.13"));
    }

    #[test]
    fn nothing_to_divide_leaves_the_costs_empty() {
        let m = Metrics::compute(
            None,
            Counts {
                targeted: 4,
                ..Counts::default()
            },
        );
        assert_eq!((m.cost_per_lead, m.cost_per_sale), (None, None));
        let m = Metrics::compute(Some(d("500")), Counts::default());
        assert_eq!((m.cost_per_lead, m.cost_per_sale), (None, None));
        assert_eq!(m.won_deal_value, "0.00");
    }
}
