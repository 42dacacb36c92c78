//! The request plumbing every resource API shares: timestamps, dates and decimals on the
//! wire, etags (AIP-154), update masks (AIP-134), ids, and validation errors.
//!
//! Each context names its error domain once (`const API: Api = Api::new("property.fusion")`)
//! and calls these through it, so no service keeps its own copy.

use chrono::{DateTime, NaiveDate, Utc};
use prost_types::{FieldMask, Timestamp};
use rust_decimal::Decimal;
use tonic::Status;

use fusion_proto::errors::{self, FieldViolation};

/// A context's error domain, and the checks that raise errors in it.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    domain: &'static str,
}

impl Api {
    /// The API of a context whose errors carry `domain` (`crm.fusion`).
    pub const fn new(domain: &'static str) -> Self {
        Self { domain }
    }

    /// The error domain.
    pub const fn domain(&self) -> &'static str {
        self.domain
    }

    /// ABORTED when the caller sent an etag that is no longer current.
    pub fn check_etag(&self, sent: &str, version: i64) -> Result<(), Status> {
        Ok(fusion_db::resource::check_etag(self.domain, sent, version)?)
    }

    /// INVALID_ARGUMENT unless `id` is a positive id.
    pub fn require_id(&self, field: &str, id: i64) -> Result<(), Status> {
        Ok(fusion_db::resource::require_id(self.domain, field, id)?)
    }

    /// INVALID_ARGUMENT from collected violations, or Ok.
    pub fn violations(&self, list: Vec<FieldViolation>) -> Result<(), Status> {
        if list.is_empty() {
            Ok(())
        } else {
            Err(errors::invalid_argument(self.domain, list))
        }
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid(&self, field: &str, description: impl Into<String>) -> Status {
        errors::invalid_field(self.domain, field, description)
    }

    /// NOT_FOUND for `what` (`lot`) `id`.
    pub fn not_found(&self, what: &str, id: i64) -> Status {
        errors::not_found(self.domain, format!("{what} {id} not found"))
    }

    /// FAILED_PRECONDITION with a `PreconditionFailure` of type `reason`.
    pub fn precondition(&self, reason: &str, message: impl Into<String>) -> Status {
        errors::failed_precondition(self.domain, reason, message)
    }

    /// Which fields an Update changes (AIP-134): the mask's paths, every mutable field
    /// for `*`, or, with no mask, the fields the request populated.
    pub fn mask(
        &self,
        mask: Option<FieldMask>,
        mutable: &[&str],
        immutable: &[&str],
        populated: &[&str],
    ) -> Result<Mask, fusion_db::Error> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Mask {
                paths: populated.iter().map(|p| (*p).to_owned()).collect(),
            });
        }
        if paths.iter().any(|p| p == "*") {
            return Ok(Mask {
                paths: mutable.iter().map(|p| (*p).to_owned()).collect(),
            });
        }
        let mut violations = Vec::new();
        for path in &paths {
            if immutable.contains(&path.as_str()) {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{path} cannot be changed"),
                ));
            } else if !mutable.contains(&path.as_str()) {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!("unknown or output-only field {path}"),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(fusion_db::Error::new(
                self.domain,
                fusion_db::Kind::Invalid(violations),
            ));
        }
        Ok(Mask { paths })
    }

    /// Parses a timestamp sent by the caller (see [`parse_ts`]).
    pub fn from_ts(&self, field: &str, t: &Timestamp) -> Result<DateTime<Utc>, Status> {
        parse_ts(t).map_err(|description| self.invalid(field, description))
    }
}

/// The fields an Update changes.
#[derive(Clone, Debug)]
pub struct Mask {
    paths: Vec<String>,
}

impl Mask {
    /// Whether `field` changes.
    pub fn has(&self, field: &str) -> bool {
        self.paths.iter().any(|p| p == field)
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// Pushes a violation when a rule fails.
pub fn check(list: &mut Vec<FieldViolation>, field: &str, rule: Result<(), String>) {
    if let Err(description) = rule {
        list.push(FieldViolation::new(field, description));
    }
}

/// The names of the fields a request populated, for an Update without a mask.
pub fn populated<'a>(fields: &[(&'a str, bool)]) -> Vec<&'a str> {
    fields
        .iter()
        .filter_map(|(f, set)| set.then_some(*f))
        .collect()
}

/// Etags are the row version, quoted; opaque to clients.
pub use fusion_db::resource::etag;

/// A time on the wire.
pub fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// An optional time on the wire.
pub fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(ts)
}

/// AIP-164 purge time of a row soft-deleted at `deleted_at`, under `retention`.
pub fn purge_ts(
    deleted_at: Option<DateTime<Utc>>,
    retention: std::time::Duration,
) -> Option<Timestamp> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    deleted_at.map(|d| ts(d + retention))
}

/// A `total_size` on the wire.
pub fn total(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An optional string column from a proto string (empty means unset).
pub fn opt_str(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// A decimal on the wire: its plain string, empty for NULL.
pub fn dec_str(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// Parses an optional decimal string with at most `scale` fractional digits and at
/// most `integer_digits` before the point, within `[min, max]` when given.
pub fn parse_decimal(
    raw: &str,
    integer_digits: u32,
    scale: u32,
    range: Option<(Decimal, Decimal)>,
) -> Result<Option<Decimal>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    // Plain notation only ("-12.50"): no exponent, no grouping, one point at most.
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    let d: Decimal = raw
        .parse()
        .ok()
        .filter(|_| plain)
        .ok_or_else(|| format!("{raw:?} is not a decimal number like \"549000.00\""))?;
    if d.scale() > scale {
        return Err(format!("at most {scale} decimal places"));
    }
    let limit = Decimal::from(10i64.pow(integer_digits));
    if d.abs() >= limit {
        return Err(format!("must be less than {limit} in magnitude"));
    }
    if let Some((min, max)) = range
        && (d < min || d > max)
    {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(Some(d))
}

/// A `google.protobuf.Timestamp` from the caller → a time, within the years 1 to 9999
/// the type defines (and the store accepts: `fusion_db::values`).
pub fn parse_ts(t: &Timestamp) -> Result<DateTime<Utc>, String> {
    fusion_db::values::timestamp(t.seconds, t.nanos)
}

/// `google.type.Date` fields (year, month, day) → a calendar date; all zero is unset.
/// Years run from 1 to 9999, as the type defines (and the store accepts).
pub fn parse_date(year: i32, month: i32, day: i32) -> Result<Option<NaiveDate>, String> {
    if (year, month, day) == (0, 0, 0) {
        return Ok(None);
    }
    let month = u32::try_from(month).map_err(|_| "not a valid date".to_owned())?;
    let day = u32::try_from(day).map_err(|_| "not a valid date".to_owned())?;
    NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| "not a valid calendar date".to_owned())
        .and_then(fusion_db::values::date)
        .map(Some)
}

/// A calendar date on the wire (`google.type.Date`).
pub fn date_pb(d: NaiveDate) -> fusion_proto::google::r#type::Date {
    use chrono::Datelike as _;
    fusion_proto::google::r#type::Date {
        year: d.year(),
        month: d.month().cast_signed(),
        day: d.day().cast_signed(),
    }
}

/// `google.protobuf.Struct` → a JSON object.
pub fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_to_json).collect())
        }
    }
}

/// A JSON object → `google.protobuf.Struct` (anything else becomes an empty struct).
pub fn json_to_struct(v: &serde_json::Value) -> prost_types::Struct {
    match v {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        _ => prost_types::Struct::default(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const API: Api = Api::new("test.fusion");

    #[test]
    fn decimals_respect_scale_magnitude_and_range() {
        assert_eq!(parse_decimal("", 10, 2, None), Ok(None));
        assert_eq!(
            parse_decimal("549000.50", 10, 2, None),
            Ok(Some(Decimal::new(54_900_050, 2)))
        );
        assert!(parse_decimal("1.234", 10, 2, None).is_err());
        assert!(parse_decimal("1e5", 10, 2, None).is_err());
        assert!(parse_decimal("10000000000", 10, 2, None).is_err());
        let lat = Some((Decimal::from(-90), Decimal::from(90)));
        assert!(parse_decimal("-90.5", 2, 8, lat).is_err());
        assert!(parse_decimal("-33.86881234", 2, 8, lat).is_ok());
    }

    #[test]
    fn dates_must_be_real_calendar_dates() {
        assert_eq!(parse_date(0, 0, 0), Ok(None));
        assert!(parse_date(2026, 2, 30).is_err());
        assert_eq!(
            parse_date(2026, 2, 28),
            Ok(NaiveDate::from_ymd_opt(2026, 2, 28))
        );
        // Real dates PostgreSQL (year -5000) or google.type.Date (year 10000) refuse.
        assert!(parse_date(-5000, 1, 1).is_err());
        assert!(parse_date(10000, 1, 1).is_err());
        assert!(parse_date(9999, 12, 31).is_ok());
    }

    #[test]
    fn timestamps_stay_within_the_years_the_type_and_the_store_accept() {
        let ts = |seconds, nanos| Timestamp { seconds, nanos };
        assert!(parse_ts(&ts(0, 0)).is_ok());
        // 5000 BC and 300000 AD: past PostgreSQL's range on either side.
        assert!(parse_ts(&ts(-219_940_000_000, 0)).is_err());
        assert!(parse_ts(&ts(9_404_000_000_000, 0)).is_err());
        assert!(parse_ts(&ts(0, -1)).is_err());
    }

    #[test]
    fn masks_refuse_immutable_and_unknown_paths_and_star_means_every_mutable_field() {
        let m = |paths: &[&str]| {
            Some(FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            })
        };
        let err = API
            .mask(m(&["stage_id", "colour"]), &["name"], &["stage_id"], &[])
            .unwrap_err();
        assert_eq!(Status::from(err).code(), Code::InvalidArgument);
        let all = API.mask(m(&["*"]), &["name", "price"], &[], &[]).unwrap();
        assert!(all.has("name") && all.has("price"));
        let none = API.mask(None, &["name"], &[], &["price"]).unwrap();
        assert!(none.has("price") && !none.has("name"));
    }

    #[test]
    fn a_stale_etag_is_aborted_and_an_absent_one_passes() {
        assert!(API.check_etag("", 3).is_ok());
        assert!(API.check_etag(&etag(3), 3).is_ok());
        assert_eq!(
            API.check_etag(&etag(2), 3).unwrap_err().code(),
            Code::Aborted
        );
    }
}
