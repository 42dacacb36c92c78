//! Failed-login throttling per account and per source address, stored in PostgreSQL so
//! every replica sees the same counts.
//!
//! Failures are counted in a window; reaching the limit locks the key for the lockout
//! period, doubling with each further lock inside the window (capped at a day). A
//! locked key is refused before the password is looked at. Keys are derived from the
//! submitted email whether or not the account exists, so throttling reveals nothing.

use std::time::Duration;

use sqlx::Row;

use fusion_db::Db;

use crate::config::ThrottleConfig;
use crate::error::IdentityError;

/// The throttle key of an account (by submitted email).
pub fn account_key(email: &str) -> String {
    format!("acct:{}", email.trim().to_lowercase())
}

/// The throttle key of a source address.
pub fn source_key(source: &str) -> String {
    format!("src:{source}")
}

/// RESOURCE_EXHAUSTED with the longest remaining lock if any key is locked.
pub async fn check(db: &Db, keys: &[String]) -> Result<(), IdentityError> {
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT max(extract(epoch FROM locked_until - now()))::float8
         FROM identity.login_throttle WHERE key = ANY($1) AND locked_until > now()",
    )
    .bind(keys)
    .fetch_one(db.pool())
    .await?;
    match remaining {
        Some(secs) if secs > 0.0 => Err(IdentityError::LoginThrottled {
            retry_after: Duration::from_secs_f64(secs.ceil()),
        }),
        _ => Ok(()),
    }
}

/// Counts a failure against `key`, locking it once `max` failures fall in the window.
pub async fn record_failure(
    db: &Db,
    cfg: &ThrottleConfig,
    key: &str,
    max: i32,
) -> Result<(), IdentityError> {
    let window = chrono::Duration::from_std(cfg.window).unwrap_or(chrono::Duration::minutes(15));
    let row = sqlx::query(
        "INSERT INTO identity.login_throttle AS t (key, failures, window_start) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN t.window_start < now() - $2 THEN 1 ELSE t.failures + 1 END,
             window_start = CASE WHEN t.window_start < now() - $2 THEN now() ELSE t.window_start END,
             updated_at = now()
         RETURNING failures",
    )
    .bind(key)
    .bind(window)
    .fetch_one(db.pool())
    .await?;
    let failures: i32 = row.get("failures");
    if max > 0 && failures >= max {
        let lock = lockout_for(failures, max, cfg.lockout);
        sqlx::query("UPDATE identity.login_throttle SET locked_until = now() + $2, updated_at = now() WHERE key = $1")
            .bind(key)
            .bind(chrono::Duration::from_std(lock).unwrap_or(chrono::Duration::days(1)))
            .execute(db.pool())
            .await?;
        tracing::warn!(throttle.key = %key, failures, lock_seconds = lock.as_secs(), "login locked");
    }
    Ok(())
}

/// The longest a key is ever locked, however often it keeps failing.
const MAX_LOCKOUT: Duration = Duration::from_secs(86_400);

/// How long a key with `failures` failures in the window stays locked: `base` at the
/// limit, doubling with every further `max` failures, capped at [`MAX_LOCKOUT`].
fn lockout_for(failures: i32, max: i32, base: Duration) -> Duration {
    if max <= 0 || failures < max {
        return Duration::ZERO;
    }
    let doublings = u32::try_from((failures / max - 1).clamp(0, 16)).unwrap_or(0);
    base.saturating_mul(1 << doublings).min(MAX_LOCKOUT)
}

/// Clears an account's failures after a successful login.
pub async fn reset(db: &Db, key: &str) -> Result<(), IdentityError> {
    sqlx::query("DELETE FROM identity.login_throttle WHERE key = $1")
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes counters that no longer matter: their window has passed and no lock is
/// pending. Failed logins for made-up emails would otherwise grow the table forever.
pub async fn purge_stale(db: &Db, window: Duration) -> Result<u64, IdentityError> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(15));
    let done = sqlx::query(
        "DELETE FROM identity.login_throttle
         WHERE window_start < now() - $1 AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind(window)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_LOCKOUT, account_key, lockout_for, source_key};

    #[test]
    fn account_keys_ignore_case_and_surrounding_space() {
        assert_eq!(account_key("  Admin@Acme.TEST "), "acct:admin@acme.test");
        assert_eq!(
            account_key("admin@acme.test"),
            account_key("ADMIN@acme.test")
        );
        assert_ne!(account_key("10.0.0.1"), source_key("10.0.0.1"));
    }

    #[test]
    fn lockout_starts_at_the_limit_and_doubles_with_every_further_round() {
        let base = Duration::from_secs(60);
        assert_eq!(lockout_for(4, 5, base), Duration::ZERO);
        assert_eq!(lockout_for(5, 5, base), base);
        assert_eq!(lockout_for(9, 5, base), base);
        assert_eq!(lockout_for(10, 5, base), base * 2);
        assert_eq!(lockout_for(15, 5, base), base * 4);
    }

    #[test]
    fn lockout_is_capped_and_a_zero_limit_disables_it() {
        let base = Duration::from_secs(60);
        assert_eq!(lockout_for(i32::MAX, 5, base), MAX_LOCKOUT);
        assert_eq!(lockout_for(1000, 0, base), Duration::ZERO);
    }
}
