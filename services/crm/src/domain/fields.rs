//! The shapes CRM records share: phone numbers (kept as entered and in E.164 for
//! dedupe and search), tags, and custom fields in the seed's JSON shape
//! (`{"fields": [{"name", "label", "type", "options", "value"}]}`).

use std::collections::HashSet;

use phonenumber::country;
use serde_json::{Value, json};

/// The E.164 form of `phone` (`+61412345678`), read in `country` when it carries no
/// country code; `None` when empty or not a valid number (it is kept as entered).
pub fn e164(phone: &str, country: country::Id) -> Option<String> {
    let phone = phone.trim();
    if phone.is_empty() {
        return None;
    }
    let parsed = phonenumber::parse(Some(country), phone).ok()?;
    phonenumber::is_valid(&parsed)
        .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// The country a record's `country` names (an ISO code such as "AU", or a common
/// English name), else `default`.
pub fn country_of(record_country: &str, default: country::Id) -> country::Id {
    let c = record_country.trim();
    if c.len() == 2
        && let Ok(id) = c.to_uppercase().parse::<country::Id>()
    {
        return id;
    }
    const NAMES: &[(&str, country::Id)] = &[
        ("australia", country::Id::AU),
        ("new zealand", country::Id::NZ),
        ("united kingdom", country::Id::GB),
        ("united states", country::Id::US),
        ("usa", country::Id::US),
        ("singapore", country::Id::SG),
        ("canada", country::Id::CA),
        ("ireland", country::Id::IE),
        ("india", country::Id::IN),
        ("china", country::Id::CN),
        ("hong kong", country::Id::HK),
    ];
    let lower = c.to_lowercase();
    NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .map_or(default, |(_, id)| *id)
}

/// A phone as entered: at most 50 characters, made of digits and the usual separators.
pub fn phone(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.chars().count() > 50 {
        return Err("must be at most 50 characters".into());
    }
    if s.chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        Ok(())
    } else {
        Err("may hold only digits, spaces and + - ( ) .".into())
    }
}

/// Tags, trimmed and de-duplicated in order: each 1 to 50 characters, at most 50.
pub fn tags(tags: &[String]) -> Result<Vec<String>, String> {
    if tags.len() > 50 {
        return Err("at most 50 tags".into());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || tag.chars().count() > 50 {
            return Err("each tag must be 1 to 50 characters".into());
        }
        if seen.insert(tag.to_owned()) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// The kinds of custom field.
pub const FIELD_TYPES: &[&str] = &[
    "text",
    "textarea",
    "number",
    "date",
    "boolean",
    "email",
    "phone",
    "url",
    "select",
    "multi_select",
];

/// Most custom fields on one record.
pub const MAX_FIELDS: usize = 100;
/// Most options of one select or multi_select (and so values of a multi_select).
pub const MAX_OPTIONS: usize = 100;
/// Longest option, in characters.
pub const MAX_OPTION_CHARS: usize = 255;
/// Largest stored custom-fields document of one record, in bytes of JSON.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// One custom field as a caller sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomField {
    /// Machine name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Kind (one of [`FIELD_TYPES`]).
    pub kind: String,
    /// The allowed values of a select or multi_select.
    pub options: Vec<String>,
    /// The value of every kind but multi_select.
    pub value: String,
    /// The values of a multi_select.
    pub values: Vec<String>,
}

/// Checks `fields` and returns the stored document, or the violations as
/// (`<index>.<part>`, description) pairs.
///
/// Every check is linear in the input: counts are bounded first, and membership
/// (unique names, a value among the options) goes through hash sets, so a multi_select
/// with many options and values costs no more than reading them.
pub fn custom_fields(fields: &[CustomField]) -> Result<Value, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut stored = Vec::new();
    if fields.len() > MAX_FIELDS {
        // Nothing past the count is read: the caller learns the limit at once.
        return Err(vec![(
            String::new(),
            format!("at most {MAX_FIELDS} custom fields"),
        )]);
    }
    for (i, f) in fields.iter().enumerate() {
        let mut bad = |part: &str, why: String| problems.push((format!("{i}.{part}"), why));
        let name = f.name.trim();
        if crate::domain::pipeline::key(name).is_err() {
            bad(
                "name",
                "must be lowercase letters, digits and underscores, starting with a letter".into(),
            );
        } else if !names.insert(name.to_owned()) {
            bad("name", format!("{name} is given twice"));
        }
        if f.label.chars().count() > 255 {
            bad("label", "must be at most 255 characters".into());
        }
        let kind = f.kind.trim();
        if !FIELD_TYPES.contains(&kind) {
            bad(
                "type",
                format!("must be one of: {}", FIELD_TYPES.join(", ")),
            );
            continue;
        }
        let choice = kind == "select" || kind == "multi_select";
        if f.options.len() > MAX_OPTIONS || f.values.len() > MAX_OPTIONS {
            let part = if f.options.len() > MAX_OPTIONS {
                "options"
            } else {
                "values"
            };
            bad(part, format!("at most {MAX_OPTIONS} entries"));
            continue;
        }
        let mut options = HashSet::with_capacity(f.options.len());
        for option in &f.options {
            if option.trim().is_empty() || option.chars().count() > MAX_OPTION_CHARS {
                bad(
                    "options",
                    format!("each option must be 1 to {MAX_OPTION_CHARS} characters"),
                );
                break;
            }
            if !options.insert(option.as_str()) {
                bad("options", format!("{option:?} is given twice"));
                break;
            }
        }
        if choice && f.options.is_empty() {
            bad("options", format!("a {kind} needs its options"));
        }
        if !choice && !f.options.is_empty() {
            bad("options", format!("a {kind} field has no options"));
        }
        if kind != "multi_select" && !f.values.is_empty() {
            bad("values", "only a multi_select has values; use value".into());
        }
        let value = f.value.trim();
        if kind == "multi_select" {
            if !value.is_empty() {
                bad("value", "a multi_select takes values, not value".into());
            }
            let mut chosen = HashSet::with_capacity(f.values.len());
            if let Some(v) = f.values.iter().find(|v| !options.contains(v.as_str())) {
                bad("values", format!("{v:?} is not one of the options"));
            } else if let Some(v) = f.values.iter().find(|v| !chosen.insert(v.as_str())) {
                bad("values", format!("{v:?} is chosen twice"));
            }
        } else if !value.is_empty()
            && let Err(why) = check_value(kind, value, &options)
        {
            bad("value", why);
        }
        let stored_value = if kind == "multi_select" {
            json!(f.values)
        } else if value.is_empty() {
            Value::Null
        } else {
            json!(value)
        };
        let mut field =
            json!({ "name": name, "label": f.label.trim(), "type": kind, "value": stored_value });
        if choice {
            field["options"] = json!(f.options);
        }
        stored.push(field);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let doc = json!({ "fields": stored });
    let bytes = doc.to_string().len();
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(vec![(
            String::new(),
            format!("take {bytes} bytes stored; at most {MAX_DOCUMENT_BYTES} are accepted"),
        )]);
    }
    Ok(doc)
}

fn check_value(kind: &str, value: &str, options: &HashSet<&str>) -> Result<(), String> {
    match kind {
        "number" => value
            .parse::<rust_decimal::Decimal>()
            .map(|_| ())
            .map_err(|_| "must be a decimal number such as 450000.00".into()),
        "date" => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|_| ())
            .map_err(|_| "must be a date as YYYY-MM-DD".into()),
        "boolean" => match value {
            "true" | "false" => Ok(()),
            _ => Err("must be true or false".into()),
        },
        "email" => crate::domain::validate::email(value),
        "phone" => phone(value),
        "url" => crate::domain::validate::url(value),
        "select" if !options.contains(value) => Err(format!("{value:?} is not one of the options")),
        "text" | "select" => crate::domain::validate::max_len(value, 1000),
        _ => crate::domain::validate::max_len(value, 10_000),
    }
}

/// The custom fields of a stored document (tolerant of documents written before
/// validation: unknown parts are skipped).
pub fn custom_fields_of(doc: &Value) -> Vec<CustomField> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    doc.get("fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    let kind = text(f, "type");
                    let (value, values) = if kind == "multi_select" {
                        (String::new(), list(f.get("value")))
                    } else {
                        (text(f, "value"), Vec::new())
                    };
                    CustomField {
                        name: text(f, "name"),
                        label: text(f, "label"),
                        options: list(f.get("options")),
                        kind,
                        value,
                        values,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: &str, value: &str, options: &[&str]) -> CustomField {
        CustomField {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            value: value.into(),
            values: Vec::new(),
        }
    }

    #[test]
    fn phones_become_e164_in_the_records_country() {
        assert_eq!(
            e164("0412 345 678", country::Id::AU).as_deref(),
            Some("+61412345678")
        );
        assert_eq!(
            e164("+64 21 123 4567", country::Id::AU).as_deref(),
            Some("+64211234567")
        );
        assert_eq!(e164("12", country::Id::AU), None);
        assert_eq!(e164("", country::Id::AU), None);
        assert_eq!(country_of("New Zealand", country::Id::AU), country::Id::NZ);
        assert_eq!(country_of("nz", country::Id::AU), country::Id::NZ);
        assert_eq!(country_of("", country::Id::AU), country::Id::AU);
        assert!(phone("(07) 3123-4567").is_ok() && phone("call me").is_err());
    }

    #[test]
    fn tags_are_trimmed_and_unique() {
        let t = |v: &[&str]| tags(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            t(&[" vip", "vip", "investor"]).unwrap(),
            ["vip", "investor"]
        );
        assert!(t(&[""]).is_err());
        assert!(t(&[&"x".repeat(51)]).is_err());
    }

    #[test]
    fn custom_fields_follow_the_seed_shape_and_a_select_takes_one_of_its_options() {
        let budget = field(
            "budget",
            "select",
            "200k-300k",
            &["100k-200k", "200k-300k", "300k+"],
        );
        let place = field("preferred_location", "text", "Brisbane CBD", &[]);
        let doc = custom_fields(&[budget.clone(), place.clone()]).unwrap();
        assert_eq!(doc["fields"][0]["value"], "200k-300k");
        assert_eq!(doc["fields"][0]["options"][2], "300k+");
        assert_eq!(custom_fields_of(&doc), [budget.clone(), place]);

        let wrong = field("budget", "select", "1m+", &["300k+"]);
        let problems = custom_fields(&[wrong]).unwrap_err();
        assert_eq!(problems[0].0, "0.value");
        let problems = custom_fields(&[
            field("Budget", "text", "", &[]),
            field("a", "colour", "", &[]),
            field("b", "number", "lots", &[]),
            field("c", "date", "31/12/2026", &[]),
            field("b", "boolean", "true", &[]),
        ])
        .unwrap_err();
        let parts: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(parts, ["0.name", "1.type", "2.value", "3.value", "4.name"]);

        let mut multi = field("features", "multi_select", "", &["pool", "study"]);
        multi.values = vec!["pool".into()];
        let doc = custom_fields(std::slice::from_ref(&multi)).unwrap();
        assert_eq!(doc["fields"][0]["value"][0], "pool");
        assert_eq!(custom_fields_of(&doc), [multi]);
    }

    #[test]
    fn a_large_multi_select_is_refused_by_its_counts_before_any_matching() {
        let options: Vec<String> = (0..100_000).map(|i| format!("o{i}")).collect();
        let mut big = field("features", "multi_select", "", &[]);
        big.options = options.clone();
        big.values = options;
        let problems = custom_fields(&[big]).unwrap_err();
        assert_eq!(
            problems,
            [("0.options".to_owned(), "at most 100 entries".to_owned())]
        );

        // At the limits every value is matched once against a set of the options.
        let options: Vec<String> = (0..MAX_OPTIONS).map(|i| format!("o{i}")).collect();
        let mut full = field("features", "multi_select", "", &[]);
        full.options = options.clone();
        full.values = options.into_iter().rev().collect();
        assert!(custom_fields(&[full.clone()]).is_ok());
        full.values.push("o0".into());
        let problems = custom_fields(&[full]).unwrap_err();
        assert_eq!(problems[0].0, "0.values");
    }

    #[test]
    fn options_are_short_and_unique_and_the_document_is_bounded() {
        let long = field("c", "select", "", &[&"o".repeat(MAX_OPTION_CHARS + 1)]);
        assert_eq!(custom_fields(&[long]).unwrap_err()[0].0, "0.options");
        let twice = field("c", "select", "a", &["a", "a"]);
        assert_eq!(custom_fields(&[twice]).unwrap_err()[0].0, "0.options");
        let text = "t".repeat(10_000);
        let big: Vec<CustomField> = (0..7)
            .map(|i| field(&format!("f{i}"), "textarea", &text, &[]))
            .collect();
        let problems = custom_fields(&big).unwrap_err();
        assert_eq!(problems[0].0, "");
        assert!(problems[0].1.contains("bytes"), "{problems:?}");
        assert!(custom_fields(&big[..6]).is_ok());
    }

    fn arbitrary_field() -> impl proptest::strategy::Strategy<Value = CustomField> {
        use proptest::prelude::*;
        let kind = proptest::sample::select(
            FIELD_TYPES
                .iter()
                .map(|k| (*k).to_owned())
                .chain(["colour".to_owned(), String::new()])
                .collect::<Vec<_>>(),
        );
        let word = "[a-z_0-9]{0,6}|\\PC{0,12}";
        (
            word,
            "\\PC{0,20}",
            kind,
            proptest::collection::vec(word, 0..8),
            word,
            proptest::collection::vec(word, 0..8),
        )
            .prop_map(|(name, label, kind, options, value, values)| CustomField {
                name,
                label,
                kind,
                options,
                value,
                values,
            })
    }

    proptest::proptest! {
        #[test]
        fn any_custom_fields_are_checked_without_panic_and_kept_within_bounds(
            fields in proptest::collection::vec(arbitrary_field(), 0..12),
        ) {
            match custom_fields(&fields) {
                Ok(doc) => {
                    proptest::prop_assert!(doc.to_string().len() <= MAX_DOCUMENT_BYTES);
                    let stored = custom_fields_of(&doc);
                    proptest::prop_assert_eq!(stored.len(), fields.len());
                    for f in &stored {
                        proptest::prop_assert!(FIELD_TYPES.contains(&f.kind.as_str()));
                        proptest::prop_assert!(f.options.len() <= MAX_OPTIONS);
                        // Whatever a multi_select holds is among its options.
                        proptest::prop_assert!(f.values.iter().all(|v| f.options.contains(v)));
                    }
                }
                Err(problems) => proptest::prop_assert!(!problems.is_empty()),
            }
        }
    }
}
