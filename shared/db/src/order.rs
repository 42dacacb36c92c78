//! `order_by` (AIP-132): `"create_time desc, last_name"`, against an allowed list;
//! `id` is always the final tie-breaker so keyset pages are total.

use crate::filter::{FieldSpec, find_field};

/// Longest `order_by` accepted, in characters.
pub const MAX_ORDER_BY_LEN: usize = 500;
/// Most fields one `order_by` may name (`id`, the tie-breaker, is added after them).
pub const MAX_ORDER_TERMS: usize = 5;

/// One ordering term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTerm {
    /// The whitelisted field.
    pub field: FieldSpec,
    /// Descending?
    pub desc: bool,
}

/// Parses `order_by` against `allowed` (API names, each also in `fields`). The empty
/// string means `default`.
pub fn parse_order_by(
    order_by: &str,
    default: &str,
    allowed: &[&str],
    fields: &[FieldSpec],
) -> Result<Vec<OrderTerm>, String> {
    let source = if order_by.trim().is_empty() {
        default
    } else {
        order_by
    };
    if source.chars().count() > MAX_ORDER_BY_LEN {
        return Err(format!("must be at most {MAX_ORDER_BY_LEN} characters"));
    }
    if source.split(',').count() > MAX_ORDER_TERMS {
        return Err(format!("may name at most {MAX_ORDER_TERMS} fields"));
    }
    let mut terms: Vec<OrderTerm> = Vec::new();
    for raw in source.split(',') {
        let words: Vec<&str> = raw.split_whitespace().collect();
        let (name, desc) = match words.as_slice() {
            [name] => (*name, false),
            [name, dir] if dir.eq_ignore_ascii_case("asc") => (*name, false),
            [name, dir] if dir.eq_ignore_ascii_case("desc") => (*name, true),
            _ => {
                return Err(format!(
                    "cannot read {:?}: write `field` or `field desc`",
                    raw.trim()
                ));
            }
        };
        if name == "id" {
            // `id` may be named explicitly (to choose its direction); it ends the list.
            terms.push(OrderTerm {
                field: FieldSpec::new("id", "id", crate::filter::FieldKind::Int),
                desc,
            });
            return Ok(terms);
        }
        if !allowed.contains(&name) {
            return Err(format!(
                "cannot order by {name:?}; allowed: {}",
                allowed.join(", ")
            ));
        }
        let Some(field) = find_field(fields, name) else {
            return Err(format!("cannot order by {name:?}"));
        };
        if terms.iter().any(|t| t.field.name == name) {
            return Err(format!("{name:?} appears twice"));
        }
        terms.push(OrderTerm {
            field: *field,
            desc,
        });
    }
    terms.push(OrderTerm {
        field: FieldSpec::new("id", "id", crate::filter::FieldKind::Int),
        desc: terms.first().is_some_and(|t| t.desc),
    });
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FieldKind;

    const FIELDS: &[FieldSpec] = &[
        FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
        FieldSpec::new("last_name", "last_name", FieldKind::Text),
    ];

    #[test]
    fn id_is_always_the_last_tie_breaker() {
        let terms = parse_order_by(
            "create_time desc, last_name",
            "",
            &["create_time", "last_name"],
            FIELDS,
        )
        .unwrap();
        let names: Vec<_> = terms.iter().map(|t| (t.field.column, t.desc)).collect();
        assert_eq!(
            names,
            [("created_at", true), ("last_name", false), ("id", true)]
        );
    }

    #[test]
    fn unknown_and_malformed_terms_are_rejected() {
        assert!(parse_order_by("email", "", &["last_name"], FIELDS).is_err());
        assert!(parse_order_by("last_name sideways", "", &["last_name"], FIELDS).is_err());
        assert!(parse_order_by("last_name, last_name", "", &["last_name"], FIELDS).is_err());
    }

    #[test]
    fn empty_means_the_default() {
        let terms = parse_order_by(" ", "last_name", &["last_name"], FIELDS).unwrap();
        assert_eq!(terms[0].field.name, "last_name");
    }

    #[test]
    fn length_and_fields_are_bounded() {
        let allowed = &["create_time", "last_name"];
        assert!(parse_order_by(&" ".repeat(MAX_ORDER_BY_LEN + 1), "", allowed, FIELDS).is_err());
        let many = ["last_name"; MAX_ORDER_TERMS + 1].join(",");
        let e = parse_order_by(&many, "", allowed, FIELDS).unwrap_err();
        assert!(e.contains("at most"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_order_by_names_only_allowed_columns(input in "\\PC{0,80}|((create_time|last_name|id|x)( (asc|desc|up))?,?){0,7}") {
            if let Ok(terms) = parse_order_by(&input, "last_name", &["create_time", "last_name"], FIELDS) {
                proptest::prop_assert!(terms.len() <= MAX_ORDER_TERMS + 1);
                for t in &terms {
                    proptest::prop_assert!(["created_at", "last_name", "id"].contains(&t.field.column));
                }
                proptest::prop_assert_eq!(terms.last().map(|t| t.field.column), Some("id"));
            }
        }
    }
}
