//! The ai-marketing API against a real PostgreSQL, as the application role, through
//! real gRPC clients, with the real identity, property and crm services it reads
//! from as the caller. One test binary for the crate.

mod campaigns;
mod conformance;
mod conversations;
mod helpers;
mod matches;
mod privilege;
mod prompts;
mod results;
mod schema;
