//! The SQL that keeps a project's stock consistent, shared by the lot handlers and the
//! housekeeping job.
//!
//! Every change to a lot runs, in one transaction: lock the project row
//! ([`lock_project`]) → change the lot → [`record_status`] (history, live event and
//! the `property.lot.status_changed` integration event) → [`refresh_figures`]. Taking the project lock first serialises writers of one
//! project, so each recomputation of the denormalised figures sees every change
//! committed before it, and the figures are exact however many writers race.

use crate::SCHEMA;
use crate::domain::lifecycle::LotStatus;
use crate::error::PropertyError;
use crate::events::{LotEvent, notify};
use crate::store::lots::LotRow;
use chrono::{DateTime, Utc};
use fusion_db::TenantTx;
use fusion_events::Event;
use fusion_proto::property::v1::LotStatusChanged;
use rust_decimal::Decimal;
use sqlx::PgConnection;

/// The integration event every lot status change publishes
/// (`fusion.property.v1.LotStatusChanged`).
pub const LOT_STATUS_CHANGED: &str = "property.lot.status_changed";

/// Locks project `project_id` for the rest of the transaction (NOT_FOUND if missing
/// or deleted).
pub(crate) async fn lock_project(
    conn: &mut PgConnection,
    project_id: i64,
) -> Result<(), PropertyError> {
    sqlx::query_scalar::<_, i64>(
        "SELECT id FROM property.projects WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(project_id)
    .fetch_optional(conn)
    .await?
    .map(|_| ())
    .ok_or_else(|| PropertyError::not_found("project", project_id))
}

/// Recomputes `total_lots`, `available_lots`, `min_price` and `max_price` of a project
/// from its live lots (prices over the lots still available). Call after
/// [`lock_project`], in the transaction that changed the lots.
pub(crate) async fn refresh_figures(
    conn: &mut PgConnection,
    project_id: i64,
) -> Result<(), PropertyError> {
    sqlx::query(
        "UPDATE property.projects p SET
             total_lots = s.total, available_lots = s.available,
             min_price = s.min_price, max_price = s.max_price
         FROM (SELECT count(*)::int AS total,
                      count(*) FILTER (WHERE status = 'available')::int AS available,
                      min(price) FILTER (WHERE status = 'available') AS min_price,
                      max(price) FILTER (WHERE status = 'available') AS max_price
                 FROM property.lots WHERE project_id = $1 AND deleted_at IS NULL) s
         WHERE p.id = $1",
    )
    .bind(project_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A lot's identity and state, as a status change reports it.
#[derive(Clone, Debug)]
pub(crate) struct LotRef {
    pub tenant_id: i64,
    pub lot_id: i64,
    pub project_id: i64,
    pub stage_id: i64,
    pub lot_number: String,
    pub price: Option<Decimal>,
    /// The ISO 4217 currency of `price` (the project's).
    pub currency: String,
}

/// One status change to record.
#[derive(Clone, Debug)]
pub(crate) struct StatusChange<'a> {
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub reason: Option<&'a str>,
    pub deposit: Option<Decimal>,
    /// The user or service account that made it; `None` when the system did.
    pub actor_user_id: Option<i64>,
    /// The deal the change was made for (a hold or reservation for it, its win, loss
    /// or reopening).
    pub deal_id: Option<i64>,
}

/// Writes the change to the lot's status history, queues its live event and appends
/// `property.lot.status_changed` to the outbox, all in `tx`: the one place every lot
/// transition is recorded, so every one is announced exactly when it commits. Call
/// with the lot locked (its events then follow its commit order).
pub(crate) async fn record_status(
    tx: &mut TenantTx,
    lot: &LotRef,
    change: StatusChange<'_>,
) -> Result<(), PropertyError> {
    let at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO property.lot_status_history
             (tenant_id, lot_id, from_status, to_status, reason, deposit_amount, actor_user_id,
              deal_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at",
    )
    .bind(lot.tenant_id)
    .bind(lot.lot_id)
    .bind(change.from)
    .bind(change.to)
    .bind(change.reason)
    .bind(change.deposit)
    .bind(change.actor_user_id)
    .bind(change.deal_id)
    .fetch_one(&mut **tx)
    .await?;
    let changed = LotStatusChanged {
        lot_id: lot.lot_id,
        project_id: lot.project_id,
        stage_id: lot.stage_id,
        lot_number: lot.lot_number.clone(),
        from_status: change.from.unwrap_or_default().to_owned(),
        to_status: change.to.to_owned(),
        deal_id: change.deal_id.unwrap_or_default(),
        reason: change.reason.unwrap_or_default().to_owned(),
        actor_user_id: change.actor_user_id.unwrap_or_default(),
    };
    fusion_events::outbox::append(
        tx,
        SCHEMA,
        Event::new(LOT_STATUS_CHANGED, lot.lot_id, &changed),
    )
    .await?;
    notify(
        tx,
        &LotEvent {
            tenant_id: lot.tenant_id,
            lot_id: lot.lot_id,
            project_id: lot.project_id,
            stage_id: lot.stage_id,
            lot_number: lot.lot_number.clone(),
            from_status: change.from.map(str::to_owned),
            to_status: change.to.to_owned(),
            price: lot.price,
            currency_code: lot.currency.clone(),
            change_time: at,
        },
    )
    .await
}

/// Rewrites the feature names of every lot linked to `feature_id` (after the feature is
/// renamed, deleted or restored), so `features:"Pool"` filters stay true.
pub(crate) async fn refresh_feature_names(
    conn: &mut PgConnection,
    feature_id: i64,
) -> Result<(), PropertyError> {
    sqlx::query(
        "UPDATE property.lots l SET features = names.list, version = l.version + 1
         FROM (SELECT lf.lot_id,
                      COALESCE(jsonb_agg(f.name ORDER BY f.name) FILTER (WHERE f.deleted_at IS NULL), '[]'::jsonb) AS list
                 FROM property.lot_features lf
                 JOIN property.features f ON f.tenant_id = lf.tenant_id AND f.id = lf.feature_id
                WHERE lf.lot_id IN (SELECT lot_id FROM property.lot_features WHERE feature_id = $1)
                GROUP BY lf.lot_id) names
         WHERE l.id = names.lot_id",
    )
    .bind(feature_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the features linked to a lot and rewrites its feature names. Every id must
/// be a live feature of the tenant (INVALID_ARGUMENT naming the first that is not).
pub(crate) async fn set_lot_features(
    conn: &mut PgConnection,
    tenant_id: i64,
    lot_id: i64,
    feature_ids: &[i64],
) -> Result<(), PropertyError> {
    let mut ids = feature_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let live: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM property.features WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR KEY SHARE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if let Some(missing) = ids.iter().find(|id| !live.contains(id)) {
        return Err(PropertyError::invalid(
            "lot.feature_ids",
            format!("feature {missing} does not exist"),
        ));
    }
    sqlx::query("DELETE FROM property.lot_features WHERE lot_id = $1")
        .bind(lot_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO property.lot_features (tenant_id, lot_id, feature_id)
         SELECT $1, $2, unnest($3::bigint[])",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE property.lots SET features = COALESCE(
             (SELECT jsonb_agg(f.name ORDER BY f.name) FROM property.lot_features lf
                JOIN property.features f ON f.tenant_id = lf.tenant_id AND f.id = lf.feature_id
               WHERE lf.lot_id = $1 AND f.deleted_at IS NULL), '[]'::jsonb)
         WHERE id = $1",
    )
    .bind(lot_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// If `lot` (locked, with its project) is on a hold that has lapsed, puts it back on the
/// market and records why. Returns whether it did. The housekeeping job does this for
/// every lapsed hold; doing it here too means a lapsed hold never blocks a sale.
pub(crate) async fn release_if_lapsed(
    tx: &mut TenantTx,
    lot: &LotRow,
    actor_user_id: Option<i64>,
) -> Result<bool, PropertyError> {
    let lapsed = lot.status() == LotStatus::Hold
        && lot.hold_expires_at.is_some_and(|until| until <= Utc::now());
    if !lapsed {
        return Ok(false);
    }
    // Back on the market, it belongs to no deal any more.
    sqlx::query(
        "UPDATE property.lots SET status = 'available', hold_expires_at = NULL, deal_id = NULL,
                updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(lot.id)
    .execute(&mut **tx)
    .await?;
    record_status(
        tx,
        &lot.reference(),
        StatusChange {
            from: Some(LotStatus::Hold.as_str()),
            to: LotStatus::Available.as_str(),
            reason: Some("hold expired"),
            deposit: None,
            actor_user_id,
            deal_id: lot.deal_id,
        },
    )
    .await?;
    Ok(true)
}
