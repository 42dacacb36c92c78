//! Decimal columns and rounding: every amount finance keeps is a PostgreSQL `numeric`
//! of fixed precision, parsed from plain-notation strings and rounded half away from
//! zero, never through a float.
//!
//! The schema's money columns are all `decimal(12,2)` (invoice and line amounts, tax
//! amounts, commission amounts), quantities `decimal(10,2)` and rates, shares and
//! percentages `decimal(5,2)`. A value that does not fit its column is refused with a
//! message for the caller rather than rounded or truncated by the store.

use rust_decimal::{Decimal, RoundingStrategy};

use fusion_service::api::parse_decimal;

/// A `numeric(precision, scale)` column: what a value must fit to be stored exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Digits before the point: `precision - scale`.
    integer_digits: u32,
    /// Digits after the point.
    scale: u32,
}

/// `decimal(12,2)`: every amount (line, tax, invoice total, commission).
pub const MONEY: Column = Column::numeric(12, 2);

/// `decimal(10,2)`: an invoice line's quantity.
pub const QUANTITY: Column = Column::numeric(10, 2);

/// `decimal(5,2)`: a tax rate, commission rate, recipient share or milestone percent.
pub const PERCENT: Column = Column::numeric(5, 2);

impl Column {
    /// The column `numeric(precision, scale)`.
    pub const fn numeric(precision: u32, scale: u32) -> Column {
        Column {
            integer_digits: precision - scale,
            scale,
        }
    }

    /// Digits after the point.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// A required decimal string in plain notation ("-12.50": no exponent, no
    /// grouping) that fits this column; more decimal places than the column keeps are
    /// refused, not rounded.
    pub fn parse(self, raw: &str) -> Result<Decimal, String> {
        parse_decimal(raw, self.integer_digits, self.scale, None)?
            .ok_or_else(|| "is required".to_owned())
    }

    /// Whether a computed value fits: at most `scale` significant decimal places and
    /// fewer than `integer_digits` digits before the point.
    pub fn check(self, value: Decimal) -> Result<(), String> {
        if value.normalize().scale() > self.scale {
            return Err(format!("at most {} decimal places", self.scale));
        }
        let limit = Decimal::from(10i64.pow(self.integer_digits));
        if value.abs() >= limit {
            return Err(format!("must be less than {limit} in magnitude"));
        }
        Ok(())
    }
}

/// `value` rounded to `scale` decimal places, halves away from zero (0.005 → 0.01,
/// −0.005 → −0.01), and written with exactly `scale` places (10 → "10.00").
pub fn round_half_away(value: Decimal, scale: u32) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(scale);
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn halves_round_away_from_zero_on_both_sides() {
        // (value, scale, rounded): banker's rounding would give 0.02 and 2 for the
        // second and fourth rows.
        let table = [
            ("0.005", 2, "0.01"),
            ("0.025", 2, "0.03"),
            ("-0.005", 2, "-0.01"),
            ("2.5", 0, "3"),
            ("-2.5", 0, "-3"),
            ("0.0049", 2, "0.00"),
            ("-0.0049", 2, "0.00"),
            ("1.2345", 3, "1.235"),
            ("10", 2, "10.00"),
            ("7", 0, "7"),
        ];
        for (value, scale, rounded) in table {
            assert_eq!(
                round_half_away(d(value), scale).to_string(),
                rounded,
                "{value} to {scale}"
            );
        }
    }

    #[test]
    fn columns_refuse_extra_decimal_places_and_values_too_large() {
        assert_eq!(MONEY.parse("109.99"), Ok(d("109.99")));
        assert_eq!(MONEY.parse("-0.5"), Ok(d("-0.5")));
        assert_eq!(MONEY.parse("9999999999.99"), Ok(d("9999999999.99")));
        assert_eq!(MONEY.parse(""), Err("is required".to_owned()));
        assert_eq!(
            MONEY.parse("1.005"),
            Err("at most 2 decimal places".to_owned())
        );
        assert!(MONEY.parse("10000000000").is_err());
        for not_plain in ["1e3", "1,000.00", "12.5.0", "-", ".", "+5", "five", " 1 2"] {
            assert!(MONEY.parse(not_plain).is_err(), "{not_plain:?}");
        }
        assert!(QUANTITY.parse("99999999.99").is_ok());
        assert!(QUANTITY.parse("100000000").is_err());
        assert!(PERCENT.parse("100").is_ok() && PERCENT.parse("999.99").is_ok());
        assert!(PERCENT.parse("1000").is_err() && PERCENT.parse("2.005").is_err());
    }

    #[test]
    fn computed_values_are_checked_against_the_column_by_value_not_by_written_scale() {
        assert_eq!(MONEY.check(d("10.000")), Ok(()));
        assert_eq!(MONEY.check(d("-9999999999.99")), Ok(()));
        assert!(MONEY.check(d("10.001")).is_err());
        assert_eq!(
            MONEY.check(d("10000000000.00")),
            Err("must be less than 10000000000 in magnitude".to_owned())
        );
    }
}
