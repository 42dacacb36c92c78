//! Database plumbing every Fusion service shares.
//!
//! - [`Db`]: a pool connected as the application role, which owns no table and cannot
//!   bypass row-level security; [`Db::begin`] opens a tenant-bound unit of work.
//! - [`migrate()`]: applies a context's reversible migrations as the owner role.
//! - [`Error`]: what this layer reports (its own type, never a gRPC status), and the one
//!   mapping from it to a status, which each context applies at its gRPC boundary.
//! - [`filter`], [`order`], [`page`], [`list`]: AIP-160 filters compiled to parameterised
//!   SQL, `order_by`, signed keyset page tokens, and the List query that combines them.
//! - [`soft_delete`] (AIP-164) and [`idempotency`] (AIP-155 `request_id`).
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

pub use error::{Error, Kind, db_status};
pub use migrate::{ensure_roles, migrate, revert_all};
pub use pool::{Db, DbConfig, TenantTx};
/// A connection, for code that runs statements inside a unit of work it was handed.
pub use sqlx::PgConnection;

/// The role services connect as: owns nothing, not superuser, no BYPASSRLS.
pub const APP_ROLE: &str = "fusion_app";
/// The role that owns every schema and runs migrations.
pub const OWNER_ROLE: &str = "fusion_owner";
/// The transaction-local setting row-level security policies read.
pub const TENANT_SETTING: &str = "app.tenant_id";
