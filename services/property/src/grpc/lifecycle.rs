//! The lot lifecycle over the wire: one transition at a time per lot, price changes,
//! the status and price histories, and the live availability feed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use rust_decimal::Decimal;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::Status;

use fusion_db::idempotency::RequestKey;
use fusion_db::resource::Read;
use fusion_proto::property::v1 as pb;
use fusion_service::api::{dec_str, total, ts};
use fusion_service::replay::{self, Begun};
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::api::API;
use crate::domain::amounts::price as parse_price;
use crate::domain::lifecycle::{Action, LotStatus, next};
use crate::error::PropertyError;
use crate::stock::{self, StatusChange};
use crate::store;
use crate::store::lots::{LotRow, TABLE, project_of, record_price};

/// The live availability feed a watcher reads.
pub(crate) type Watch =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::LotAvailabilityEvent, Status>> + Send>>;
use fusion_db::resource::Val;

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
        return Err(PropertyError::invalid("hold_duration", "must be at least one minute").into());
    }
    let d = Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs());
    if d > MAX_HOLD {
        return Err(PropertyError::invalid("hold_duration", "must be at most 14 days").into());
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
    deal: Option<i64>,
    request: Option<RequestKey>,
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
            deal: None,
            request: None,
        }
    }

    /// The crm deal a hold or reservation is for (`deal_id`; 0 is none).
    pub(crate) fn deal(mut self, deal_id: i64) -> Self {
        self.deal = (deal_id != 0).then_some(deal_id);
        self
    }

    /// The call's AIP-155 request key: a retry with it returns the first result.
    pub(crate) fn request(mut self, key: Option<RequestKey>) -> Self {
        self.request = key;
        self
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
/// FAILED_PRECONDITION naming the state they found. A call with the request id of an
/// earlier successful one returns that call's lot and changes nothing (AIP-155).
///
/// A hold or reservation for a deal asks crm first, before the transaction opens (so
/// no lock waits on crm), whether the deal is open and for this lot; a retry of a call
/// that succeeded returns its lot without asking again. The lot then belongs to the
/// deal; one held for another deal is not reserved for this one. Every status change
/// names the deal the lot is taken for, if any.
pub(crate) async fn apply(
    state: &AppState,
    ctx: &TenantContext,
    t: Transition<'_>,
) -> Result<pb::Lot, Status> {
    API.require_id("id", t.id)?;
    let method = t.action.method();
    if let Some(deal_id) = t.deal {
        API.require_id(crate::deals::FIELD, deal_id)?;
        if t.request.is_some()
            && let Begun::Replayed(first) =
                replay::begin(&state.kit, ctx.tenant_id, method, t.request).await?
        {
            return Ok(first);
        }
        state.deals.check_open(deal_id, t.id).await?;
    }
    let mut tx = match replay::begin(&state.kit, ctx.tenant_id, method, t.request).await? {
        Begun::Replayed(first) => return Ok(first),
        Begun::Fresh(attempt) => attempt,
    };
    let project_id = project_of(&mut tx, t.id).await?;
    stock::lock_project(&mut tx, project_id).await?;
    let lot: LotRow = TABLE
        .fetch(&mut tx, t.id, Read::live().for_update())
        .await?;
    API.check_etag(t.etag, lot.version)?;
    let mut from = lot.status();
    let mut taken_for = lot.deal_id;
    if stock::release_if_lapsed(&mut tx, &lot, None).await? {
        from = LotStatus::Available;
        taken_for = None;
    }
    let to = next(from, t.action).map_err(PropertyError::from)?;
    if let (Some(deal_id), Some(other)) = (t.deal, taken_for)
        && deal_id != other
    {
        return Err(PropertyError::LotHeldForAnotherDeal {
            lot_id: t.id,
            deal_id: other,
        }
        .into());
    }
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
    // Back on the market (or off it), the lot belongs to no deal (set_status clears it).
    store::lots::set_status(&mut tx, t.id, to, hold_until, reserved_price).await?;
    if let Some(deal_id) = t.deal {
        store::lots::set_deal(&mut tx, t.id, Some(deal_id)).await?;
    }
    stock::record_status(
        &mut tx,
        &lot.reference(),
        StatusChange {
            from: Some(from.as_str()),
            to: to.as_str(),
            reason: t.reason,
            deposit: t.deposit,
            actor_user_id: Some(ctx.user_id),
            deal_id: t.deal.or(taken_for),
        },
    )
    .await?;
    stock::refresh_figures(&mut tx, project_id).await?;
    let row: LotRow = TABLE.fetch(&mut tx, t.id, Read::live()).await?;
    Ok(tx.commit(row.into_pb(state)).await?)
}

/// SetLotPrice: a price effective now changes the lot at once; one dated in the
/// future waits in the price history for the housekeeping job. A call with the request
/// id of an earlier successful one returns that call's lot and changes nothing.
pub(crate) async fn set_price(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::SetLotPriceRequest,
) -> Result<pb::Lot, Status> {
    const METHOD: &str = "SetLotPrice";
    let key = state.kit.request_key(&r.request_id, &r)?;
    API.require_id("id", r.id)?;
    let price = parse_price(&r.price)
        .map_err(|m| PropertyError::invalid("price", m))?
        .ok_or_else(|| PropertyError::invalid("price", "is required"))?;
    let effective: Option<DateTime<Utc>> = r
        .effective_time
        .as_ref()
        .map(|t| API.from_ts("effective_time", t))
        .transpose()?
        .filter(|t| *t > Utc::now());
    let reason = fusion_service::api::opt_str(&r.reason);
    let mut tx = match replay::begin(&state.kit, ctx.tenant_id, METHOD, key).await? {
        Begun::Replayed(first) => return Ok(first),
        Begun::Fresh(attempt) => attempt,
    };
    let project_id = project_of(&mut tx, r.id).await?;
    stock::lock_project(&mut tx, project_id).await?;
    let lot: LotRow = TABLE
        .fetch(&mut tx, r.id, Read::live().for_update())
        .await?;
    API.check_etag(&r.etag, lot.version)?;
    match effective {
        Some(at) => {
            let price = store::lots::FuturePrice { price, at, reason };
            store::lots::schedule_price(&mut tx, ctx, r.id, price).await?;
        }
        None => {
            let values = vec![("price", Val::Decimal(Some(price)))];
            TABLE.update(&mut tx, r.id, values).await?;
            record_price(&mut tx, ctx.tenant_id, r.id, price, reason, ctx.user_id).await?;
            stock::refresh_figures(&mut tx, project_id).await?;
        }
    }
    let row: LotRow = TABLE.fetch(&mut tx, r.id, Read::live()).await?;
    Ok(tx.commit(row.into_pb(state)).await?)
}

pub(crate) async fn status_changes(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::ListLotStatusChangesRequest,
) -> Result<pb::ListLotStatusChangesResponse, Status> {
    let page = store::lots::status_changes(state, ctx, r.lot_id, r.page_size, r.page_token).await?;
    Ok(pb::ListLotStatusChangesResponse {
        lot_status_changes: page
            .items
            .into_iter()
            .map(|c| pb::LotStatusChange {
                id: c.id,
                lot_id: c.lot_id,
                from_status: c.from_status.unwrap_or_default(),
                to_status: c.to_status,
                reason: c.reason.unwrap_or_default(),
                actor_user_id: c.actor_user_id.unwrap_or_default(),
                deal_id: c.deal_id.unwrap_or_default(),
                change_time: Some(ts(c.created_at)),
            })
            .collect(),
        next_page_token: page.next_page_token,
        total_size: total(page.total_size),
    })
}

pub(crate) async fn prices(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::ListLotPricesRequest,
) -> Result<pb::ListLotPricesResponse, Status> {
    let page = store::lots::prices(state, ctx, r.lot_id, r.page_size, r.page_token).await?;
    Ok(pb::ListLotPricesResponse {
        lot_prices: page
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
                currency_code: p.currency,
            })
            .collect(),
        next_page_token: page.next_page_token,
        total_size: total(page.total_size),
    })
}

/// The caller's tenant's lot status changes (of one project, or all), as they commit.
/// Each event carries its place on the stream (`sequence`, from 1). A watcher too slow
/// to keep up is told so (ABORTED, `WATCH_LAGGED`) rather than silently skipped past;
/// it re-lists and watches again.
pub(crate) async fn watch(
    state: &AppState,
    ctx: &TenantContext,
    project_id: i64,
) -> Result<Watch, Status> {
    if project_id != 0 {
        API.require_id("project_id", project_id)?;
        let mut tx = state.db.begin(ctx.tenant_id).await?;
        let live = store::projects::is_live(&mut tx, project_id).await?;
        tx.commit().await?;
        if !live {
            return Err(PropertyError::not_found("project", project_id).into());
        }
    }
    let tenant_id = ctx.tenant_id;
    let events = BroadcastStream::new(state.events.subscribe());
    // The stream's own numbering of the events it sends: 1, 2, 3, ...
    let mut sequence = 0_i64;
    let stream = events.filter_map(move |received| {
        let item = match received {
            Ok(e)
                if e.tenant_id == tenant_id && (project_id == 0 || e.project_id == project_id) =>
            {
                sequence += 1;
                Some(Ok(pb::LotAvailabilityEvent {
                    lot_id: e.lot_id,
                    project_id: e.project_id,
                    stage_id: e.stage_id,
                    lot_number: e.lot_number.clone(),
                    from_status: e.from_status.clone().unwrap_or_default(),
                    to_status: e.to_status.clone(),
                    price: dec_str(e.price),
                    currency_code: e.currency_code.clone(),
                    change_time: Some(ts(e.change_time)),
                    sequence,
                }))
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                Some(Err(PropertyError::WatchLagged { missed }.into()))
            }
        };
        std::future::ready(item)
    });
    Ok(Box::pin(stream))
}
