//! Field rules shared by the resource APIs of every context. Each returns the message a caller
//! sees in a `FieldViolation`.

/// A required display name: not blank, at most 255 characters.
pub fn name(s: &str) -> Result<(), String> {
    required(s, 255)
}

/// A required value of at most `max` characters.
pub fn required(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("is required".to_owned());
    }
    max_len(s, max)
}

/// At most `max` characters, none of them NUL (which PostgreSQL's text cannot hold).
pub fn max_len(s: &str, max: usize) -> Result<(), String> {
    fusion_db::values::text(s)?;
    if s.trim().chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// A URL-friendly identifier: lowercase letters, digits and single hyphens, not
/// starting or ending with one, at most 255 characters.
pub fn slug(s: &str) -> Result<(), String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err("must be lowercase letters, digits and single hyphens (e.g. riverside-estate)".into())
    }
}

/// An optional email address.
pub fn email(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    max_len(s, 255)?;
    match s.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err("is not an email address".into()),
    }
}

/// An optional http(s) URL.
pub fn url(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    max_len(s, 2048)?;
    if (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > "https://".len()
        && !s.chars().any(char::is_whitespace)
    {
        Ok(())
    } else {
        Err("must be an http:// or https:// URL".into())
    }
}

/// One of `allowed`.
pub fn one_of(s: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&s.trim()) {
        Ok(())
    } else {
        Err(format!("must be one of: {}", allowed.join(", ")))
    }
}

/// ISO 4217 alphabetic codes of the currencies in current use (list one), sorted: the
/// national and regional currencies, without the fund codes (`BOV`, `CHE`, `USN`, ...),
/// precious metals (`XAU`, ...), bond-market units, `XDR`, `XSU`, `XUA`, `XTS` (testing)
/// and `XXX` (no currency), none of which prices a sale, a plan or an invoice. `ANG` stays beside its
/// successor `XCG` while both circulate.
pub const CURRENCY_CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

/// An ISO 4217 currency code in current use ([`CURRENCY_CODES`]), exactly as listed:
/// three upper-case letters.
pub fn currency_code(value: &str) -> Result<(), String> {
    if CURRENCY_CODES.binary_search(&value).is_ok() {
        Ok(())
    } else if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
        Err(format!("{value} is not an ISO 4217 currency code in use"))
    } else {
        Err("must be an ISO 4217 currency code: three upper-case letters such as AUD".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_a_nul_is_refused_whatever_its_length() {
        assert!(max_len("a\0b", 10).is_err());
        assert!(name("Riverside\0").is_err());
        assert!(email("jo\0@example.com").is_err());
        assert!(name("Riverside").is_ok());
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_single_hyphens() {
        assert!(slug("riverside-estate-2").is_ok());
        for bad in ["", "Riverside", "-a", "a-", "a--b", "a b", "a_b"] {
            assert!(slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_urls_are_checked_only_when_given() {
        assert!(email("").is_ok() && url("").is_ok());
        assert!(email("sales@builder.com.au").is_ok());
        assert!(email("sales@builder").is_err() && email("a b@c.d").is_err());
        assert!(url("https://builder.example").is_ok());
        assert!(url("ftp://builder.example").is_err());
    }

    #[test]
    fn required_values_are_not_blank_and_fit_their_column() {
        assert!(name("  ").is_err());
        assert!(name(&"x".repeat(256)).is_err());
        assert!(name("Riverside").is_ok());
        assert!(one_of("selling", &["planning", "selling"]).is_ok());
        assert!(one_of("sold", &["planning", "selling"]).is_err());
    }

    #[test]
    fn currency_codes_are_iso_4217_codes_in_use() {
        assert!(CURRENCY_CODES.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert!(
            CURRENCY_CODES
                .iter()
                .all(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase()))
        );
        for good in ["AUD", "NZD", "USD", "EUR", "GBP", "JPY", "XCG"] {
            assert!(currency_code(good).is_ok(), "{good}");
        }
        for bad in ["", "aud", "AU", "AUDD", "ABC", "XXX", "XAU", "HRK"] {
            assert!(currency_code(bad).is_err(), "{bad}");
        }
    }
}
