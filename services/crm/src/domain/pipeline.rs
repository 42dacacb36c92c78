//! The pipeline every tenant starts with, taken from how Fusion's customers sell house
//! and land: a lead is worked (new → nurture / hot / call back, or not interested), and
//! a deal goes from the first property enquiry through reservation, contracts, finance
//! and construction to handover, or crashes.

/// A lead status: key, label, whether it closes the lead.
pub const DEFAULT_LEAD_STATUSES: &[(&str, &str, bool)] = &[
    ("new", "New", false),
    ("nurture", "Nurture", false),
    ("hot", "Hot", false),
    ("call_back", "Call back", false),
    ("not_interested", "Not interested", true),
];

/// A deal stage: key, label, outcome (open, won or lost), default probability.
pub const DEFAULT_DEAL_STAGES: &[(&str, &str, &str, i32)] = &[
    ("property_enquiry", "Property enquiry", "open", 10),
    ("property_reserved", "Property reserved", "open", 30),
    ("signed_contract", "Signed contract", "open", 50),
    ("unconditional", "Unconditional", "open", 70),
    ("bc_required", "Building contract required", "open", 75),
    ("land_settled", "Land settled", "open", 80),
    ("construction", "Construction", "open", 90),
    ("settlement_handover", "Settlement and handover", "won", 100),
    ("crashed", "Crashed", "lost", 0),
];

/// The outcomes a deal stage can have.
pub const OUTCOMES: &[&str] = &["open", "won", "lost"];

/// A pipeline key: lowercase letters, digits and underscores, starting with a letter,
/// at most 50 characters.
pub fn key(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 50
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("must be lowercase letters, digits and underscores, starting with a letter (e.g. call_back)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_keys_with_one_won_and_one_lost_stage() {
        for (k, _, _) in DEFAULT_LEAD_STATUSES {
            key(k).unwrap();
        }
        for (k, _, outcome, p) in DEFAULT_DEAL_STAGES {
            key(k).unwrap();
            assert!(OUTCOMES.contains(outcome) && (0..=100).contains(p));
        }
        let count = |o: &str| DEFAULT_DEAL_STAGES.iter().filter(|s| s.2 == o).count();
        assert_eq!((count("won"), count("lost")), (1, 1));
        assert!(key("Hot").is_err() && key("1st").is_err() && key("call-back").is_err());
    }
}
