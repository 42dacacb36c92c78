//! Values a client sends that PostgreSQL would refuse, caught before any SQL runs so the
//! caller hears which field is wrong (INVALID_ARGUMENT naming it) rather than a database
//! error. [`crate::Error::from_sqlx`] maps what still gets through (SQLSTATE class 22,
//! `54000`) to INVALID_ARGUMENT too, but by then the field is often unknown.
//!
//! - Times and dates: years 1 to 9999, the range `google.protobuf.Timestamp` and
//!   `google.type.Date` define and RFC 3339 can write; PostgreSQL's own (4713 BC to
//!   294276 AD for timestamps) is wider, and chrono's is wider still, so a value in this
//!   range always reaches the database intact.
//! - Text: PostgreSQL's `text` cannot hold U+0000 (NUL).

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};

/// The earliest year a time or date may have.
pub const MIN_YEAR: i32 = 1;
/// The latest year a time or date may have.
pub const MAX_YEAR: i32 = 9999;

const TIME_RANGE: &str = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z";
const DATE_RANGE: &str = "must be between 0001-01-01 and 9999-12-31";

/// A time the store accepts: `t` itself, or the violation's description.
pub fn time(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if (MIN_YEAR..=MAX_YEAR).contains(&t.year()) {
        Ok(t)
    } else {
        Err(TIME_RANGE.to_owned())
    }
}

/// A `google.protobuf.Timestamp` (`seconds`, `nanos`) as a time the store accepts.
pub fn timestamp(seconds: i64, nanos: i32) -> Result<DateTime<Utc>, String> {
    let nanos = u32::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| "nanos must be between 0 and 999999999".to_owned())?;
    DateTime::from_timestamp(seconds, nanos)
        .ok_or_else(|| TIME_RANGE.to_owned())
        .and_then(time)
}

/// A date the store accepts: `d` itself, or the violation's description.
pub fn date(d: NaiveDate) -> Result<NaiveDate, String> {
    if (MIN_YEAR..=MAX_YEAR).contains(&d.year()) {
        Ok(d)
    } else {
        Err(DATE_RANGE.to_owned())
    }
}

/// Text the store accepts: no NUL character.
pub fn text(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err("must not contain the NUL character (U+0000)".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_accepted_from_year_1_to_9999_only() {
        let first = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        assert!(date(first).is_ok() && date(last).is_ok());
        assert!(date(first.pred_opt().unwrap()).is_err());
        assert!(date(NaiveDate::from_ymd_opt(-5000, 1, 1).unwrap()).is_err());
        assert!(date(NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()).is_err());

        let start = first.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(timestamp(start.timestamp(), 0), Ok(start));
        assert!(timestamp(start.timestamp() - 1, 999_999_999).is_err());
        let end = last.and_hms_opt(23, 59, 59).unwrap().and_utc();
        assert!(timestamp(end.timestamp(), 999_999_999).is_ok());
        assert!(timestamp(end.timestamp() + 1, 0).is_err());
        // Year 300000 is past PostgreSQL's range; i64::MAX seconds is past chrono's.
        assert!(timestamp(9_404_000_000_000, 0).is_err());
        assert!(timestamp(i64::MAX, 0).is_err());
        assert!(timestamp(i64::MIN, 0).is_err());
        assert!(timestamp(0, -1).is_err());
        assert!(timestamp(0, 1_000_000_000).is_err());
    }

    #[test]
    fn text_with_a_nul_is_refused() {
        assert!(text("plain text, ünïcode ✓").is_ok());
        assert!(text("before\0after").is_err());
    }
}
