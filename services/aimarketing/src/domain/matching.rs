//! Lots that fit a lead, without the wire or the database: what a lead wants, read
//! from its custom fields, and how well one lot meets it.
//!
//! # What a lead wants
//!
//! Custom fields in the seed's shape (`{"name", "type", "value"}`, a multi-select's
//! values as a list), by name:
//!
//! | criterion | field names | read as |
//! |---|---|---|
//! | budget | `budget`, `budget_range`, `price_range` | a range `500k-600k` (`$500,000 - $600,000`, `1m-1.2m`, `500-600k`), open-ended `600k+` (`over`, `from`, `at least` 600k), a ceiling `under 400k` (`up to`, `below`, `max`, `<`), or one amount (a ceiling) |
//! | bedrooms | `bedrooms`, `min_bedrooms` | the fewest bedrooms: the first whole number (`3`, `3+`, `3-4`) |
//! | location | `location`, `preferred_location(s)`, `preferred_suburb(s)` | suburbs, states or project names, split at `,` `;` `/` `\|` |
//! | features | `features`, `wanted_features`, `preferred_features` | feature names, split the same way |
//!
//! The first readable budget and bedrooms field counts; locations and features are
//! united. An unreadable value states nothing.
//!
//! # The score
//!
//! Each criterion the lead states earns up to its weight:
//!
//! - **budget, 40**: all of it for a price within the range; a price outside it by at
//!   most 10 % of the nearer bound earns the part that is left (40 × (1 − gap ÷ 10 % of
//!   the bound)), so 5 % over earns 20; further out, or unpriced, none.
//! - **bedrooms, 25**: all of it for at least the number wanted, half (12) for one
//!   fewer, none for fewer still or unknown.
//! - **location, 20**: all of it when a wanted place is the lot's project's suburb,
//!   name or state (word for word, either within the other: `Yeronga QLD` and `QLD`
//!   both name a project in Yeronga, QLD), half (10) when a wanted place only
//!   mentions the project's state (`Fairfield QLD` for a project in Yeronga, QLD),
//!   none otherwise or when the project is unknown.
//! - **features, 15**: the share of the wanted features the lot has (names compared
//!   without case), 15 × found ÷ wanted.
//!
//! Points are rounded half away from zero. A lot's score is
//! `round(100 × points earned ÷ points the stated criteria could earn)`, 0 to 100.
//! Lots rank by score, then by lower price (unpriced last), then by lot id: the same
//! lots and lead always give the same order.

use std::cmp::Ordering;

use rust_decimal::{Decimal, RoundingStrategy};

/// The points of each criterion.
pub const BUDGET_POINTS: i32 = 40;
/// The points of the bedrooms criterion.
pub const BEDROOMS_POINTS: i32 = 25;
/// The points of the location criterion.
pub const LOCATION_POINTS: i32 = 20;
/// The points of the features criterion.
pub const FEATURES_POINTS: i32 = 15;

/// Custom field names read as each criterion.
const BUDGET_FIELDS: &[&str] = &["budget", "budget_range", "price_range"];
const BEDROOMS_FIELDS: &[&str] = &["bedrooms", "min_bedrooms"];
const LOCATION_FIELDS: &[&str] = &[
    "location",
    "preferred_location",
    "preferred_locations",
    "preferred_suburb",
    "preferred_suburbs",
];
const FEATURES_FIELDS: &[&str] = &["features", "wanted_features", "preferred_features"];

/// The most places or features read from a lead.
const MAX_TERMS: usize = 20;

/// The longest place or feature name read.
const MAX_TERM_CHARS: usize = 100;

/// How far outside the budget a price still earns points, as a share of the bound.
const BUDGET_TOLERANCE: Decimal = Decimal::from_parts(10, 0, 0, false, 2);

/// A custom field of a lead, as far as matching reads it.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// Its machine name (`budget`).
    pub name: &'a str,
    /// Its value (every kind but a multi-select).
    pub value: &'a str,
    /// A multi-select's values.
    pub values: &'a [String],
}

/// A budget as the lead wrote it and as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// As written (`500k-600k`), for the reasons.
    pub written: String,
    /// The lowest price; none when open below.
    pub min: Option<Decimal>,
    /// The highest price; none when open above.
    pub max: Option<Decimal>,
}

/// What a lead wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Criteria {
    /// Its budget.
    pub budget: Option<Budget>,
    /// The fewest bedrooms.
    pub min_bedrooms: Option<i32>,
    /// Preferred places, as written.
    pub locations: Vec<String>,
    /// Wanted features, as written.
    pub features: Vec<String>,
}

impl Criteria {
    /// What the custom fields `fields` state.
    pub fn from_fields(fields: &[Field<'_>]) -> Self {
        let named = |names: &[&str]| {
            fields
                .iter()
                .filter(move |f| names.contains(&f.name.trim().to_ascii_lowercase().as_str()))
                .flat_map(|f| {
                    let values: Vec<&str> = if f.values.is_empty() {
                        vec![f.value]
                    } else {
                        f.values.iter().map(String::as_str).collect()
                    };
                    values
                })
                .filter(|v| !v.trim().is_empty())
                .collect::<Vec<&str>>()
        };
        Self {
            budget: named(BUDGET_FIELDS).into_iter().find_map(parse_budget),
            min_bedrooms: named(BEDROOMS_FIELDS).into_iter().find_map(parse_bedrooms),
            locations: terms(&named(LOCATION_FIELDS)),
            features: terms(&named(FEATURES_FIELDS)),
        }
    }

    /// Whether the lead states anything to match.
    pub fn is_empty(&self) -> bool {
        self.budget.is_none()
            && self.min_bedrooms.is_none()
            && self.locations.is_empty()
            && self.features.is_empty()
    }

    /// The points the stated criteria could earn.
    fn possible(&self) -> i32 {
        let mut points = 0;
        if self.budget.is_some() {
            points += BUDGET_POINTS;
        }
        if self.min_bedrooms.is_some() {
            points += BEDROOMS_POINTS;
        }
        if !self.locations.is_empty() {
            points += LOCATION_POINTS;
        }
        if !self.features.is_empty() {
            points += FEATURES_POINTS;
        }
        points
    }
}

/// Where a lot is: its project's name, suburb and state (empty when not set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// The project's name.
    pub project: String,
    /// Its suburb.
    pub suburb: String,
    /// Its state (`QLD`).
    pub state: String,
}

/// A lot, as far as matching reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lot {
    /// Its id.
    pub id: i64,
    /// Its price; none when unpriced.
    pub price: Option<Decimal>,
    /// Its bedrooms; none when unknown.
    pub bedrooms: Option<i32>,
    /// The names of its features.
    pub features: Vec<String>,
    /// Where it is; none when its project is not known to the caller.
    pub place: Option<Place>,
}

/// How a lot meets one criterion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// `budget`, `bedrooms`, `location` or `features`.
    pub criterion: &'static str,
    /// Points earned.
    pub points: i32,
    /// Points it could earn.
    pub max_points: i32,
    /// In words.
    pub detail: String,
}

/// How well a lot fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// 0 to 100.
    pub score: i32,
    /// One per stated criterion, in the order budget, bedrooms, location, features.
    pub reasons: Vec<Reason>,
}

/// How well `lot` meets `criteria` (see the module docs).
pub fn score(criteria: &Criteria, lot: &Lot) -> Fit {
    let mut reasons = Vec::new();
    if let Some(budget) = &criteria.budget {
        reasons.push(budget_reason(budget, lot.price));
    }
    if let Some(wanted) = criteria.min_bedrooms {
        reasons.push(bedrooms_reason(wanted, lot.bedrooms));
    }
    if !criteria.locations.is_empty() {
        reasons.push(location_reason(&criteria.locations, lot.place.as_ref()));
    }
    if !criteria.features.is_empty() {
        reasons.push(features_reason(&criteria.features, &lot.features));
    }
    let earned: i32 = reasons.iter().map(|r| r.points).sum();
    let possible = criteria.possible();
    let score = if possible == 0 {
        0
    } else {
        round(Decimal::from(100 * earned) / Decimal::from(possible))
    };
    Fit { score, reasons }
}

/// The ranking order: higher score first, then lower price (unpriced last), then
/// lower lot id.
pub fn rank(a: (&Fit, &Lot), b: (&Fit, &Lot)) -> Ordering {
    b.0.score
        .cmp(&a.0.score)
        .then_with(|| match (a.1.price, b.1.price) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.1.id.cmp(&b.1.id))
}

fn budget_reason(budget: &Budget, price: Option<Decimal>) -> Reason {
    let reason = |points, detail| Reason {
        criterion: "budget",
        points,
        max_points: BUDGET_POINTS,
        detail,
    };
    let Some(price) = price else {
        return reason(0, "the lot has no price".to_owned());
    };
    let (gap, bound, side) = match (budget.min, budget.max) {
        (Some(min), _) if price < min => (min - price, min, "under"),
        (_, Some(max)) if price > max => (price - max, max, "over"),
        _ => {
            return reason(
                BUDGET_POINTS,
                format!("{} is within {}", money(price), budget.written),
            );
        }
    };
    let tolerance = bound * BUDGET_TOLERANCE;
    let points = if tolerance > Decimal::ZERO && gap < tolerance {
        round(Decimal::from(BUDGET_POINTS) * (tolerance - gap) / tolerance)
    } else {
        0
    };
    reason(
        points,
        format!(
            "{} is {} {side} {}",
            money(price),
            money(gap),
            budget.written
        ),
    )
}

fn bedrooms_reason(wanted: i32, bedrooms: Option<i32>) -> Reason {
    let (points, detail) = match bedrooms {
        None => (0, "the lot's bedrooms are not known".to_owned()),
        Some(b) if b >= wanted => (BEDROOMS_POINTS, format!("{b} bedrooms, {wanted} wanted")),
        Some(b) => (
            if b + 1 == wanted {
                BEDROOMS_POINTS / 2
            } else {
                0
            },
            format!("{b} of {wanted} bedrooms"),
        ),
    };
    Reason {
        criterion: "bedrooms",
        points,
        max_points: BEDROOMS_POINTS,
        detail,
    }
}

fn location_reason(wanted: &[String], place: Option<&Place>) -> Reason {
    let reason = |points, detail| Reason {
        criterion: "location",
        points,
        max_points: LOCATION_POINTS,
        detail,
    };
    let Some(place) = place else {
        return reason(0, "the lot's project is not known".to_owned());
    };
    let at = [
        place.project.as_str(),
        place.suburb.as_str(),
        place.state.as_str(),
    ]
    .iter()
    .map(|s| s.trim())
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(", ");
    let (suburb, project, state) = (
        words(&place.suburb),
        words(&place.project),
        words(&place.state),
    );
    let mut mentions_state = None;
    for term in wanted {
        let term = term.as_str();
        let term_words = words(term);
        // The wanted place names the project's suburb, name or state, or is part of
        // one of them; naming its state beside another place is not enough.
        let full = [&suburb, &project, &state]
            .iter()
            .any(|field| within(&term_words, field))
            || [&suburb, &project]
                .iter()
                .any(|field| within(field, &term_words));
        if full {
            return reason(LOCATION_POINTS, format!("{term} matches {at}"));
        }
        if mentions_state.is_none() && within(&state, &term_words) {
            mentions_state = Some(term);
        }
    }
    match mentions_state {
        Some(term) => reason(
            LOCATION_POINTS / 2,
            format!("{term} is in the state of {at}"),
        ),
        None => reason(0, format!("{at} is not in {}", wanted.join(", "))),
    }
}

fn features_reason(wanted: &[String], has: &[String]) -> Reason {
    let has: Vec<String> = has.iter().map(|f| f.trim().to_lowercase()).collect();
    let found: Vec<&str> = wanted
        .iter()
        .filter(|w| has.contains(&w.to_lowercase()))
        .map(String::as_str)
        .collect();
    let points = round(
        Decimal::from(FEATURES_POINTS) * Decimal::from(found.len()) / Decimal::from(wanted.len()),
    );
    let detail = if found.is_empty() {
        format!("none of {}", wanted.join(", "))
    } else {
        format!(
            "{} of {} features: {}",
            found.len(),
            wanted.len(),
            found.join(", ")
        )
    };
    Reason {
        criterion: "features",
        points,
        max_points: FEATURES_POINTS,
        detail,
    }
}

/// Rounds half away from zero to a whole number.
fn round(d: Decimal) -> i32 {
    d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .try_into()
        .unwrap_or(0)
}

/// An amount as people read it: `$549,000`, or `$549,000.50` with cents.
pub fn money(d: Decimal) -> String {
    let cents = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let whole = cents.trunc();
    let fraction = cents - whole;
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    if fraction.is_zero() {
        format!("{sign}${grouped}")
    } else {
        let mut cents = fraction.abs();
        cents.rescale(2);
        let cents = cents.to_string();
        format!("{sign}${grouped}{}", cents.trim_start_matches('0'))
    }
}

/// The lower-case words of `s` (letters and digits).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `part` (not empty) appears in `whole` as consecutive words.
fn within(part: &[String], whole: &[String]) -> bool {
    !part.is_empty() && whole.windows(part.len()).any(|w| w == part)
}

/// Places or features as written: split at `,` `;` `/` `|`, trimmed, without
/// duplicates (ignoring case), at most [`MAX_TERMS`] of at most [`MAX_TERM_CHARS`].
fn terms(values: &[&str]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for term in values
        .iter()
        .flat_map(|v| v.split([',', ';', '/', '|']))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TERM_CHARS)
    {
        if kept.len() == MAX_TERMS {
            break;
        }
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(term)) {
            kept.push(term.to_owned());
        }
    }
    kept
}

/// The fewest bedrooms in `raw`: its first whole number, 1 to 20.
fn parse_bedrooms(raw: &str) -> Option<i32> {
    let digits: String = raw
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|n| (1..=20).contains(n))
}

/// A budget as the module docs describe it; none when unreadable.
fn parse_budget(raw: &str) -> Option<Budget> {
    let written = raw.trim().to_owned();
    let text = written.to_lowercase();
    let text = text.trim();
    let budget = |min, max| {
        Some(Budget {
            written: written.clone(),
            min,
            max,
        })
    };
    if let Some(rest) = text.strip_suffix('+') {
        return budget(Some(amount(rest, None)?), None);
    }
    for prefix in ["over", "from", "at least", "min", ">=", ">"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return budget(Some(amount(rest, None)?), None);
        }
    }
    if let Some(rest) = text.strip_suffix("or more") {
        return budget(Some(amount(rest, None)?), None);
    }
    for prefix in ["under", "up to", "below", "less than", "max", "<=", "<"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return budget(None, Some(amount(rest, None)?));
        }
    }
    let range = text
        .split_once(" to ")
        .or_else(|| text.split_once('-'))
        .or_else(|| text.split_once('–'));
    if let Some((low, high)) = range {
        let high_unit = unit(high);
        let high = amount(high, None)?;
        let low = amount(low, high_unit)?;
        return if low <= high {
            budget(Some(low), Some(high))
        } else {
            None
        };
    }
    budget(None, Some(amount(text, None)?))
}

/// The multiplier an amount's suffix names (`k`, `m`), if any.
fn unit(raw: &str) -> Option<Decimal> {
    let raw = raw.trim();
    if raw.ends_with('k') {
        Some(Decimal::from(1_000))
    } else if raw.ends_with('m') {
        Some(Decimal::from(1_000_000))
    } else {
        None
    }
}

/// An amount: digits with an optional `$`, thousands commas, decimals and a `k` or
/// `m` suffix (else `default_unit`'s, for the low end of `500-600k`); positive.
fn amount(raw: &str, default_unit: Option<Decimal>) -> Option<Decimal> {
    let raw = raw.trim();
    let multiplier = unit(raw).or(default_unit).unwrap_or(Decimal::ONE);
    let number: String = raw
        .trim_end_matches(['k', 'm'])
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let value = number.parse::<Decimal>().ok()?.checked_mul(multiplier)?;
    (value > Decimal::ZERO).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn range(raw: &str) -> Option<(Option<Decimal>, Option<Decimal>)> {
        parse_budget(raw).map(|b| (b.min, b.max))
    }

    #[test]
    fn budgets_are_read_in_the_shapes_people_write_them() {
        let both = |lo: &str, hi: &str| Some((Some(d(lo)), Some(d(hi))));
        assert_eq!(range("500k-600k"), both("500000", "600000"));
        assert_eq!(range("$500,000 - $600,000"), both("500000", "600000"));
        assert_eq!(range("500-600k"), both("500000", "600000"));
        assert_eq!(range("1m-1.2m"), both("1000000", "1200000"));
        assert_eq!(range("450k to 1.1m"), both("450000", "1100000"));
        assert_eq!(range("600k+"), Some((Some(d("600000")), None)));
        assert_eq!(range("Over $750k"), Some((Some(d("750000")), None)));
        assert_eq!(range("under 400k"), Some((None, Some(d("400000")))));
        assert_eq!(range("550000.00"), Some((None, Some(d("550000")))));
        for unreadable in ["", "ask me", "600k-500k", "-5k", "k", "1..2k", "0"] {
            assert_eq!(range(unreadable), None, "{unreadable:?}");
        }
    }

    #[test]
    fn criteria_come_from_the_fields_that_name_them() {
        let features = vec!["Pool".to_owned(), "pool".to_owned(), "Solar".to_owned()];
        let fields = [
            Field {
                name: "budget",
                value: "not sure",
                values: &[],
            },
            Field {
                name: "Budget_Range",
                value: "500k-600k",
                values: &[],
            },
            Field {
                name: "bedrooms",
                value: "3+",
                values: &[],
            },
            Field {
                name: "preferred_location",
                value: "Yeronga; Fairfield / yeronga",
                values: &[],
            },
            Field {
                name: "features",
                value: "",
                values: &features,
            },
            Field {
                name: "favourite_colour",
                value: "green",
                values: &[],
            },
        ];
        let criteria = Criteria::from_fields(&fields);
        assert_eq!(
            criteria.budget.as_ref().map(|b| b.written.as_str()),
            Some("500k-600k")
        );
        assert_eq!(criteria.min_bedrooms, Some(3));
        assert_eq!(criteria.locations, ["Yeronga", "Fairfield"]);
        assert_eq!(criteria.features, ["Pool", "Solar"]);
        assert!(Criteria::from_fields(&fields[5..]).is_empty());
    }

    fn wants() -> Criteria {
        Criteria {
            budget: parse_budget("500k-600k"),
            min_bedrooms: Some(4),
            locations: vec!["Yeronga".into()],
            features: vec!["Pool".into(), "Solar".into()],
        }
    }

    fn lot(price: &str, bedrooms: i32, suburb: &str, features: &[&str]) -> Lot {
        Lot {
            id: 1,
            price: Some(d(price)),
            bedrooms: Some(bedrooms),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            place: Some(Place {
                project: "Riverside Estate".into(),
                suburb: suburb.into(),
                state: "QLD".into(),
            }),
        }
    }

    fn points(fit: &Fit) -> Vec<(&str, i32)> {
        fit.reasons
            .iter()
            .map(|r| (r.criterion, r.points))
            .collect()
    }

    #[test]
    fn a_lot_meeting_everything_scores_100_with_a_reason_per_criterion() {
        let fit = score(
            &wants(),
            &lot("549000.00", 4, "Yeronga", &["pool", "Solar"]),
        );
        assert_eq!(fit.score, 100);
        assert_eq!(
            points(&fit),
            [
                ("budget", 40),
                ("bedrooms", 25),
                ("location", 20),
                ("features", 15)
            ]
        );
        assert_eq!(fit.reasons[0].detail, "$549,000 is within 500k-600k");
        assert_eq!(fit.reasons[1].detail, "4 bedrooms, 4 wanted");
        assert_eq!(
            fit.reasons[2].detail,
            "Yeronga matches Riverside Estate, Yeronga, QLD"
        );
        assert_eq!(fit.reasons[3].detail, "2 of 2 features: Pool, Solar");
    }

    #[test]
    fn nearly_meeting_a_criterion_earns_part_of_its_points() {
        // 5 % over the top of the budget: half the budget points; a bedroom short:
        // half; the state only: half; one feature of two: half (7.5 → 8).
        let mut criteria = wants();
        criteria.locations = vec!["Fairfield QLD".into()];
        let fit = score(&criteria, &lot("630000", 3, "Yeronga", &["Pool"]));
        assert_eq!(
            points(&fit),
            [
                ("budget", 20),
                ("bedrooms", 12),
                ("location", 10),
                ("features", 8)
            ]
        );
        assert_eq!(fit.score, 50);
        assert_eq!(fit.reasons[0].detail, "$630,000 is $30,000 over 500k-600k");
        assert_eq!(fit.reasons[1].detail, "3 of 4 bedrooms");
        // 10 % or more outside, two bedrooms short, elsewhere, no feature: nothing.
        let fit = score(&wants(), &lot("450000", 2, "Fairfield", &[]));
        assert_eq!(fit.score, 0);
        assert_eq!(fit.reasons[0].detail, "$450,000 is $50,000 under 500k-600k");
        assert_eq!(fit.reasons[3].detail, "none of Pool, Solar");
    }

    #[test]
    fn only_stated_criteria_count_and_unknowns_earn_nothing() {
        let criteria = Criteria {
            min_bedrooms: Some(3),
            ..Criteria::default()
        };
        let fit = score(&criteria, &lot("900000", 3, "Anywhere", &[]));
        assert_eq!((fit.score, fit.reasons.len()), (100, 1));
        let unknown = Lot {
            id: 2,
            ..Lot::default()
        };
        let fit = score(&wants(), &unknown);
        assert_eq!(fit.score, 0);
        assert_eq!(fit.reasons[0].detail, "the lot has no price");
        assert_eq!(fit.reasons[2].detail, "the lot's project is not known");
    }

    #[test]
    fn a_place_matches_by_whole_words_either_way() {
        let mut criteria = Criteria {
            locations: vec!["QLD".into()],
            ..Criteria::default()
        };
        assert_eq!(
            score(&criteria, &lot("1", 1, "Yeronga", &[])).score,
            100,
            "a state is a place"
        );
        criteria.locations = vec!["riverside estate".into()];
        assert_eq!(score(&criteria, &lot("1", 1, "Yeronga", &[])).score, 100);
        criteria.locations = vec!["Yer".into()];
        assert_eq!(score(&criteria, &lot("1", 1, "Yeronga", &[])).score, 0);
        criteria.locations = vec!["Brisbane".into()];
        assert_eq!(
            score(&criteria, &lot("1", 1, "South Brisbane", &[])).score,
            100
        );
    }

    #[test]
    fn ranking_is_by_score_then_lower_price_then_id() {
        let criteria = Criteria {
            min_bedrooms: Some(3),
            ..Criteria::default()
        };
        let mut lots = [
            Lot {
                id: 4,
                price: None,
                bedrooms: Some(3),
                ..Lot::default()
            },
            Lot {
                id: 3,
                price: Some(d("600000")),
                bedrooms: Some(3),
                ..Lot::default()
            },
            Lot {
                id: 2,
                price: Some(d("500000")),
                bedrooms: Some(3),
                ..Lot::default()
            },
            Lot {
                id: 1,
                price: Some(d("500000")),
                bedrooms: Some(2),
                ..Lot::default()
            },
            Lot {
                id: 5,
                price: Some(d("500000")),
                bedrooms: Some(4),
                ..Lot::default()
            },
        ]
        .map(|l| (score(&criteria, &l), l));
        lots.sort_by(|a, b| rank((&a.0, &a.1), (&b.0, &b.1)));
        let order: Vec<i64> = lots.iter().map(|(_, l)| l.id).collect();
        assert_eq!(order, [2, 5, 3, 4, 1]);
    }

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(d("549000.00")), "$549,000");
        assert_eq!(money(d("1234567.5")), "$1,234,567.50");
        assert_eq!(money(d("999")), "$999");
        assert_eq!(money(d("0.05")), "$0.05");
    }
}
