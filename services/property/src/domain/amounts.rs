//! Amounts on the wire: prices, sizes and deposits are plain-notation decimals that
//! are never negative, in their project's ISO 4217 currency.

use rust_decimal::Decimal;

use fusion_service::api::parse_decimal;

/// A non-negative decimal of at most `integer_digits` digits before the point and
/// `scale` after it; empty is none.
pub fn non_negative(raw: &str, integer_digits: u32, scale: u32) -> Result<Option<Decimal>, String> {
    parse_decimal(
        raw,
        integer_digits,
        scale,
        Some((Decimal::ZERO, Decimal::MAX)),
    )
}

/// A lot price (`NUMERIC(12,2)`); empty is none.
pub fn price(raw: &str) -> Result<Option<Decimal>, String> {
    non_negative(raw, 10, 2)
}

/// The active ISO 4217 currency codes (alphabetic), sorted (the same list crm and
/// identity check theirs against).
pub(crate) const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV",
    "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A currency code: an active ISO 4217 code in capitals.
pub fn currency_code(code: &str) -> Result<(), String> {
    if ISO_4217.binary_search(&code).is_ok() {
        Ok(())
    } else {
        Err("must be an ISO 4217 currency code in capitals, such as AUD".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_active_iso_4217_codes_in_capitals() {
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted, once each"
        );
        for ok in ["AUD", "NZD", "USD", "EUR", "JPY"] {
            assert_eq!(currency_code(ok), Ok(()), "{ok}");
        }
        for bad in ["", "aud", "AU", "AUDD", "XYZ", " AUD"] {
            assert!(currency_code(bad).is_err(), "{bad:?}");
        }
    }
}
