//! The finance API against a real PostgreSQL, as the application role, through real
//! gRPC clients, with the real identity, property and crm services it checks
//! references with; the Xero client and the Xero integration against the test kit's
//! fake Xero. One test binary for the crate.

mod commissions;
mod conformance;
mod helpers;
mod invoices;
mod privilege;
mod schema;
mod xero;
mod xero_client;
