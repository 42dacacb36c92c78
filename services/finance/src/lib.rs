//! The finance context (`fusion.finance.v1`): what the developer owes on each sale
//! (invoices whose totals the server computes exactly, numbered without gaps), who is
//! paid what commission and when (plans split between recipients and paid over lot
//! milestones), and the same invoices in Xero without typing them twice.

pub mod domain;

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "finance";

/// Error domain of this context.
pub const DOMAIN: &str = "finance.fusion";
