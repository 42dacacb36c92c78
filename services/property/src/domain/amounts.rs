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
