//! The crm API against a real PostgreSQL, as the application role, through real gRPC
//! clients, with the real identity and property services it checks references with.
//! One test binary for the crate.

mod bounds;
mod calls;
mod conformance;
mod contacts;
mod convert;
mod deals;
mod duplicates;
mod events;
mod helpers;
mod import;
mod leads;
mod merge;
mod notes;
mod pipeline;
mod privilege;
mod refused_values;
mod request_ids;
mod roles;
mod schema;
mod search;
mod subjects;
mod surface;
mod tasks;
