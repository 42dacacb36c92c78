//! Finance rules that depend on neither the wire format nor the database: money
//! columns and rounding, currencies, invoice totals, exact splits and commission
//! plans. Everything here is pure and exact (`rust_decimal`, never a float).

pub mod currency;
pub mod money;
pub mod split;
