//! Failed-login throttling, stored in PostgreSQL so every replica sees the same counts.
//!
//! Two counters see every failure: one for the account *and* the source it was tried
//! from ([`pair_key`]), one for the source alone ([`source_key`]). Reaching a counter's
//! limit locks that key for the lockout period, and every further failure after a lock
//! doubles it (exponential backoff, capped at a day). A locked key is refused before
//! the password is looked at. So a guesser at one source locks only itself out of the
//! account, and out of everything once it has guessed at enough accounts; the owner,
//! logging in from elsewhere, is never locked out by someone else's failures. (The
//! source is what the edge vouches for, else the TCP peer: see `auth::grpc`.)
//!
//! A counter is forgotten once `window` has passed without a failure, counted from the
//! end of its lock, so waiting out a lock does not reset its backoff. Keys are derived
//! from the submitted email whether or not the account exists, so throttling reveals
//! nothing about which accounts exist.

use std::time::Duration;

use sqlx::Row;

use fusion_db::Db;

use crate::config::ThrottleConfig;
use crate::error::IdentityError;

/// The throttle key of an account (by submitted email) tried from `source`.
pub fn pair_key(email: &str, source: &str) -> String {
    format!("acct:{}|src:{source}", email.trim().to_lowercase())
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
    // A counter quiet for `window` since its last failure, or since its lock ended,
    // starts again at one.
    let row = sqlx::query(
        "INSERT INTO identity.login_throttle AS t (key, failures, window_start) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN greatest(t.updated_at, t.locked_until) < now() - $2
                             THEN 1 ELSE t.failures + 1 END,
             window_start = CASE WHEN greatest(t.updated_at, t.locked_until) < now() - $2
                                 THEN now() ELSE t.window_start END,
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

/// How long a key with `failures` counted failures stays locked: `base` at the limit,
/// doubling with every further failure (each can only come after the previous lock
/// ended, as a locked key is refused before its password is checked), capped at
/// [`MAX_LOCKOUT`].
fn lockout_for(failures: i32, max: i32, base: Duration) -> Duration {
    if max <= 0 || failures < max {
        return Duration::ZERO;
    }
    let doublings = u32::try_from((failures - max).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1 << doublings).min(MAX_LOCKOUT)
}

/// Clears a key's failures after a successful login.
pub async fn reset(db: &Db, key: &str) -> Result<(), IdentityError> {
    sqlx::query("DELETE FROM identity.login_throttle WHERE key = $1")
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes counters that no longer matter: quiet for `window` since their last failure
/// and since their lock ended (the moment [`record_failure`] would start them again at
/// one). Failed logins for made-up emails would otherwise grow the table forever.
pub async fn purge_stale(db: &Db, window: Duration) -> Result<u64, IdentityError> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(15));
    let done = sqlx::query(
        "DELETE FROM identity.login_throttle
         WHERE greatest(updated_at, locked_until) < now() - $1
           AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind(window)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_LOCKOUT, lockout_for, pair_key, source_key};

    #[test]
    fn pair_keys_ignore_the_emails_case_and_space_and_name_the_source() {
        assert_eq!(
            pair_key("  Admin@Acme.TEST ", "10.0.0.1"),
            "acct:admin@acme.test|src:10.0.0.1"
        );
        assert_eq!(
            pair_key("admin@acme.test", "10.0.0.1"),
            pair_key("ADMIN@acme.test", "10.0.0.1")
        );
        assert_ne!(
            pair_key("admin@acme.test", "10.0.0.1"),
            pair_key("admin@acme.test", "10.0.0.2")
        );
        assert_ne!(pair_key("a@b.c", "10.0.0.1"), source_key("10.0.0.1"));
    }

    #[test]
    fn lockout_starts_at_the_limit_and_doubles_with_every_further_failure() {
        let base = Duration::from_secs(60);
        assert_eq!(lockout_for(4, 5, base), Duration::ZERO);
        assert_eq!(lockout_for(5, 5, base), base);
        assert_eq!(lockout_for(6, 5, base), base * 2);
        assert_eq!(lockout_for(7, 5, base), base * 4);
        assert_eq!(lockout_for(9, 5, base), base * 16);
    }

    #[test]
    fn lockout_is_capped_and_a_zero_limit_disables_it() {
        let base = Duration::from_secs(60);
        assert_eq!(lockout_for(i32::MAX, 5, base), MAX_LOCKOUT);
        assert_eq!(lockout_for(1000, 0, base), Duration::ZERO);
    }
}
