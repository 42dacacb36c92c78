//! `fusion.crm.v1.DealService`: sales opportunities moving through the tenant's deal
//! stages.
//!
//! A deal's status is always its stage's outcome (the database holds us to it with a
//! three-column foreign key), so the stage changes only through MoveDealStage (between
//! open stages, or to reopen a closed deal), WinDeal and LoseDeal, each of which locks
//! the deal, so of two concurrent closes exactly one succeeds. Its lot (property) and
//! assignee (identity) are checked with their owners, as the caller, before the
//! transaction opens; its lead and contact are live rows of this schema, key-share
//! locked until the write commits. A lot has at most one won deal per tenant (see
//! `require_sole_winner`). Winning, losing and reopening a deal are announced on the
//! outbox (`crm.deal.won`, `crm.deal.lost`, `crm.deal.reopened`) in the transaction
//! that makes the change, so property can sell or release its lot.

use chrono::NaiveDate;
use tonic::{Request, Response, Status};

use fusion_db::idempotency::RequestKey;
use fusion_db::list::ListParams;
use fusion_db::resource::Val;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::deal_service_server::DealService;
use fusion_proto::errors::FieldViolation;
use fusion_service::api::total;
use fusion_service::standard;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::domain::{pipeline, validate};
use crate::error::{CrmError, Outcome};
use crate::grpc::{API, CrmApi, Locked, lock, parts, reply, write};
use crate::store::deals::*;
use crate::store::pipeline::{ensure_pipeline, require_deal_stage};

/// WinDeal and LoseDeal: closes the open deal in the stage the request names (or the
/// tenant's first with the outcome), on its date (or today in the tenant's time zone),
/// with its reason, at probability 100 (won) or 0 (lost), in one transaction holding
/// the deal's row lock; a deal wins only a lot no other live deal of the tenant has
/// won. The win or loss is announced on the outbox in the same transaction. A retry
/// with the request id of a first call returns its result (and writes no second
/// event).
async fn close(
    state: &AppState,
    ctx: &TenantContext,
    key: Option<RequestKey>,
    c: Closing<'_>,
) -> Result<pb::Deal, Status> {
    let date = c.check(ctx)?;
    ensure_pipeline(state, ctx.tenant_id).await?;
    let method = match c.outcome {
        Outcome::Won => "WinDeal",
        _ => "LoseDeal",
    };
    let (mut tx, current) = match lock::<Deals>(state, ctx, method, key, c.id, c.etag).await? {
        Locked::Replayed(deal) => return Ok(deal),
        Locked::Fresh(tx, current) => (tx, current),
    };
    let stage = closing_stage(&mut tx, c.stage, c.outcome).await?;
    require_open(&current, c.outcome.as_str())?;
    let won = c.outcome == Outcome::Won;
    if won && let Some(lot) = current.lot_id {
        require_sole_winner(&mut tx, current.id, lot).await?;
    }
    let values = vec![
        ("stage", Val::Text(Some(stage.key))),
        ("status", Val::Text(Some(stage.outcome))),
        ("probability", Val::Int32(Some(if won { 100 } else { 0 }))),
        ("actual_close_date", Val::Date(Some(date))),
        ("close_reason", Val::text(c.reason)),
    ];
    let row = write::<Deals>(&mut tx, c.id, values).await?;
    if won {
        announce_won(&mut tx, &row, c.actor).await?;
    } else {
        announce_lost(&mut tx, &row, c.actor).await?;
    }
    Ok(tx.commit(row.into_pb(state)).await?)
}

/// A WinDeal or LoseDeal request.
struct Closing<'a> {
    id: i64,
    etag: &'a str,
    stage: &'a str,
    reason: &'a str,
    close_date: Option<&'a fusion_proto::google::r#type::Date>,
    /// "won" or "lost".
    outcome: Outcome,
    /// The user closing the deal.
    actor: i64,
}

impl Closing<'_> {
    /// Checks the request's fields (every bad one named; a reason is required to lose)
    /// and returns its close date: the one given, else today in the caller's tenant's
    /// time zone.
    fn check(&self, ctx: &TenantContext) -> Result<NaiveDate, Status> {
        API.require_id("id", self.id)?;
        let mut violations = Vec::new();
        let stage = self.stage.trim();
        if !stage.is_empty()
            && let Err(why) = pipeline::key(stage)
        {
            violations.push(FieldViolation::new("stage", why));
        }
        let reason = if self.outcome == Outcome::Lost {
            validate::required(self.reason, 20_000)
        } else {
            validate::max_len(self.reason, 20_000)
        };
        if let Err(why) = reason {
            violations.push(FieldViolation::new("reason", why));
        }
        let date = close_date(self.close_date, ctx.today());
        if let Err(why) = &date {
            violations.push(FieldViolation::new("close_date", why.clone()));
        }
        API.violations(violations)?;
        date.map_err(|why| API.invalid("close_date", why))
    }
}

#[tonic::async_trait]
impl DealService for CrmApi {
    async fn create_deal(
        &self,
        req: Request<pb::CreateDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let deal = r.deal.unwrap_or_default();
        // Before the transaction: it may use a connection of its own.
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        reply(standard::create::<Deals>(&self.state, &ctx, key, deal).await)
    }

    async fn get_deal(
        &self,
        req: Request<pb::GetDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Deals>(&self.state, &ctx, r.id).await)
    }

    async fn list_deals(
        &self,
        req: Request<pb::ListDealsRequest>,
    ) -> Result<Response<pb::ListDealsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            list_order(&r.order_by)?,
            r.show_deleted,
        );
        let page = standard::list::<Deals>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListDealsResponse {
            deals: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_deal(
        &self,
        req: Request<pb::UpdateDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        let deal = r.deal.unwrap_or_default();
        reply(standard::update::<Deals>(&self.state, &ctx, deal, r.update_mask).await)
    }

    async fn delete_deal(
        &self,
        req: Request<pb::DeleteDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Deals>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_deal(
        &self,
        req: Request<pb::UndeleteDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Deals>(&self.state, &ctx, r.id).await)
    }

    async fn move_deal_stage(
        &self,
        req: Request<pb::MoveDealStageRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        API.require_id("id", r.id)?;
        let stage_key = r.stage.trim();
        let mut violations = Vec::new();
        if stage_key.is_empty() {
            violations.push(FieldViolation::new("stage", "is required"));
        } else if let Err(why) = pipeline::key(stage_key) {
            violations.push(FieldViolation::new("stage", why));
        }
        if let Err(why) = probability(r.probability) {
            violations.push(FieldViolation::new("probability", why));
        }
        API.violations(violations)?;
        ensure_pipeline(&self.state, ctx.tenant_id).await?;
        let started = lock::<Deals>(&self.state, &ctx, "MoveDealStage", key, r.id, &r.etag);
        let (mut tx, current) = match started.await? {
            Locked::Replayed(deal) => return Ok(Response::new(deal)),
            Locked::Fresh(tx, current) => (tx, current),
        };
        let stage = require_deal_stage(&mut tx, "stage", stage_key).await?;
        if stage.outcome != "open" {
            let method = if stage.outcome == "won" {
                "WinDeal"
            } else {
                "LoseDeal"
            };
            return Err(API.invalid(
                "stage",
                format!(
                    "{stage_key:?} is a {} stage; close a deal with {method}",
                    stage.outcome
                ),
            ));
        }
        if current.status == "open" && current.stage == stage.key {
            return Err(CrmError::SameStage {
                id: current.id,
                stage: current.stage,
            }
            .into());
        }
        // On a closed deal this reopens it: open again, no close date, reason or lot
        // conflict, and announced (property releases the lot taken for it).
        let reopening = current.status != "open";
        let mut values = vec![
            ("stage", Val::Text(Some(stage.key))),
            ("status", Val::Text(Some(stage.outcome))),
            (
                "probability",
                Val::Int32(r.probability.or(stage.default_probability)),
            ),
            ("actual_close_date", Val::Date(None)),
            ("close_reason", Val::Text(None)),
        ];
        if reopening {
            values.extend(cleared_lot_conflict());
        }
        let row = write::<Deals>(&mut tx, r.id, values).await?;
        if reopening {
            announce_reopened(&mut tx, &row, &current.status, ctx.user_id).await?;
        }
        reply(tx.commit(row.into_pb(&self.state)).await)
    }

    async fn win_deal(
        &self,
        req: Request<pb::WinDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let closing = Closing {
            id: r.id,
            etag: &r.etag,
            stage: &r.stage,
            reason: &r.reason,
            close_date: r.close_date.as_ref(),
            outcome: Outcome::Won,
            actor: ctx.user_id,
        };
        reply(close(&self.state, &ctx, key, closing).await)
    }

    async fn lose_deal(
        &self,
        req: Request<pb::LoseDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let closing = Closing {
            id: r.id,
            etag: &r.etag,
            stage: &r.stage,
            reason: &r.reason,
            close_date: r.close_date.as_ref(),
            outcome: Outcome::Lost,
            actor: ctx.user_id,
        };
        reply(close(&self.state, &ctx, key, closing).await)
    }
}

/// ListDeals' `order_by` as the List reads it: checked against the fields callers may
/// name, with `stage` standing for the stage's position ([`STAGE_POSITION`]).
fn list_order(order_by: &str) -> Result<String, Status> {
    if order_by.trim().is_empty() {
        return Ok(String::new());
    }
    fusion_db::order::parse_order_by(order_by, LIST.default_order, ORDER_FIELDS, FIELDS)
        .map_err(|why| API.invalid("order_by", why))?;
    Ok(order_by
        .split(',')
        .map(|term| {
            let words: Vec<&str> = term.split_whitespace().collect();
            match words.as_slice() {
                ["stage", rest @ ..] => std::iter::once(STAGE_POSITION)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => words.join(" "),
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}
