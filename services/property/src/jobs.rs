//! Housekeeping: releases holds that have lapsed, applies prices whose effective time
//! has come, and purges soft-deleted rows past retention (media with their objects).
//!
//! Finding the work crosses tenants, so it runs on a pool connected as the owner role,
//! which row-level security lets see exactly that (lapsed holds, due prices, deleted
//! rows) and nothing else. The work itself runs as the application role, one tenant-
//! and project-bound transaction at a time, under the locking order of
//! [`crate::stock`], so it never races a user's transition on the same lot.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::sync::watch;

use fusion_db::Db;
use fusion_db::resource::Read;

use crate::error::PropertyError;
use crate::media_store::MediaStore;
use crate::stock;
use crate::store::lots::{LotRow, TABLE as LOTS};

/// What one housekeeping pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Holds released because they lapsed.
    pub holds_released: u64,
    /// Scheduled prices applied.
    pub prices_applied: u64,
}

/// Soft-deletable tables purged row by row, children before parents so a purge never
/// trips a foreign key. Media is purged first and apart ([`purge_media`]): its objects
/// go with it.
pub const PURGED_TABLES: &[&str] = &[
    "property.lots",
    "property.stages",
    "property.projects",
    "property.developers",
    "property.features",
];

/// Runs one pass over every tenant.
pub async fn sweep(owner: &PgPool, db: &Db) -> Result<Swept, PropertyError> {
    let mut swept = Swept::default();
    let lapsed: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT tenant_id, project_id, id FROM property.lots
          WHERE status = 'hold' AND hold_expires_at <= now() AND deleted_at IS NULL
          ORDER BY tenant_id, project_id, id",
    )
    .fetch_all(owner)
    .await?;
    for (tenant_id, project_id, lot_id) in lapsed {
        let mut tx = db.begin(tenant_id).await?;
        stock::lock_project(&mut tx, project_id).await?;
        let lot: LotRow = LOTS
            .fetch(&mut tx, lot_id, Read::live().for_update())
            .await?;
        // Re-checked under the lock: the lot may have been reserved or released since.
        if stock::release_if_lapsed(&mut tx, &lot, None).await? {
            stock::refresh_figures(&mut tx, project_id).await?;
            swept.holds_released += 1;
        }
        tx.commit().await?;
    }

    let due: Vec<(i64, i64, i64, Decimal, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tenant_id, id, lot_id, price, effective_from FROM property.lot_price_history
          WHERE applied_at IS NULL AND effective_from <= now()
          ORDER BY tenant_id, effective_from, id",
    )
    .fetch_all(owner)
    .await?;
    for (tenant_id, entry_id, lot_id, price, _) in due {
        let mut tx = db.begin(tenant_id).await?;
        let Some(project_id) =
            sqlx::query_scalar::<_, i64>("SELECT project_id FROM property.lots WHERE id = $1")
                .bind(lot_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            continue;
        };
        // A deleted project or lot keeps its scheduled price until it is restored.
        if stock::lock_project(&mut tx, project_id).await.is_err() {
            continue;
        }
        let applied = sqlx::query(
            "UPDATE property.lot_price_history SET applied_at = now(), updated_at = now()
              WHERE id = $1 AND applied_at IS NULL",
        )
        .bind(entry_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let changed = sqlx::query(
            "UPDATE property.lots SET price = $2, updated_at = now(), version = version + 1
              WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(lot_id)
        .bind(price)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if applied == 1 && changed == 1 {
            stock::refresh_figures(&mut tx, project_id).await?;
            tx.commit().await?;
            swept.prices_applied += 1;
        }
    }
    Ok(swept)
}

/// Removes media soft-deleted more than `retention` ago, each row and then its object,
/// and returns how many went. A row is removed first (only while it is still deleted
/// past retention, so an Undelete that won a race keeps it); if its object then cannot
/// be removed, the object is left behind, never a row pointing at nothing.
pub async fn purge_media(
    owner: &PgPool,
    store: &MediaStore,
    retention: Duration,
) -> Result<u64, PropertyError> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM property.property_media WHERE deleted_at < $1 ORDER BY id LIMIT 1000",
    )
    .bind(cutoff)
    .fetch_all(owner)
    .await?;
    let mut purged = 0;
    for id in due {
        let key: Option<String> = sqlx::query_scalar(
            "DELETE FROM property.property_media WHERE id = $1 AND deleted_at < $2
             RETURNING file_path",
        )
        .bind(id)
        .bind(cutoff)
        .fetch_optional(owner)
        .await?;
        let Some(key) = key else { continue };
        purged += 1;
        if let Err(e) = store.remove(&key).await {
            tracing::warn!(media_id = id, error = %e, "purged media left its object behind");
        }
    }
    Ok(purged)
}

/// Sweeps every `interval` and purges hourly until `stop` turns true.
pub fn spawn(
    owner: PgPool,
    db: Db,
    media: MediaStore,
    interval: Duration,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sweep_ticker = tokio::time::interval(interval);
        let mut purge_ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = sweep_ticker.tick() => match sweep(&owner, &db).await {
                    Ok(s) if s == Swept::default() => {}
                    Ok(s) => tracing::info!(holds_released = s.holds_released, prices_applied = s.prices_applied, "housekeeping"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
                },
                _ = purge_ticker.tick() => {
                    match purge_media(&owner, &media, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(media = n, "purged soft-deleted media"),
                        Err(e) => tracing::warn!(error = %e, "media purge failed; will retry"),
                    }
                    match fusion_db::soft_delete::purge(&owner, PURGED_TABLES, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "purged soft-deleted rows"),
                        Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
                    }
                    match fusion_db::idempotency::prune(&owner, "property.idempotency_keys").await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "pruned expired request ids"),
                        Err(e) => tracing::warn!(error = %e, "request id pruning failed; will retry"),
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}
