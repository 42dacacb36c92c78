//! Identity's SQL: every statement its resources and its login make, beside the row
//! types they read. The gRPC layer above parses requests, calls the domain and these
//! functions, and converts; nothing here knows the proto types.
//!
//! Each resource's module holds its `Table` (where rows live and the select list), its
//! `ListSpec` (what a filter and an order may name) and its row, which the standard
//! methods read; plus the statements its hooks and custom methods need.

pub mod logins;
pub mod plans;
pub mod roles;
pub mod service_accounts;
pub mod tenants;
pub mod users;

use sqlx::PgConnection;

use crate::error::IdentityError;

/// Binds the rest of the transaction to tenant `id` for row-level security.
pub(crate) async fn bind_tenant(conn: &mut PgConnection, id: i64) -> Result<(), IdentityError> {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
