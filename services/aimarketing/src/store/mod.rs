//! ai-marketing's store: every SQL statement of the context, one module per aggregate,
//! and what its resources share (request ids, field conversion). `grpc` calls down
//! into it; it never calls up.

pub(crate) mod ai_settings;
pub(crate) mod campaign_leads;
pub(crate) mod campaign_results;
pub(crate) mod campaigns;
pub(crate) mod conversations;
pub(crate) mod prompts;
pub(crate) mod usage;

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use fusion_db::idempotency;
use fusion_db::resource::{self, Val, Values};
use fusion_service::api::parse_date;

use crate::DOMAIN;
use crate::error::AiMarketingError;

/// This context's request ids (AIP-155), kept seven days.
pub(crate) const REQUEST_IDS: idempotency::RequestIds =
    idempotency::RequestIds::new(DOMAIN, "ai_marketing.idempotency_keys");

/// Converts the fields named in `fields` into column values (see
/// [`resource::values_of`]).
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, AiMarketingError> {
    resource::values_of(DOMAIN, prefix, fields, convert).map_err(|e| match e.kind() {
        fusion_db::Kind::Invalid(violations) => AiMarketingError::Invalid(violations.clone()),
        _ => e.into(),
    })
}

/// Tags as stored (a JSON array): trimmed and de-duplicated in order, each 1 to 50
/// characters, at most 50.
pub(crate) fn tags_val(tags: &[String]) -> Result<Val, String> {
    if tags.len() > 50 {
        return Err("at most 50 tags".into());
    }
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || tag.chars().count() > 50 {
            return Err("each tag must be 1 to 50 characters".into());
        }
        fusion_db::values::text(tag)?;
        if seen.insert(tag) {
            kept.push(tag.to_owned());
        }
    }
    Ok(Val::Json(serde_json::json!(kept)))
}

/// Tags as read back.
pub(crate) fn tags_of(stored: Option<&serde_json::Value>) -> Vec<String> {
    stored
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A decimal as the API writes it: plain, with `places` decimals.
pub(crate) fn places(mut d: Decimal, places: u32) -> String {
    d.rescale(places);
    d.to_string()
}

/// A `google.type.Date` from the wire; unset (or all zero) is none.
pub(crate) fn date_of(
    d: &Option<fusion_proto::google::r#type::Date>,
) -> Result<Option<NaiveDate>, String> {
    match d {
        Some(d) => parse_date(d.year, d.month, d.day),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        let Val::Json(kept) = tags_val(&[" vip ".into(), "vip".into(), "spring".into()]).unwrap()
        else {
            panic!("tags are JSON");
        };
        assert_eq!(tags_of(Some(&kept)), ["vip", "spring"]);
        assert!(tags_val(&[String::new()]).is_err());
        assert!(tags_val(&["x".repeat(51)]).is_err());
        assert!(tags_val(&vec!["t".to_owned(); 51]).is_err());
    }
}
