//! What a login reads and writes: the account behind an email, and the last login.

use sqlx::PgConnection;

use fusion_db::Db;

use crate::error::IdentityError;

/// The account an email logs in to.
#[derive(sqlx::FromRow)]
pub(crate) struct Login {
    pub tenant_id: i64,
    pub user_id: i64,
    pub password_hash: String,
    pub active: bool,
}

/// The live account with `email` in any tenant (`identity.find_login` crosses tenants
/// for this one lookup), if there is one.
pub(crate) async fn find(db: &Db, email: &str) -> Result<Option<Login>, IdentityError> {
    sqlx::query_as("SELECT tenant_id, user_id, password_hash, active FROM identity.find_login($1)")
        .bind(email)
        .fetch_optional(db.pool())
        .await
        .map_err(IdentityError::from)
}

/// Records that user `user_id` has just logged in.
pub(crate) async fn record(conn: &mut PgConnection, user_id: i64) -> Result<(), IdentityError> {
    sqlx::query("UPDATE identity.users SET last_login_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
