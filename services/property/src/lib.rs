//! The property context (`fusion.property.v1`): the stock a tenant sells.
//!
//! So far this crate holds the context's schema (`migrations/property/`); the gRPC
//! service is built on it next (see the open property issue).

/// The property schema's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/property");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "property";

pub mod domain;
