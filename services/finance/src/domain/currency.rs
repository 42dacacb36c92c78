//! Currencies: the ISO 4217 codes in current use (the shared list every context
//! accepts) with their minor units, and the ones finance can hold.
//!
//! Amounts are rounded to the currency's minor unit: cents for AUD, whole yen for
//! JPY. Every amount column is `decimal(12,2)`, so a currency with three minor digits
//! (BHD, IQD, JOD, KWD, LYD, OMR, TND) cannot be kept exactly; rather than silently
//! rounding away its third digit, [`Currency::parse`] refuses it with a message that
//! says why. (The four-digit units CLF and UYW are fund codes, which the shared list
//! leaves out: they price nothing.) Zero-digit currencies are kept with two zero
//! decimals, so "1099" yen is stored and shown as `1099.00`.

use std::fmt;

use rust_decimal::Decimal;

use fusion_service::validate::{CURRENCY_CODES, currency_code};

use super::money::{MONEY, round_half_away};

/// Codes in use with no minor unit (ISO 4217 list one).
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Codes in use with three minor digits (ISO 4217 list one).
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// The decimal places of a currency in use: 0 or 3 for the codes listed above, 2
/// for every other; none for a code not in use.
pub fn minor_unit(code: &str) -> Option<u32> {
    lookup(code).map(|(_, unit)| unit)
}

/// The listed code and its minor unit, for a code in use.
fn lookup(code: &str) -> Option<(&'static str, u32)> {
    let code = CURRENCY_CODES[CURRENCY_CODES.binary_search(&code).ok()?];
    let unit = if ZERO_DECIMALS.contains(&code) {
        0
    } else if THREE_DECIMALS.contains(&code) {
        3
    } else {
        2
    };
    Some((code, unit))
}

/// A currency finance can hold: in use, with at most two minor digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_unit: u32,
}

impl Currency {
    /// The currency of an ISO 4217 code written exactly ("AUD", not "aud"), refused
    /// when not in use or when its minor unit is finer than the amount columns keep.
    pub fn parse(code: &str) -> Result<Currency, String> {
        let Some((code, minor_unit)) = lookup(code) else {
            // The shared rule refuses every code not listed, saying whether it is
            // malformed or merely not in use.
            return Err(currency_code(code).err().unwrap_or_default());
        };
        if minor_unit > MONEY.scale() {
            return Err(format!(
                "{code} has {minor_unit} decimal places but amounts are kept with {}, so it cannot be used",
                MONEY.scale()
            ));
        }
        Ok(Currency { code, minor_unit })
    }

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of its smallest unit: 2 for AUD, 0 for JPY.
    pub fn minor_unit(self) -> u32 {
        self.minor_unit
    }

    /// `value` rounded half away from zero to the minor unit, written with the
    /// columns' two decimals (JPY 1099.5 → 1100.00, AUD 9.995 → 10.00).
    pub fn round(self, value: Decimal) -> Decimal {
        let mut rounded = round_half_away(value, self.minor_unit);
        rounded.rescale(MONEY.scale());
        rounded
    }

    /// Refuses a price finer than the minor unit (100.50 yen).
    pub fn check_places(self, value: Decimal) -> Result<(), String> {
        if value.normalize().scale() <= self.minor_unit {
            Ok(())
        } else if self.minor_unit == 0 {
            Err(format!("{self} has no decimal places"))
        } else {
            Err(format!(
                "{self} has at most {} decimal places",
                self.minor_unit
            ))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        let table = [
            ("AUD", Some(2)),
            ("USD", Some(2)),
            ("EUR", Some(2)),
            ("HUF", Some(2)),
            ("IDR", Some(2)),
            ("JPY", Some(0)),
            ("KRW", Some(0)),
            ("ISK", Some(0)),
            ("XOF", Some(0)),
            ("BHD", Some(3)),
            ("KWD", Some(3)),
            ("TND", Some(3)),
            ("CLF", None),
            ("XXX", None),
            ("jpy", None),
        ];
        for (code, unit) in table {
            assert_eq!(minor_unit(code), unit, "{code}");
        }
    }

    #[test]
    fn the_exceptions_to_two_decimals_are_codes_in_use() {
        for code in ZERO_DECIMALS.iter().chain(THREE_DECIMALS) {
            assert!(CURRENCY_CODES.contains(code), "{code}");
        }
    }

    #[test]
    fn currencies_with_more_decimals_than_the_columns_are_refused_with_the_reason() {
        assert_eq!(Currency::parse("AUD").map(Currency::minor_unit), Ok(2));
        assert_eq!(Currency::parse("JPY").map(Currency::minor_unit), Ok(0));
        assert_eq!(
            Currency::parse("BHD"),
            Err(
                "BHD has 3 decimal places but amounts are kept with 2, so it cannot be used".into()
            )
        );
        for bad in ["", "aud", "AUDD", "ZZZ", "XAU"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Currency::parse("NZD").unwrap().to_string(), "NZD");
    }

    #[test]
    fn amounts_round_to_the_minor_unit_and_keep_two_decimals() {
        let aud = Currency::parse("AUD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let table = [
            (aud, "9.995", "10.00"),
            (aud, "-9.995", "-10.00"),
            (aud, "109.99", "109.99"),
            (jpy, "1099.5", "1100.00"),
            (jpy, "-0.5", "-1.00"),
            (jpy, "1099.49", "1099.00"),
        ];
        for (currency, value, rounded) in table {
            assert_eq!(
                currency.round(d(value)).to_string(),
                rounded,
                "{currency} {value}"
            );
        }
    }

    #[test]
    fn prices_finer_than_the_minor_unit_are_refused() {
        let aud = Currency::parse("AUD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert!(aud.check_places(d("33.33")).is_ok());
        assert!(jpy.check_places(d("100.00")).is_ok());
        assert_eq!(
            jpy.check_places(d("100.50")),
            Err("JPY has no decimal places".into())
        );
        assert_eq!(
            aud.check_places(d("0.001")),
            Err("AUD has at most 2 decimal places".into())
        );
    }
}
