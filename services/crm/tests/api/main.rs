//! The crm API against a real PostgreSQL, as the application role, through real gRPC
//! clients, with the real identity and property services it checks references with.
//! One test binary for the crate.

mod contacts;
mod deals;
mod helpers;
mod leads;
mod notes;
mod pipeline;
mod schema;
mod tasks;
