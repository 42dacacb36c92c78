//! The CRM context (`fusion.crm.v1`): where sales teams live all day — leads, contacts,
//! deals, tasks and notes, moving through each tenant's own lead statuses and deal
//! stages.
//!
//! This crate owns the `crm` schema. Its API contract is `proto/fusion/crm/v1`; the
//! gRPC service that serves it is built on this schema (see the issue tracker for
//! what has landed).

/// The crm schema's migrations, applied by the owner role.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "crm";

/// Error domain of this context.
pub const DOMAIN: &str = "crm.fusion";
