//! Database plumbing every Fusion service shares.
//!
//! - [`Db`]: a pool connected as a service's application role, which owns no table and
//!   cannot bypass row-level security; [`Db::begin`] opens a tenant-bound unit of work.
//! - [`migrate()`]: applies a context's reversible migrations as the owner role.
//! - [`service_role`]: each context's own login role, the only application role granted
//!   its schema (least privilege: crm's role cannot read identity's tables).
//! - [`Error`]: what this layer reports (its own type, never a gRPC status), and the one
//!   mapping from it to a status, which each context applies at its gRPC boundary.
//! - [`filter`], [`order`], [`page`], [`list`]: AIP-160 filters compiled to parameterised
//!   SQL, `order_by`, signed keyset page tokens, and the List query that combines them.
//! - [`soft_delete`] (AIP-164) and [`idempotency`] (AIP-155 `request_id`).
//! - [`values`]: the times, dates and text PostgreSQL accepts, checked before SQL runs.
//! - [`resource`]: the row-level flows every resource API shares (get, insert, update,
//!   soft delete behind an etag, parent locks).

pub mod error;
pub mod filter;
pub mod idempotency;
pub mod list;
mod migrate;
pub mod order;
pub mod page;
mod pool;
pub mod resource;
pub mod soft_delete;
pub mod values;

pub use error::{Error, Kind, db_status};
pub use migrate::{ensure_roles, migrate, revert_all};
pub use pool::{Db, DbConfig, TenantTx};
/// A connection, for code that runs statements inside a unit of work it was handed.
pub use sqlx::PgConnection;

/// The shared application role every service connected as before each had its own
/// ([`SERVICE_ROLES`]). No context's schema grants it anything any more (each context's
/// `*_service_role` migration moved its grants to the context's role); it remains for
/// the down path of those migrations and for tests of the shared crates on schemas of
/// their own. Owns nothing, not superuser, no BYPASSRLS.
pub const APP_ROLE: &str = "fusion_app";
/// The role that owns every schema and runs migrations.
pub const OWNER_ROLE: &str = "fusion_owner";
/// Each context's schema and the one login role its service connects as: owns nothing,
/// not superuser, no BYPASSRLS, granted USAGE on its own schema only and the table
/// privileges its service needs there. Finance and ai-marketing are declared ahead of
/// their services so their first migration grants to their own role from the start.
pub const SERVICE_ROLES: &[(&str, &str)] = &[
    ("identity", "fusion_identity"),
    ("property", "fusion_property"),
    ("crm", "fusion_crm"),
    ("finance", "fusion_finance"),
    ("ai_marketing", "fusion_ai_marketing"),
];

/// The login role of the context whose schema is `schema` (`crm` → `fusion_crm`).
pub fn service_role(schema: &str) -> Option<&'static str> {
    SERVICE_ROLES
        .iter()
        .find(|(s, _)| *s == schema)
        .map(|(_, role)| *role)
}
/// Each context's housekeeping role: what its cross-tenant background work (the outbox
/// relay, inbox pruning, the purge of soft-deleted rows, expired holds) connects as,
/// instead of the owner of every schema. Granted its own schema only, and named beside
/// `fusion_owner` in that schema's housekeeping policies (`*_jobs_role` migrations).
pub const JOBS_ROLES: &[(&str, &str)] = &[
    ("identity", "fusion_identity_jobs"),
    ("property", "fusion_property_jobs"),
    ("crm", "fusion_crm_jobs"),
    ("finance", "fusion_finance_jobs"),
    ("ai_marketing", "fusion_ai_marketing_jobs"),
];

/// The housekeeping role of the context whose schema is `schema` (`crm` →
/// `fusion_crm_jobs`).
pub fn jobs_role(schema: &str) -> Option<&'static str> {
    JOBS_ROLES
        .iter()
        .find(|(s, _)| *s == schema)
        .map(|(_, role)| *role)
}

/// The transaction-local setting row-level security policies read.
pub const TENANT_SETTING: &str = "app.tenant_id";
