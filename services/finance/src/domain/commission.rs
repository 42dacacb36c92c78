//! Commission plans and the commissions a won deal earns under them.
//!
//! A plan line is one of Fusion's seven commission types, worth either a rate of the
//! deal value or a fixed amount, split between recipients by shares summing to
//! exactly 100 % and paid over milestones whose percentages sum to exactly 100 %
//! (say 50 % when contracts are exchanged and 50 % at settlement). When a deal is
//! won each line gives one commission per recipient and milestone: the line's total
//! is first split between the recipients, then each recipient's amount over the
//! milestones, both with [`allocate`], so every amount is exact to the minor unit
//! and the parts add up to the line's total.
//!
//! Problems are reported as `(field path, message)` with paths relative to the plan
//! (`lines[0].recipients[1].share`); the API prefixes its request field.

use std::collections::HashSet;
use std::fmt;

use rust_decimal::Decimal;

use super::Problems;
use super::currency::Currency;
use super::money::{MONEY, PERCENT};
use super::split::{SplitError, allocate};

/// At most this many lines in one plan.
pub const MAX_PLAN_LINES: usize = 20;

/// Who a commission is for, by role in the sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommissionType {
    /// Property investment advisory business.
    Piab,
    /// The subscribing agency.
    Subscriber,
    /// An affiliate who brought the buyer.
    Affiliate,
    /// The agent who made the sale.
    SalesAgent,
    /// A referral partner.
    ReferralPartner,
    /// A business development manager.
    Bdm,
    /// An agent under another agent.
    SubAgent,
}

/// Every commission type.
pub const ALL_COMMISSION_TYPES: [CommissionType; 7] = [
    CommissionType::Piab,
    CommissionType::Subscriber,
    CommissionType::Affiliate,
    CommissionType::SalesAgent,
    CommissionType::ReferralPartner,
    CommissionType::Bdm,
    CommissionType::SubAgent,
];

impl CommissionType {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommissionType::Piab => "piab",
            CommissionType::Subscriber => "subscriber",
            CommissionType::Affiliate => "affiliate",
            CommissionType::SalesAgent => "sales_agent",
            CommissionType::ReferralPartner => "referral_partner",
            CommissionType::Bdm => "bdm",
            CommissionType::SubAgent => "sub_agent",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<CommissionType, String> {
        ALL_COMMISSION_TYPES
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                "must be one of: piab, subscriber, affiliate, sales_agent, referral_partner, bdm, sub_agent"
                    .to_owned()
            })
    }
}

impl fmt::Display for CommissionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a part of a commission becomes payable: when the deal is won, or when the
/// deal's lot reaches one of the later statuses of its sale (property's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Milestone {
    /// The deal is won.
    Won,
    /// The lot's contracts are exchanged.
    Exchanged,
    /// The lot's contract is unconditional.
    Unconditional,
    /// The lot's sale is settled.
    Settled,
}

/// Every milestone, in the order a sale reaches them.
pub const ALL_MILESTONES: [Milestone; 4] = [
    Milestone::Won,
    Milestone::Exchanged,
    Milestone::Unconditional,
    Milestone::Settled,
];

impl Milestone {
    /// The stored and wire name; a lot milestone's is the lot status's.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Won => "won",
            Milestone::Exchanged => "exchanged",
            Milestone::Unconditional => "unconditional",
            Milestone::Settled => "settled",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<Milestone, String> {
        ALL_MILESTONES
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| "must be one of: won, exchanged, unconditional, settled".to_owned())
    }

    /// The milestone a lot reaches on entering `status`, if any.
    pub fn of_lot_status(status: &str) -> Option<Milestone> {
        Milestone::parse(status)
            .ok()
            .filter(|m| *m != Milestone::Won)
    }

    /// Every milestone a sale has passed once it reaches this one, this one included:
    /// a settled sale was won, exchanged and unconditional too.
    pub fn and_before(self) -> &'static [Milestone] {
        let reached = ALL_MILESTONES
            .iter()
            .position(|m| *m == self)
            .unwrap_or(ALL_MILESTONES.len() - 1);
        &ALL_MILESTONES[..=reached]
    }

    /// Whether a sale that has reached `reached` has passed this milestone.
    pub fn is_reached_by(self, reached: Milestone) -> bool {
        reached.and_before().contains(&self)
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plan line is worth on a deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Percent of the deal value: above 0, at most 100, two decimals at most.
    Rate(Decimal),
    /// A fixed amount in the deal's currency: above zero, within `decimal(12,2)`.
    Fixed(Decimal),
}

impl Basis {
    /// From the wire's `rate` and `fixed_amount`, exactly one of them set; a problem
    /// names its field.
    pub fn parse(rate: &str, fixed_amount: &str) -> Result<Basis, (&'static str, String)> {
        match (rate.is_empty(), fixed_amount.is_empty()) {
            (true, true) => Err(("rate", "set either rate or fixed_amount".into())),
            (false, false) => Err((
                "fixed_amount",
                "set either rate or fixed_amount, not both".into(),
            )),
            (false, true) => PERCENT
                .parse(rate)
                .map(Basis::Rate)
                .map_err(|m| ("rate", m)),
            (true, false) => MONEY
                .parse(fixed_amount)
                .map(Basis::Fixed)
                .map_err(|m| ("fixed_amount", m)),
        }
    }

    /// The basis if its value is within its rule.
    fn checked(self) -> Result<Basis, (&'static str, String)> {
        match self {
            Basis::Rate(rate) => percent(rate).map(Basis::Rate).map_err(|m| ("rate", m)),
            Basis::Fixed(amount) => {
                let fits = MONEY.check(amount).and_then(|()| {
                    if amount > Decimal::ZERO {
                        Ok(Basis::Fixed(amount))
                    } else {
                        Err("must be above zero".to_owned())
                    }
                });
                fits.map_err(|m| ("fixed_amount", m))
            }
        }
    }
}

/// A percentage within `decimal(5,2)`, above 0 and at most 100.
fn percent(value: Decimal) -> Result<Decimal, String> {
    PERCENT.check(value)?;
    if value > Decimal::ZERO && value <= Decimal::ONE_HUNDRED {
        Ok(value)
    } else {
        Err("must be above 0 and at most 100".to_owned())
    }
}

/// A recipient's share of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The identity user paid.
    pub user_id: i64,
    /// Percent of the line.
    pub share: Decimal,
}

/// The part of a line paid at a milestone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MilestoneShare {
    /// When it becomes payable.
    pub milestone: Milestone,
    /// Percent of each recipient's amount.
    pub percent: Decimal,
}

/// A plan line as the caller sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPlanLine<'a> {
    /// One of the seven commission types.
    pub commission_type: &'a str,
    /// Percent of the deal value, or empty.
    pub rate: &'a str,
    /// A fixed amount, or empty.
    pub fixed_amount: &'a str,
    /// `(user_id, share)` pairs.
    pub recipients: Vec<(i64, &'a str)>,
    /// `(milestone, percent)` pairs.
    pub milestones: Vec<(&'a str, &'a str)>,
}

/// A valid plan line: shares and milestone percentages each sum to exactly 100, no
/// recipient or milestone twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLine {
    commission_type: CommissionType,
    basis: Basis,
    recipients: Vec<Recipient>,
    milestones: Vec<MilestoneShare>,
}

impl PlanLine {
    /// A line from stored values, or every problem by its path within the line.
    pub fn new(
        commission_type: CommissionType,
        basis: Basis,
        recipients: &[Recipient],
        milestones: &[MilestoneShare],
    ) -> Result<PlanLine, Problems> {
        PlanLine::checked(
            Ok(commission_type),
            Ok(basis),
            recipients
                .iter()
                .map(|r| (r.user_id, Ok(r.share)))
                .collect(),
            milestones
                .iter()
                .map(|m| (Ok(m.milestone), Ok(m.percent)))
                .collect(),
        )
    }

    /// A line from the caller's strings, or every problem by its path within the
    /// line (`recipients[1].share`).
    pub fn parse(raw: &RawPlanLine<'_>) -> Result<PlanLine, Problems> {
        PlanLine::checked(
            CommissionType::parse(raw.commission_type),
            Basis::parse(raw.rate, raw.fixed_amount),
            raw.recipients
                .iter()
                .map(|(user_id, share)| (*user_id, PERCENT.parse(share)))
                .collect(),
            raw.milestones
                .iter()
                .map(|(milestone, percent)| (Milestone::parse(milestone), PERCENT.parse(percent)))
                .collect(),
        )
    }

    /// The line, or every problem: those of reading each field, then each field's
    /// rule, then the rules across recipients and across milestones.
    fn checked(
        commission_type: Result<CommissionType, String>,
        basis: Result<Basis, (&'static str, String)>,
        recipients: Vec<(i64, Result<Decimal, String>)>,
        milestones: Vec<(Result<Milestone, String>, Result<Decimal, String>)>,
    ) -> Result<PlanLine, Problems> {
        let mut problems = Problems::new();
        let commission_type = commission_type
            .map_err(|m| problems.push(("commission_type".into(), m)))
            .ok();
        let basis = basis
            .and_then(Basis::checked)
            .map_err(|(field, m)| problems.push((field.into(), m)))
            .ok();

        let recipients = checked_recipients(&mut problems, recipients);
        let milestones = checked_milestones(&mut problems, milestones);
        match (commission_type, basis) {
            (Some(commission_type), Some(basis)) if problems.is_empty() => Ok(PlanLine {
                commission_type,
                basis,
                recipients,
                milestones,
            }),
            _ => Err(problems),
        }
    }

    /// The commission type.
    pub fn commission_type(&self) -> CommissionType {
        self.commission_type
    }

    /// A rate of the deal value or a fixed amount.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// Who is paid, in order.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// When, in order.
    pub fn milestones(&self) -> &[MilestoneShare] {
        &self.milestones
    }

    /// The line's total on a deal worth `deal_value` (a price within
    /// `decimal(12,2)`): its rate of the value or its fixed amount, rounded half away
    /// from zero to the currency's minor unit (a fixed 100.50 is 101 yen).
    pub fn total(&self, deal_value: Decimal, currency: Currency) -> Decimal {
        match self.basis {
            Basis::Rate(rate) => currency.round(deal_value * rate / Decimal::ONE_HUNDRED),
            Basis::Fixed(amount) => currency.round(amount),
        }
    }

    /// The line's commissions on a deal worth `deal_value`.
    pub fn commissions(
        &self,
        deal_value: Decimal,
        currency: Currency,
    ) -> Result<Vec<Part>, SplitError> {
        commission_parts(
            self.total(deal_value, currency),
            &self.recipients,
            &self.milestones,
            currency,
        )
    }
}

/// The valid recipients; a problem for each missing or repeated user and each
/// invalid share, and for shares not summing to 100.
fn checked_recipients(
    problems: &mut Problems,
    recipients: Vec<(i64, Result<Decimal, String>)>,
) -> Vec<Recipient> {
    let count = recipients.len();
    let (mut valid, mut shares) = (Vec::new(), Vec::new());
    let mut users = HashSet::new();
    for (i, (user_id, share)) in recipients.into_iter().enumerate() {
        let user_id = if user_id <= 0 {
            Err("is required".to_owned())
        } else if users.insert(user_id) {
            Ok(user_id)
        } else {
            Err(format!(
                "user {user_id} is already a recipient of this line"
            ))
        };
        let share = share.and_then(percent);
        if let Err(m) = &user_id {
            problems.push((format!("recipients[{i}].user_id"), m.clone()));
        }
        match &share {
            Ok(share) => shares.push(*share),
            Err(m) => problems.push((format!("recipients[{i}].share"), m.clone())),
        }
        if let (Ok(user_id), Ok(share)) = (user_id, share) {
            valid.push(Recipient { user_id, share });
        }
    }
    check_hundred(problems, "recipients", "shares", count, &shares);
    valid
}

/// The valid milestones; a problem for each unknown or repeated milestone and each
/// invalid percentage, and for percentages not summing to 100.
fn checked_milestones(
    problems: &mut Problems,
    milestones: Vec<(Result<Milestone, String>, Result<Decimal, String>)>,
) -> Vec<MilestoneShare> {
    let count = milestones.len();
    let (mut valid, mut percents) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for (i, (milestone, part)) in milestones.into_iter().enumerate() {
        let milestone = milestone.and_then(|m| {
            if seen.insert(m) {
                Ok(m)
            } else {
                Err(format!("{m} is already a milestone of this line"))
            }
        });
        let part = part.and_then(percent);
        if let Err(m) = &milestone {
            problems.push((format!("milestones[{i}].milestone"), m.clone()));
        }
        match &part {
            Ok(part) => percents.push(*part),
            Err(m) => problems.push((format!("milestones[{i}].percent"), m.clone())),
        }
        if let (Ok(milestone), Ok(percent)) = (milestone, part) {
            valid.push(MilestoneShare { milestone, percent });
        }
    }
    check_hundred(problems, "milestones", "percentages", count, &percents);
    valid
}

/// Adds a problem on `field` when it has no entries, or when every one of its
/// `count` entries has a valid percentage (`values`) and they do not sum to exactly
/// 100; an invalid entry already has its own problem.
fn check_hundred(
    problems: &mut Problems,
    field: &str,
    what: &str,
    count: usize,
    values: &[Decimal],
) {
    if count == 0 {
        problems.push((
            field.into(),
            format!("at least one is required, their {what} summing to 100"),
        ));
    } else if values.len() == count {
        let sum: Decimal = values.iter().sum();
        if sum != Decimal::ONE_HUNDRED {
            problems.push((
                field.into(),
                format!("the {what} sum to {sum}; they must sum to exactly 100"),
            ));
        }
    }
}

/// Parses a plan's lines, at least one and at most [`MAX_PLAN_LINES`], reporting
/// every problem by its path (`lines[0].milestones[1].percent`).
pub fn parse_plan_lines(raw: &[RawPlanLine<'_>]) -> Result<Vec<PlanLine>, Problems> {
    if raw.is_empty() {
        return Err(vec![(
            "lines".into(),
            "at least one line is required".into(),
        )]);
    }
    if raw.len() > MAX_PLAN_LINES {
        return Err(vec![(
            "lines".into(),
            format!("at most {MAX_PLAN_LINES} lines"),
        )]);
    }
    let mut lines = Vec::with_capacity(raw.len());
    let mut problems = Problems::new();
    for (index, raw) in raw.iter().enumerate() {
        match PlanLine::parse(raw) {
            Ok(line) => lines.push(line),
            Err(line_problems) => problems.extend(
                line_problems
                    .into_iter()
                    .map(|(field, message)| (format!("lines[{index}].{field}"), message)),
            ),
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

/// One commission of a line: a recipient's amount payable at a milestone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Who is paid.
    pub user_id: i64,
    /// When it becomes payable.
    pub milestone: Milestone,
    /// How much, written with two decimals; negative for a clawback.
    pub amount: Decimal,
}

/// One part per recipient and milestone, recipients in order and each one's
/// milestones in order: `line_total` is split between the recipients by share, then
/// each recipient's amount over the milestones by percentage, to the currency's
/// minor unit. The parts sum exactly to `line_total`, and each recipient's to their
/// amount.
pub fn commission_parts(
    line_total: Decimal,
    recipients: &[Recipient],
    milestones: &[MilestoneShare],
    currency: Currency,
) -> Result<Vec<Part>, SplitError> {
    let scale = currency.minor_unit();
    let shares: Vec<Decimal> = recipients.iter().map(|r| r.share).collect();
    let percents: Vec<Decimal> = milestones.iter().map(|m| m.percent).collect();
    let mut parts = Vec::with_capacity(recipients.len() * milestones.len());
    for (recipient, amount) in recipients.iter().zip(allocate(line_total, &shares, scale)?) {
        for (milestone, part) in milestones.iter().zip(allocate(amount, &percents, scale)?) {
            parts.push(Part {
                user_id: recipient.user_id,
                milestone: milestone.milestone,
                amount: currency.round(part),
            });
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use fusion_property::domain::lifecycle::{ALL_STATUSES, LotStatus};

    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn aud() -> Currency {
        Currency::parse("AUD").unwrap()
    }

    fn raw<'a>(
        rate: &'a str,
        fixed_amount: &'a str,
        recipients: &[(i64, &'a str)],
        milestones: &[(&'a str, &'a str)],
    ) -> RawPlanLine<'a> {
        RawPlanLine {
            commission_type: "sales_agent",
            rate,
            fixed_amount,
            recipients: recipients.to_vec(),
            milestones: milestones.to_vec(),
        }
    }

    /// `(user, milestone, amount)` of each commission a line gives on a deal.
    fn commissions(
        line: &RawPlanLine<'_>,
        deal_value: &str,
        currency: &str,
    ) -> Vec<(i64, String, String)> {
        PlanLine::parse(line)
            .unwrap()
            .commissions(d(deal_value), Currency::parse(currency).unwrap())
            .unwrap()
            .into_iter()
            .map(|p| (p.user_id, p.milestone.to_string(), p.amount.to_string()))
            .collect()
    }

    fn expected(parts: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
        parts
            .iter()
            .map(|(u, m, a)| (*u, (*m).to_owned(), (*a).to_owned()))
            .collect()
    }

    #[test]
    fn a_rate_of_the_deal_is_split_by_share_then_paid_over_milestones() {
        // 2 % of 549000.00 = 10980.00; 70/30 → 7686.00 and 3294.00; each 50/50.
        let line = raw(
            "2",
            "",
            &[(7, "70"), (8, "30")],
            &[("exchanged", "50"), ("settled", "50")],
        );
        assert_eq!(
            commissions(&line, "549000.00", "AUD"),
            expected(&[
                (7, "exchanged", "3843.00"),
                (7, "settled", "3843.00"),
                (8, "exchanged", "1647.00"),
                (8, "settled", "1647.00"),
            ])
        );
    }

    #[test]
    fn leftover_cents_go_to_the_largest_remainders_at_both_steps() {
        // 100.01 halves to 50.005 each: the earlier recipient gets the odd cent. Then
        // 50.01 over 33.33/33.33/33.34 % is 16.668…, 16.668…, 16.673… → the two larger
        // remainders get a cent; 50.00 is 16.665, 16.665, 16.67 → the first tie wins.
        let line = raw(
            "",
            "100.01",
            &[(1, "50"), (2, "50")],
            &[
                ("won", "33.33"),
                ("exchanged", "33.33"),
                ("settled", "33.34"),
            ],
        );
        assert_eq!(
            commissions(&line, "0", "AUD"),
            expected(&[
                (1, "won", "16.67"),
                (1, "exchanged", "16.67"),
                (1, "settled", "16.67"),
                (2, "won", "16.67"),
                (2, "exchanged", "16.66"),
                (2, "settled", "16.67"),
            ])
        );
    }

    #[test]
    fn a_fixed_amount_ignores_the_deal_value_and_thirds_add_up() {
        let line = raw(
            "",
            "1000.00",
            &[(1, "33.33"), (2, "33.33"), (3, "33.34")],
            &[("won", "100")],
        );
        let parts = expected(&[
            (1, "won", "333.30"),
            (2, "won", "333.30"),
            (3, "won", "333.40"),
        ]);
        assert_eq!(commissions(&line, "549000.00", "AUD"), parts);
        assert_eq!(commissions(&line, "0", "AUD"), parts);
    }

    #[test]
    fn amounts_are_whole_in_a_currency_without_minor_units() {
        // 2.5 % of 333333 yen = 8333.325 → 8333, halved → 4167 and 4166.
        let line = raw("2.5", "", &[(1, "50"), (2, "50")], &[("settled", "100")]);
        assert_eq!(
            commissions(&line, "333333", "JPY"),
            expected(&[(1, "settled", "4167.00"), (2, "settled", "4166.00")])
        );
        // A fixed 100.50 is 101 yen.
        let fixed = PlanLine::parse(&raw("", "100.50", &[(1, "100")], &[("won", "100")])).unwrap();
        assert_eq!(
            fixed.total(d("0"), Currency::parse("JPY").unwrap()),
            d("101")
        );
    }

    #[test]
    fn a_clawback_is_split_like_its_commission_with_the_sign_turned() {
        let recipients = [
            Recipient {
                user_id: 1,
                share: d("33.33"),
            },
            Recipient {
                user_id: 2,
                share: d("33.33"),
            },
            Recipient {
                user_id: 3,
                share: d("33.34"),
            },
        ];
        let milestones = [MilestoneShare {
            milestone: Milestone::Won,
            percent: d("100"),
        }];
        let amounts = |total| -> Vec<String> {
            commission_parts(d(total), &recipients, &milestones, aud())
                .unwrap()
                .iter()
                .map(|p| p.amount.to_string())
                .collect()
        };
        assert_eq!(amounts("0.01"), ["0.00", "0.00", "0.01"]);
        assert_eq!(amounts("-0.01"), ["0.00", "0.00", "-0.01"]);
        assert_eq!(amounts("-100.00"), ["-33.33", "-33.33", "-33.34"]);
    }

    #[test]
    fn every_broken_plan_rule_is_named_by_its_path() {
        let hundred = [("won", "100")];
        // (line, [(path, message)])
        let table: Vec<(RawPlanLine<'_>, &[(&str, &str)])> = vec![
            (
                RawPlanLine {
                    commission_type: "agent",
                    ..raw("2", "", &[(1, "100")], &hundred)
                },
                &[(
                    "commission_type",
                    "must be one of: piab, subscriber, affiliate, sales_agent, referral_partner, bdm, sub_agent",
                )],
            ),
            (
                raw("", "", &[(1, "100")], &hundred),
                &[("rate", "set either rate or fixed_amount")],
            ),
            (
                raw("2", "100", &[(1, "100")], &hundred),
                &[("fixed_amount", "set either rate or fixed_amount, not both")],
            ),
            (
                raw("0", "", &[(1, "100")], &hundred),
                &[("rate", "must be above 0 and at most 100")],
            ),
            (
                raw("100.01", "", &[(1, "100")], &hundred),
                &[("rate", "must be above 0 and at most 100")],
            ),
            (
                raw("2.005", "", &[(1, "100")], &hundred),
                &[("rate", "at most 2 decimal places")],
            ),
            (
                raw("", "0.00", &[(1, "100")], &hundred),
                &[("fixed_amount", "must be above zero")],
            ),
            (
                raw("", "-5", &[(1, "100")], &hundred),
                &[("fixed_amount", "must be above zero")],
            ),
            (
                raw("2", "", &[], &hundred),
                &[(
                    "recipients",
                    "at least one is required, their shares summing to 100",
                )],
            ),
            (
                raw("2", "", &[(1, "70"), (2, "20")], &hundred),
                &[(
                    "recipients",
                    "the shares sum to 90; they must sum to exactly 100",
                )],
            ),
            (
                raw(
                    "2",
                    "",
                    &[(1, "33.33"), (2, "33.33"), (3, "33.33")],
                    &hundred,
                ),
                &[(
                    "recipients",
                    "the shares sum to 99.99; they must sum to exactly 100",
                )],
            ),
            (
                raw("2", "", &[(1, "50"), (1, "50")], &hundred),
                &[(
                    "recipients[1].user_id",
                    "user 1 is already a recipient of this line",
                )],
            ),
            (
                raw("2", "", &[(0, "0"), (2, "100.001")], &hundred),
                &[
                    ("recipients[0].user_id", "is required"),
                    ("recipients[0].share", "must be above 0 and at most 100"),
                    ("recipients[1].share", "at most 2 decimal places"),
                ],
            ),
            (
                raw("2", "", &[(1, "100")], &[]),
                &[(
                    "milestones",
                    "at least one is required, their percentages summing to 100",
                )],
            ),
            (
                raw(
                    "2",
                    "",
                    &[(1, "100")],
                    &[("reserved", "50"), ("settled", "60")],
                ),
                &[
                    (
                        "milestones[0].milestone",
                        "must be one of: won, exchanged, unconditional, settled",
                    ),
                    (
                        "milestones",
                        "the percentages sum to 110; they must sum to exactly 100",
                    ),
                ],
            ),
            (
                raw(
                    "2",
                    "",
                    &[(1, "100")],
                    &[("settled", "50"), ("settled", "50")],
                ),
                &[(
                    "milestones[1].milestone",
                    "settled is already a milestone of this line",
                )],
            ),
            (
                raw("2", "", &[(1, "100")], &[("won", ""), ("settled", "-50")]),
                &[
                    ("milestones[0].percent", "is required"),
                    ("milestones[1].percent", "must be above 0 and at most 100"),
                ],
            ),
        ];
        for (line, problems) in &table {
            let found = PlanLine::parse(line).unwrap_err();
            let found: Vec<(&str, &str)> = found
                .iter()
                .map(|(f, m)| (f.as_str(), m.as_str()))
                .collect();
            assert_eq!(found, *problems, "{line:?}");
        }
    }

    #[test]
    fn plan_lines_are_prefixed_by_their_index_and_a_plan_has_one_to_twenty() {
        let good = raw("2", "", &[(1, "100")], &[("won", "100")]);
        let bad = raw("2", "", &[(1, "100")], &[("won", "99")]);
        assert_eq!(
            parse_plan_lines(&[good.clone(), bad]).unwrap_err(),
            [(
                "lines[1].milestones".to_owned(),
                "the percentages sum to 99; they must sum to exactly 100".to_owned()
            )]
        );
        assert_eq!(
            parse_plan_lines(&[]).unwrap_err(),
            [(
                "lines".to_owned(),
                "at least one line is required".to_owned()
            )]
        );
        let full = vec![good; MAX_PLAN_LINES];
        assert_eq!(parse_plan_lines(&full).map(|l| l.len()), Ok(MAX_PLAN_LINES));
        let over = vec![full[0].clone(); MAX_PLAN_LINES + 1];
        assert_eq!(parse_plan_lines(&over).unwrap_err()[0].0, "lines");
    }

    #[test]
    fn stored_lines_are_held_to_the_same_rules() {
        let recipients = [Recipient {
            user_id: 1,
            share: d("100"),
        }];
        let milestones = [MilestoneShare {
            milestone: Milestone::Won,
            percent: d("100"),
        }];
        let line = PlanLine::new(
            CommissionType::Bdm,
            Basis::Rate(d("1.5")),
            &recipients,
            &milestones,
        )
        .unwrap();
        assert_eq!(
            (
                line.commission_type(),
                line.basis(),
                line.recipients(),
                line.milestones()
            ),
            (
                CommissionType::Bdm,
                Basis::Rate(d("1.5")),
                &recipients[..],
                &milestones[..]
            )
        );
        let half = [MilestoneShare {
            milestone: Milestone::Won,
            percent: d("50"),
        }];
        assert_eq!(
            PlanLine::new(
                CommissionType::Bdm,
                Basis::Fixed(d("0.001")),
                &recipients,
                &half
            )
            .unwrap_err(),
            [
                (
                    "fixed_amount".to_owned(),
                    "at most 2 decimal places".to_owned()
                ),
                (
                    "milestones".to_owned(),
                    "the percentages sum to 50; they must sum to exactly 100".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn the_seven_commission_types_round_trip_through_their_names() {
        for t in ALL_COMMISSION_TYPES {
            assert_eq!(CommissionType::parse(t.as_str()), Ok(t));
        }
        assert!(CommissionType::parse("SalesAgent").is_err());
        assert!(CommissionType::parse("").is_err());
    }

    #[test]
    fn lot_milestones_are_property_lot_statuses_and_won_is_not() {
        for m in ALL_MILESTONES {
            assert_eq!(Milestone::parse(m.as_str()), Ok(m));
        }
        let lot_milestones: Vec<Milestone> = ALL_STATUSES
            .iter()
            .filter_map(|s| Milestone::of_lot_status(s.as_str()))
            .collect();
        assert_eq!(
            lot_milestones,
            [
                Milestone::Exchanged,
                Milestone::Unconditional,
                Milestone::Settled
            ]
        );
        for m in &lot_milestones {
            assert!(LotStatus::parse(m.as_str()).is_some(), "{m}");
        }
        assert_eq!(Milestone::of_lot_status("won"), None);
        assert_eq!(Milestone::of_lot_status("reserved"), None);
    }

    #[test]
    fn a_milestone_reached_passes_every_earlier_one() {
        assert_eq!(Milestone::Won.and_before(), [Milestone::Won]);
        assert_eq!(
            Milestone::Unconditional.and_before(),
            [
                Milestone::Won,
                Milestone::Exchanged,
                Milestone::Unconditional
            ]
        );
        assert_eq!(Milestone::Settled.and_before(), ALL_MILESTONES);
        assert!(Milestone::Exchanged.is_reached_by(Milestone::Settled));
        assert!(Milestone::Exchanged.is_reached_by(Milestone::Exchanged));
        assert!(!Milestone::Settled.is_reached_by(Milestone::Unconditional));
        assert!(Milestone::Won.is_reached_by(Milestone::Exchanged));
    }

    /// 1 to 6 positive shares of 100.00 % (cuts of 10000 hundredths), likewise 1 to
    /// 4 milestone percentages, and a line total of up to ±10¹⁰ cents.
    fn plan()
    -> impl proptest::strategy::Strategy<Value = (Decimal, Vec<Recipient>, Vec<MilestoneShare>)>
    {
        use proptest::prelude::*;
        fn hundred(parts: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<Decimal>> {
            proptest::collection::btree_set(1..10_000i64, parts).prop_map(|cuts| {
                let mut bounds: Vec<i64> = cuts.into_iter().collect();
                bounds.insert(0, 0);
                bounds.push(10_000);
                bounds
                    .windows(2)
                    .map(|w| Decimal::new(w[1] - w[0], 2))
                    .collect()
            })
        }
        (
            -10_000_000_000i64..=10_000_000_000,
            hundred(0..=5),
            proptest::sample::subsequence(ALL_MILESTONES.to_vec(), 1..=4),
        )
            .prop_flat_map(|(cents, shares, milestones)| {
                let count = milestones.len();
                (
                    Just((cents, shares, milestones)),
                    hundred(count - 1..=count - 1),
                )
            })
            .prop_map(|((cents, shares, milestones), percents)| {
                let recipients = shares
                    .into_iter()
                    .zip(1..)
                    .map(|(share, user_id)| Recipient { user_id, share })
                    .collect();
                let milestones = milestones
                    .into_iter()
                    .zip(percents)
                    .map(|(milestone, percent)| MilestoneShare { milestone, percent })
                    .collect();
                (Decimal::new(cents, 2), recipients, milestones)
            })
    }

    proptest::proptest! {
        #[test]
        fn commissions_add_up_exactly_to_the_line_and_to_each_recipient(
            (total, recipients, milestones) in plan(),
        ) {
            let line = PlanLine::new(CommissionType::SalesAgent, Basis::Fixed(Decimal::ONE), &recipients, &milestones);
            proptest::prop_assert!(line.is_ok(), "{:?}", line);
            let parts = commission_parts(total, &recipients, &milestones, aud()).unwrap();
            proptest::prop_assert_eq!(parts.len(), recipients.len() * milestones.len());
            proptest::prop_assert_eq!(parts.iter().map(|p| p.amount).sum::<Decimal>(), total);
            let cent = Decimal::new(1, 2);
            for (recipient, own) in recipients.iter().zip(parts.chunks(milestones.len())) {
                let amount: Decimal = own.iter().map(|p| p.amount).sum();
                // Within a cent of the exact share of the line…
                let exact = total * recipient.share / Decimal::ONE_HUNDRED;
                proptest::prop_assert!((amount - exact).abs() < cent);
                for (part, milestone) in own.iter().zip(&milestones) {
                    proptest::prop_assert_eq!(part.user_id, recipient.user_id);
                    proptest::prop_assert_eq!(part.milestone, milestone.milestone);
                    proptest::prop_assert_eq!(part.amount.scale(), 2);
                    // …and each part within a cent of its exact share of that.
                    let exact = amount * milestone.percent / Decimal::ONE_HUNDRED;
                    proptest::prop_assert!((part.amount - exact).abs() < cent);
                }
            }
            proptest::prop_assert_eq!(commission_parts(total, &recipients, &milestones, aud()).unwrap(), parts);
        }
    }
}
