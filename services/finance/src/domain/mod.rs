//! Finance rules that depend on neither the wire format nor the database: money
//! columns and rounding, currencies, invoice totals, exact splits and commission
//! plans. Everything here is pure and exact (`rust_decimal`, never a float).

pub mod commission;
pub mod currency;
pub mod invoice;
pub mod money;
pub mod split;

/// Validation problems, each a field path and what is wrong with it; the API turns
/// them into `INVALID_ARGUMENT` field violations.
pub type Problems = Vec<(String, String)>;
