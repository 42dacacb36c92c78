//! The lot lifecycle over the wire: one transition at a time per lot, price changes,
//! the status and price histories, and the live availability feed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use rust_decimal::Decimal;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::Status;

use fusion_db::db_status;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, ScopeValue, list};
use fusion_db::resource::Read;
use fusion_proto::property::v1 as pb;
use fusion_service::api::{dec_str, total, ts};
use fusion_tenancy::TenantContext;

use super::lots::{LotRow, TABLE, parse_price, project_of, record_price};
use super::{API, update_row};
use crate::domain::lifecycle::{Action, LotStatus, next};
use crate::stock::{self, StatusChange};
use crate::{AppState, DOMAIN};

/// How long a hold lasts when the caller does not say.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(48 * 3600);
/// The longest hold.
pub const MAX_HOLD: Duration = Duration::from_secs(14 * 24 * 3600);

/// The hold a HoldLot asks for: the default when unset, else within (0, 14 days].
pub(crate) fn hold_duration(requested: Option<prost_types::Duration>) -> Result<Duration, Status> {
    let Some(d) = requested else {
        return Ok(DEFAULT_HOLD);
    };
    if d.seconds < 60 || d.nanos < 0 {
        return Err(API.invalid("hold_duration", "must be at least one minute"));
    }
    let d = Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs());
    if d > MAX_HOLD {
        return Err(API.invalid("hold_duration", "must be at most 14 days"));
    }
    Ok(d)
}

/// One lifecycle call.
#[derive(Debug)]
pub(crate) struct Transition<'a> {
    action: Action,
    id: i64,
    etag: &'a str,
    reason: Option<&'a str>,
    hold_for: Duration,
    deposit: Option<Decimal>,
}

impl<'a> Transition<'a> {
    pub(crate) fn new(action: Action, id: i64, etag: &'a str, reason: &'a str) -> Self {
        Self {
            action,
            id,
            etag,
            reason: fusion_service::api::opt_str(reason),
            hold_for: DEFAULT_HOLD,
            deposit: None,
        }
    }

    pub(crate) fn hold_for(mut self, d: Duration) -> Self {
        self.hold_for = d;
        self
    }

    pub(crate) fn deposit(mut self, d: Option<Decimal>) -> Self {
        self.deposit = d;
        self
    }
}

/// Applies a transition: locks the project then the lot, so of many concurrent calls
/// on one lot exactly one sees the state it needs and the rest are refused with
/// FAILED_PRECONDITION naming the state they found.
pub(crate) async fn apply(
    state: &AppState,
    ctx: &TenantContext,
    t: Transition<'_>,
) -> Result<pb::Lot, Status> {
    API.require_id("id", t.id)?;
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    let project_id = project_of(&mut tx, t.id, false).await?;
    stock::lock_project(&mut tx, project_id).await?;
    let lot: LotRow = TABLE
        .fetch(&mut tx, t.id, Read::live().for_update())
        .await?;
    API.check_etag(t.etag, lot.version)?;
    let mut from = lot.status();
    if release_if_lapsed(&mut tx, &lot, None).await? {
        from = LotStatus::Available;
    }
    let to = next(from, t.action).map_err(|refused| {
        API.precondition(
            &format!("LOT_{}", from.as_str().to_uppercase()),
            refused.to_string(),
        )
    })?;
    let hold_until = (to == LotStatus::Hold).then(|| {
        Utc::now() + chrono::Duration::from_std(t.hold_for).unwrap_or(chrono::Duration::MAX)
    });
    // The buyer pays the price the lot had when it was reserved, whatever the list
    // price does afterwards; a lot back on the market has no reserved price.
    let reserved_price = match (t.action, to) {
        (Action::Reserve, _) => lot.price,
        (_, LotStatus::Available | LotStatus::Withdrawn) => None,
        _ => lot.reserved_price,
    };
    sqlx::query(
        "UPDATE property.lots SET status = $2, hold_expires_at = $3, reserved_price = $4,
                updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(t.id)
    .bind(to.as_str())
    .bind(hold_until)
    .bind(reserved_price)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    stock::record_status(
        &mut tx,
        &lot.reference(),
        StatusChange {
            from: Some(from.as_str()),
            to: to.as_str(),
            reason: t.reason,
            deposit: t.deposit,
            actor_user_id: Some(ctx.user_id),
        },
    )
    .await?;
    stock::refresh_figures(&mut tx, project_id).await?;
    let row: LotRow = TABLE.fetch(&mut tx, t.id, Read::live()).await?;
    tx.commit().await?;
    Ok(row.into_pb(state))
}

/// If `lot` (locked, with its project) is on a hold that has lapsed, puts it back on the
/// market and records why. Returns whether it did. The housekeeping job does this for
/// every lapsed hold; doing it here too means a lapsed hold never blocks a sale.
pub(crate) async fn release_if_lapsed(
    conn: &mut sqlx::PgConnection,
    lot: &LotRow,
    actor_user_id: Option<i64>,
) -> Result<bool, Status> {
    let lapsed = lot.status() == LotStatus::Hold
        && lot.hold_expires_at.is_some_and(|until| until <= Utc::now());
    if !lapsed {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE property.lots SET status = 'available', hold_expires_at = NULL,
                updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(lot.id)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    stock::record_status(
        conn,
        &lot.reference(),
        StatusChange {
            from: Some(LotStatus::Hold.as_str()),
            to: LotStatus::Available.as_str(),
            reason: Some("hold expired"),
            deposit: None,
            actor_user_id,
        },
    )
    .await?;
    Ok(true)
}

/// SetLotPrice: a price effective now changes the lot at once; one dated in the
/// future waits in the price history for the housekeeping job.
pub(crate) async fn set_price(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::SetLotPriceRequest,
) -> Result<pb::Lot, Status> {
    API.require_id("id", r.id)?;
    let price = parse_price(&r.price)
        .map_err(|m| API.invalid("price", m))?
        .ok_or_else(|| API.invalid("price", "is required"))?;
    let effective: Option<DateTime<Utc>> = r
        .effective_time
        .as_ref()
        .map(|t| API.from_ts("effective_time", t))
        .transpose()?
        .filter(|t| *t > Utc::now());
    let reason = fusion_service::api::opt_str(&r.reason);
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    let project_id = project_of(&mut tx, r.id, false).await?;
    stock::lock_project(&mut tx, project_id).await?;
    let lot: LotRow = TABLE
        .fetch(&mut tx, r.id, Read::live().for_update())
        .await?;
    API.check_etag(&r.etag, lot.version)?;
    match effective {
        Some(at) => {
            sqlx::query(
                "INSERT INTO property.lot_price_history
                     (tenant_id, lot_id, price, effective_from, reason, actor_user_id)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(ctx.tenant_id)
            .bind(r.id)
            .bind(price)
            .bind(at)
            .bind(reason)
            .bind(ctx.user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        }
        None => {
            update_row(
                &mut tx,
                TABLE.name,
                r.id,
                vec![("price", super::Val::Decimal(Some(price)))],
            )
            .await?;
            record_price(&mut tx, ctx.tenant_id, r.id, price, reason, ctx.user_id).await?;
            stock::refresh_figures(&mut tx, project_id).await?;
        }
    }
    let row: LotRow = TABLE.fetch(&mut tx, r.id, Read::live()).await?;
    tx.commit().await?;
    Ok(row.into_pb(state))
}

/// A history List scoped to one live lot of the caller's tenant, newest first.
async fn history<T>(
    state: &AppState,
    ctx: &TenantContext,
    spec: &ListSpec,
    lot_id: i64,
    page_size: i32,
    page_token: String,
) -> Result<fusion_db::list::Page<T>, Status>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    API.require_id("lot_id", lot_id)?;
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    project_of(&mut tx, lot_id, false).await?;
    let params = ListParams {
        page_size,
        page_token,
        ..ListParams::default()
    };
    let page = list::<T>(
        &mut tx,
        DOMAIN,
        spec,
        &params,
        &state.pages,
        Some(ctx.tenant_id),
        Some(&[("lot_id", ScopeValue::Int(lot_id))]),
    )
    .await?;
    tx.commit().await?;
    Ok(page)
}

#[derive(sqlx::FromRow)]
struct StatusChangeRow {
    id: i64,
    lot_id: i64,
    from_status: Option<String>,
    to_status: String,
    reason: Option<String>,
    actor_user_id: Option<i64>,
    created_at: DateTime<Utc>,
}

const STATUS_CHANGES: ListSpec = ListSpec {
    table: "property.lot_status_history",
    select: "id, lot_id, from_status, to_status, reason, actor_user_id, created_at",
    fields: &[FieldSpec::new(
        "change_time",
        "created_at",
        FieldKind::Timestamp,
    )],
    order_fields: &["change_time"],
    default_order: "change_time desc",
    soft_delete: false,
    tenant_scoped: true,
};

pub(crate) async fn status_changes(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::ListLotStatusChangesRequest,
) -> Result<pb::ListLotStatusChangesResponse, Status> {
    let page = history::<StatusChangeRow>(
        state,
        ctx,
        &STATUS_CHANGES,
        r.lot_id,
        r.page_size,
        r.page_token,
    )
    .await?;
    Ok(pb::ListLotStatusChangesResponse {
        status_changes: page
            .items
            .into_iter()
            .map(|c| pb::LotStatusChange {
                id: c.id,
                lot_id: c.lot_id,
                from_status: c.from_status.unwrap_or_default(),
                to_status: c.to_status,
                reason: c.reason.unwrap_or_default(),
                actor_user_id: c.actor_user_id.unwrap_or_default(),
                change_time: Some(ts(c.created_at)),
            })
            .collect(),
        next_page_token: page.next_page_token,
        total_size: total(page.total_size),
    })
}

#[derive(sqlx::FromRow)]
struct PriceRow {
    id: i64,
    lot_id: i64,
    price: Decimal,
    effective_from: DateTime<Utc>,
    reason: Option<String>,
    actor_user_id: Option<i64>,
    created_at: DateTime<Utc>,
}

const PRICES: ListSpec = ListSpec {
    table: "property.lot_price_history",
    select: "id, lot_id, price, effective_from, reason, actor_user_id, created_at",
    fields: &[FieldSpec::new(
        "effective_time",
        "effective_from",
        FieldKind::Timestamp,
    )],
    order_fields: &["effective_time"],
    default_order: "effective_time desc",
    soft_delete: false,
    tenant_scoped: true,
};

pub(crate) async fn prices(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::ListLotPricesRequest,
) -> Result<pb::ListLotPricesResponse, Status> {
    let page =
        history::<PriceRow>(state, ctx, &PRICES, r.lot_id, r.page_size, r.page_token).await?;
    Ok(pb::ListLotPricesResponse {
        prices: page
            .items
            .into_iter()
            .map(|p| pb::LotPrice {
                id: p.id,
                lot_id: p.lot_id,
                price: p.price.to_string(),
                effective_time: Some(ts(p.effective_from)),
                reason: p.reason.unwrap_or_default(),
                actor_user_id: p.actor_user_id.unwrap_or_default(),
                create_time: Some(ts(p.created_at)),
            })
            .collect(),
        next_page_token: page.next_page_token,
        total_size: total(page.total_size),
    })
}

/// The caller's tenant's lot status changes (of one project, or all), as they commit.
/// A watcher too slow to keep up is told so (ABORTED) rather than silently skipped
/// past; it re-lists and watches again.
pub(crate) async fn watch(
    state: &AppState,
    ctx: &TenantContext,
    project_id: i64,
) -> Result<super::lots::Watch, Status> {
    if project_id != 0 {
        API.require_id("project_id", project_id)?;
        let mut tx = state.db.begin(ctx.tenant_id).await?;
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM property.projects WHERE id = $1 AND deleted_at IS NULL)",
        )
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
        tx.commit().await?;
        if !live {
            return Err(API.not_found("project", project_id));
        }
    }
    let tenant_id = ctx.tenant_id;
    let events = BroadcastStream::new(state.events.subscribe());
    let stream = events.filter_map(move |received| {
        let item = match received {
            Ok(e)
                if e.tenant_id == tenant_id && (project_id == 0 || e.project_id == project_id) =>
            {
                Some(Ok(pb::LotAvailabilityEvent {
                    lot_id: e.lot_id,
                    project_id: e.project_id,
                    stage_id: e.stage_id,
                    lot_number: e.lot_number.clone(),
                    from_status: e.from_status.clone().unwrap_or_default(),
                    to_status: e.to_status.clone(),
                    price: dec_str(e.price),
                    change_time: Some(ts(e.change_time)),
                }))
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                Some(Err(fusion_proto::errors::aborted(
                    DOMAIN,
                    "WATCH_LAGGED",
                    format!(
                        "the watcher fell {missed} events behind; list the lots and watch again"
                    ),
                )))
            }
        };
        std::future::ready(item)
    });
    Ok(Box::pin(stream))
}
