//! Soft delete (AIP-164): Delete sets `deleted_at`, Undelete clears it, List hides
//! deleted rows unless `show_deleted`, and a purge job removes rows deleted longer ago
//! than the retention period.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

/// How long soft-deleted rows are kept before the purge job removes them.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The policy each migration adds to a soft-deletable table (replace `{table}`):
/// the owner role may read and remove rows that are already soft-deleted, across tenants.
pub const PURGE_POLICY: &str = "CREATE POLICY purge_deleted ON {table} FOR ALL TO fusion_owner \
     USING (deleted_at IS NOT NULL)";

/// When a row deleted at `deleted_at` will be purged.
pub fn purge_time(deleted_at: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    deleted_at + chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX)
}

/// Hard-deletes rows of `tables` soft-deleted more than `retention` ago.
///
/// Purging crosses tenants by nature, so it runs on a pool connected as the owner role
/// (the migration URL); request handling never uses that pool. Row-level security is
/// forced on the owner too, so every soft-deletable table carries one extra policy,
/// [`PURGE_POLICY`], that lets the owner role, and only it, see rows that are already
/// soft-deleted. Returns the rows removed.
pub async fn purge(
    owner_pool: &PgPool,
    tables: &[&str],
    retention: Duration,
) -> Result<u64, sqlx::Error> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut removed = 0;
    for table in tables {
        // Table names are constants supplied by the service, never input.
        let sql = format!("DELETE FROM {table} WHERE deleted_at IS NOT NULL AND deleted_at < $1");
        removed += sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cutoff)
            .execute(owner_pool)
            .await?
            .rows_affected();
    }
    Ok(removed)
}

/// Runs [`purge`] on `tables`, and prunes expired request ids from `request_ids`
/// (see [`crate::idempotency::prune`]), every `interval` until `shutdown` turns true.
pub fn spawn_purge_job(
    owner_pool: PgPool,
    tables: Vec<&'static str>,
    request_ids: &'static str,
    retention: Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    match purge(&owner_pool, &tables, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "purged soft-deleted rows"),
                        Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
                    }
                    match crate::idempotency::prune(&owner_pool, request_ids).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "pruned expired request ids"),
                        Err(e) => tracing::warn!(error = %e, "request id pruning failed; will retry"),
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
            }
        }
    })
}

/// Soft-deletes (`deleted`) or restores row `id` of `table` (a trusted constant, with
/// `deleted_at`, `updated_at` and `version` columns), bumping its version so its etag
/// changes. Runs in the caller's tenant-bound transaction.
pub async fn set_deleted(
    conn: &mut sqlx::PgConnection,
    domain: &'static str,
    table: &'static str,
    id: i64,
    deleted: bool,
) -> Result<(), crate::Error> {
    let deleted_at = if deleted { "now()" } else { "NULL" };
    let sql = format!(
        "UPDATE {table} SET deleted_at = {deleted_at}, updated_at = now(), version = version + 1 WHERE id = $1"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(conn)
        .await
        .map_err(|e| crate::Error::from_sqlx(domain, e))?;
    Ok(())
}
