//! The property API against a real PostgreSQL, as the application role, through real
//! gRPC clients. One test binary for the crate.

mod conformance;
mod faults;
mod helpers;
mod lots;
mod media;
mod overload;
mod privilege;
mod refused_values;
mod resources;
mod sales;
mod schema;
mod service_caller;
mod surface;
