//! `fusion.property.v1.LotService`: the lots of a stage, their features and prices.
//! The lifecycle methods, price changes, histories and the live feed are in
//! [`super::lifecycle`]; both halves follow the locking order of [`crate::stock`].

use std::pin::Pin;

use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use rust_decimal::Decimal;
use sqlx::types::Json;
use tonic::{Request, Response, Status};

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec, ScopeValue};
use fusion_db::resource::{Read, SoftDelete};
use fusion_db::{db_status, idempotency};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_server::LotService;
use fusion_service::api::{
    date_pb, dec_str, etag, opt_ts, parse_date, parse_decimal, populated, total, ts,
};

use super::lifecycle::{self, Transition};
use super::{
    API, REQUEST_IDS, Table, Val, Values, caller, insert_row, list_page, lock_live, purge_ts,
    update_row, values_of,
};
use crate::domain::lifecycle::{Action, LotStatus};
use crate::domain::validate;
use crate::stock::{self, LotRef, StatusChange};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "property.lots",
    select: "id, tenant_id, stage_id, project_id, lot_number, street_number, street_name, price, \
             land_size, land_price, house_price, bedrooms, bathrooms, garage, description, features, \
             status, sale_status, estimated_completion, hold_expires_at, reserved_price, version, \
             created_at, updated_at, deleted_at, \
             ARRAY(SELECT lf.feature_id FROM property.lot_features lf JOIN property.features f ON f.id = lf.feature_id \
             WHERE lf.lot_id = lots.id AND f.deleted_at IS NULL ORDER BY lf.feature_id) AS feature_ids",
    what: "lot",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("stage_id", "stage_id", FieldKind::Int),
    FieldSpec::new("project_id", "project_id", FieldKind::Int),
    FieldSpec::new("lot_number", "lot_number", FieldKind::Text),
    FieldSpec::new("street_name", "street_name", FieldKind::Text),
    FieldSpec::new("price", "price", FieldKind::Decimal),
    FieldSpec::new("land_size", "land_size", FieldKind::Decimal),
    FieldSpec::new("land_price", "land_price", FieldKind::Decimal),
    FieldSpec::new("house_price", "house_price", FieldKind::Decimal),
    FieldSpec::new("bedrooms", "bedrooms", FieldKind::Int),
    FieldSpec::new("bathrooms", "bathrooms", FieldKind::Decimal),
    FieldSpec::new("garage", "garage", FieldKind::Int),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("sale_status", "sale_status", FieldKind::Text),
    FieldSpec::new(
        "estimated_completion",
        "estimated_completion",
        FieldKind::Date,
    ),
    FieldSpec::new("features", "features", FieldKind::Tags),
    // The project's location, for a bounding box over lots.
    FieldSpec::new(
        "latitude",
        "(SELECT p.latitude FROM property.projects p WHERE p.id = lots.project_id)",
        FieldKind::Decimal,
    ),
    FieldSpec::new(
        "longitude",
        "(SELECT p.longitude FROM property.projects p WHERE p.id = lots.project_id)",
        FieldKind::Decimal,
    ),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
];

const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "price",
        "land_size",
        "lot_number",
        "bedrooms",
        "create_time",
        "status",
    ],
    default_order: "lot_number",
    soft_delete: true,
    tenant_scoped: true,
};

const MUTABLE: &[&str] = &[
    "lot_number",
    "street_number",
    "street_name",
    "price",
    "land_size",
    "land_price",
    "house_price",
    "bedrooms",
    "bathrooms",
    "garage",
    "description",
    "feature_ids",
    "sale_status",
    "estimated_completion",
];

/// A lot as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct LotRow {
    pub id: i64,
    pub tenant_id: i64,
    pub stage_id: i64,
    pub project_id: i64,
    pub lot_number: String,
    street_number: Option<String>,
    street_name: Option<String>,
    pub price: Option<Decimal>,
    land_size: Option<Decimal>,
    land_price: Option<Decimal>,
    house_price: Option<Decimal>,
    bedrooms: Option<i32>,
    bathrooms: Option<Decimal>,
    garage: Option<i32>,
    description: Option<String>,
    features: Json<Vec<String>>,
    pub status: String,
    sale_status: Option<String>,
    estimated_completion: Option<NaiveDate>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub reserved_price: Option<Decimal>,
    pub version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    feature_ids: Vec<i64>,
}

fusion_db::versioned!(LotRow);

impl LotRow {
    pub(crate) fn status(&self) -> LotStatus {
        // The table's CHECK admits only lifecycle names.
        LotStatus::parse(&self.status).unwrap_or(LotStatus::Withdrawn)
    }

    pub(crate) fn reference(&self) -> LotRef {
        LotRef {
            tenant_id: self.tenant_id,
            lot_id: self.id,
            project_id: self.project_id,
            stage_id: self.stage_id,
            lot_number: self.lot_number.clone(),
            price: self.price,
        }
    }

    pub(crate) fn into_pb(self, state: &AppState) -> pb::Lot {
        pb::Lot {
            id: self.id,
            tenant_id: self.tenant_id,
            stage_id: self.stage_id,
            project_id: self.project_id,
            lot_number: self.lot_number,
            street_number: self.street_number.unwrap_or_default(),
            street_name: self.street_name.unwrap_or_default(),
            price: dec_str(self.price),
            land_size: dec_str(self.land_size),
            land_price: dec_str(self.land_price),
            house_price: dec_str(self.house_price),
            bedrooms: self.bedrooms,
            bathrooms: dec_str(self.bathrooms),
            garage: self.garage,
            description: self.description.unwrap_or_default(),
            feature_ids: self.feature_ids,
            features: self.features.0,
            status: self.status,
            sale_status: self.sale_status.unwrap_or_default(),
            estimated_completion: self.estimated_completion.map(date_pb),
            hold_expire_time: opt_ts(self.hold_expires_at),
            reserved_price: dec_str(self.reserved_price),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: etag(self.version),
        }
    }
}

fn non_negative(raw: &str, integer_digits: u32, scale: u32) -> Result<Option<Decimal>, String> {
    parse_decimal(
        raw,
        integer_digits,
        scale,
        Some((Decimal::ZERO, Decimal::MAX)),
    )
}

fn count(field: &str, n: Option<i32>) -> Result<Option<i32>, String> {
    match n {
        Some(n) if !(0..=1000).contains(&n) => Err(format!("{field} must be between 0 and 1000")),
        n => Ok(n),
    }
}

/// Parses a lot price (the one rule SetLotPrice shares with Create and Update).
pub(crate) fn parse_price(raw: &str) -> Result<Option<Decimal>, String> {
    non_negative(raw, 10, 2)
}

/// The column values of the fields in `fields` (other than `feature_ids`), validated.
fn values(l: &pb::Lot, fields: &[&str]) -> Result<Values, Status> {
    values_of("lot", fields, |field| {
        Ok(Some(match field {
            "lot_number" => {
                validate::required(&l.lot_number, 50)?;
                ("lot_number", Val::text(&l.lot_number))
            }
            "street_number" => {
                validate::max_len(&l.street_number, 50)?;
                ("street_number", Val::text(&l.street_number))
            }
            "street_name" => {
                validate::max_len(&l.street_name, 255)?;
                ("street_name", Val::text(&l.street_name))
            }
            "price" => ("price", Val::Decimal(parse_price(&l.price)?)),
            "land_size" => ("land_size", Val::Decimal(non_negative(&l.land_size, 8, 2)?)),
            "land_price" => (
                "land_price",
                Val::Decimal(non_negative(&l.land_price, 10, 2)?),
            ),
            "house_price" => (
                "house_price",
                Val::Decimal(non_negative(&l.house_price, 10, 2)?),
            ),
            "bedrooms" => ("bedrooms", Val::Int32(count("bedrooms", l.bedrooms)?)),
            "bathrooms" => ("bathrooms", Val::Decimal(non_negative(&l.bathrooms, 2, 1)?)),
            "garage" => ("garage", Val::Int32(count("garage", l.garage)?)),
            "description" => ("description", Val::text(&l.description)),
            "sale_status" => {
                validate::max_len(&l.sale_status, 50)?;
                ("sale_status", Val::text(&l.sale_status))
            }
            "estimated_completion" => {
                let d = l.estimated_completion.unwrap_or_default();
                (
                    "estimated_completion",
                    Val::Date(parse_date(d.year, d.month, d.day)?),
                )
            }
            _ => return Ok(None),
        }))
    })
}

fn price_of(values: &Values) -> Option<Option<Decimal>> {
    values
        .iter()
        .find_map(|(column, value)| match (column, value) {
            (&"price", Val::Decimal(p)) => Some(*p),
            _ => None,
        })
}

/// Records a price that takes effect now.
pub(crate) async fn record_price(
    conn: &mut sqlx::PgConnection,
    tenant_id: i64,
    lot_id: i64,
    price: Decimal,
    reason: Option<&str>,
    actor_user_id: i64,
) -> Result<(), Status> {
    sqlx::query(
        "INSERT INTO property.lot_price_history
             (tenant_id, lot_id, price, effective_from, applied_at, reason, actor_user_id)
         VALUES ($1, $2, $3, now(), now(), $4, $5)",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .bind(price)
    .bind(reason)
    .bind(actor_user_id)
    .execute(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?;
    Ok(())
}

/// The project of a lot (live or, with `include_deleted`, deleted); a lot's project
/// never changes, so it is safe to read before taking the project lock.
pub(crate) async fn project_of(
    conn: &mut sqlx::PgConnection,
    lot_id: i64,
    include_deleted: bool,
) -> Result<i64, Status> {
    sqlx::query_scalar(if include_deleted {
        "SELECT project_id FROM property.lots WHERE id = $1"
    } else {
        "SELECT project_id FROM property.lots WHERE id = $1 AND deleted_at IS NULL"
    })
    .bind(lot_id)
    .fetch_optional(conn)
    .await
    .map_err(|e| db_status(DOMAIN, e))?
    .ok_or_else(|| API.not_found("lot", lot_id))
}

/// The LotService implementation.
#[derive(Clone, Debug)]
pub(crate) struct LotApi {
    state: AppState,
}

impl LotApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn set_deleted(
        &self,
        ctx_tenant: i64,
        id: i64,
        change: SoftDelete<'_>,
    ) -> Result<pb::Lot, Status> {
        let delete = matches!(change, SoftDelete::Delete { .. });
        API.require_id("id", id)?;
        let mut tx = self.state.db.begin(ctx_tenant).await?;
        let project_id = project_of(&mut tx, id, !delete).await?;
        stock::lock_project(&mut tx, project_id).await?;
        if !delete {
            let stage_id: i64 =
                sqlx::query_scalar("SELECT stage_id FROM property.lots WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| db_status(DOMAIN, e))?;
            if !lock_live(&mut tx, "property.stages", stage_id).await? {
                return Err(API.precondition(
                    "STAGE_DELETED",
                    format!("the stage of lot {id} is deleted; undelete it first"),
                ));
            }
        }
        if delete {
            // Locked first, so an upload to this lot either committed before the check
            // sees it or waits and then finds the lot deleted.
            TABLE
                .fetch::<LotRow>(&mut tx, id, Read::live().for_update())
                .await?;
            super::refuse_live_media(&mut tx, "lot", id).await?;
        }
        let row: LotRow = TABLE
            .set_deleted_if(&mut tx, id, change, |lot: &LotRow| match lot.status() {
                LotStatus::Available | LotStatus::Hold | LotStatus::Withdrawn => Ok(()),
                sold => Err(API.precondition(
                    "LOT_SOLD",
                    format!("a lot that is {sold} cannot be deleted; revert it first"),
                )),
            })
            .await?;
        stock::refresh_figures(&mut tx, project_id).await?;
        tx.commit().await?;
        Ok(row.into_pb(&self.state))
    }
}

pub(crate) type Watch =
    Pin<Box<dyn Stream<Item = Result<pb::LotAvailabilityEvent, Status>> + Send>>;

#[tonic::async_trait]
impl LotService for LotApi {
    async fn create_lot(
        &self,
        req: Request<pb::CreateLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let l = body.lot.unwrap_or_default();
        API.require_id("lot.stage_id", l.stage_id)?;
        let values = values(&l, MUTABLE)?;
        let price = price_of(&values).flatten();
        const METHOD: &str = "CreateLot";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let project_id: i64 = sqlx::query_scalar(
            // KEY SHARE: a concurrent delete of the stage waits for this lot.
            "SELECT project_id FROM property.stages WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE",
        )
        .bind(l.stage_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))?
        .ok_or_else(|| API.not_found("stage", l.stage_id))?;
        stock::lock_project(&mut tx, project_id).await?;
        let mut all = values;
        all.push(("stage_id", Val::Int(Some(l.stage_id))));
        all.push(("project_id", Val::Int(Some(project_id))));
        let id = insert_row(&mut tx, TABLE.name, all).await?;
        if let Some(price) = price {
            record_price(
                &mut tx,
                ctx.tenant_id,
                id,
                price,
                Some("initial price"),
                ctx.user_id,
            )
            .await?;
        }
        if !l.feature_ids.is_empty() {
            stock::set_lot_features(&mut tx, ctx.tenant_id, id, &l.feature_ids).await?;
        }
        let row: LotRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
        stock::record_status(
            &mut tx,
            &row.reference(),
            StatusChange {
                from: None,
                to: LotStatus::Available.as_str(),
                reason: Some("created"),
                deposit: None,
                actor_user_id: Some(ctx.user_id),
            },
        )
        .await?;
        stock::refresh_figures(&mut tx, project_id).await?;
        let created = row.into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_lot(&self, req: Request<pb::GetLotRequest>) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let row: LotRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn list_lots(
        &self,
        req: Request<pb::ListLotsRequest>,
    ) -> Result<Response<pb::ListLotsResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut scope = Vec::new();
        if r.project_id != 0 {
            API.require_id("project_id", r.project_id)?;
            scope.push(("project_id", ScopeValue::Int(r.project_id)));
        }
        if r.stage_id != 0 {
            API.require_id("stage_id", r.stage_id)?;
            scope.push(("stage_id", ScopeValue::Int(r.stage_id)));
        }
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page =
            list_page::<LotRow>(&self.state, ctx.tenant_id, &LIST, &params, Some(&scope)).await?;
        Ok(Response::new(pb::ListLotsResponse {
            lots: page
                .items
                .into_iter()
                .map(|l| l.into_pb(&self.state))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_lot(
        &self,
        req: Request<pb::UpdateLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let l = body.lot.unwrap_or_default();
        API.require_id("lot.id", l.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            &["stage_id"],
            &populated(&[
                ("lot_number", !l.lot_number.is_empty()),
                ("street_number", !l.street_number.is_empty()),
                ("street_name", !l.street_name.is_empty()),
                ("price", !l.price.is_empty()),
                ("land_size", !l.land_size.is_empty()),
                ("land_price", !l.land_price.is_empty()),
                ("house_price", !l.house_price.is_empty()),
                ("bedrooms", l.bedrooms.is_some()),
                ("bathrooms", !l.bathrooms.is_empty()),
                ("garage", l.garage.is_some()),
                ("description", !l.description.is_empty()),
                ("feature_ids", !l.feature_ids.is_empty()),
                ("sale_status", !l.sale_status.is_empty()),
                ("estimated_completion", l.estimated_completion.is_some()),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let values = values(&l, &changing)?;
        let new_price = price_of(&values);
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let project_id = project_of(&mut tx, l.id, false).await?;
        stock::lock_project(&mut tx, project_id).await?;
        let current: LotRow = TABLE
            .fetch(&mut tx, l.id, Read::live().for_update())
            .await?;
        API.check_etag(&l.etag, current.version)?;
        update_row(&mut tx, TABLE.name, l.id, values).await?;
        if let Some(Some(price)) = new_price.filter(|p| *p != current.price) {
            record_price(
                &mut tx,
                ctx.tenant_id,
                l.id,
                price,
                Some("updated"),
                ctx.user_id,
            )
            .await?;
        }
        if mask.has("feature_ids") {
            stock::set_lot_features(&mut tx, ctx.tenant_id, l.id, &l.feature_ids).await?;
        }
        stock::refresh_figures(&mut tx, project_id).await?;
        let row: LotRow = TABLE.fetch(&mut tx, l.id, Read::live()).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_lot(
        &self,
        req: Request<pb::DeleteLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        Ok(Response::new(
            self.set_deleted(ctx.tenant_id, r.id, SoftDelete::Delete { etag: &r.etag })
                .await?,
        ))
    }

    async fn undelete_lot(
        &self,
        req: Request<pb::UndeleteLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        Ok(Response::new(
            self.set_deleted(ctx.tenant_id, id, SoftDelete::Undelete)
                .await?,
        ))
    }

    async fn hold_lot(
        &self,
        req: Request<pb::HoldLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let hold_for = lifecycle::hold_duration(r.hold_duration)?;
        let t = Transition::new(Action::Hold, r.id, &r.etag, &r.reason).hold_for(hold_for);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn release_lot(
        &self,
        req: Request<pb::ReleaseLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let t = Transition::new(Action::Release, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn reserve_lot(
        &self,
        req: Request<pb::ReserveLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deposit =
            non_negative(&r.deposit_amount, 10, 2).map_err(|m| API.invalid("deposit_amount", m))?;
        let t = Transition::new(Action::Reserve, r.id, &r.etag, &r.reason).deposit(deposit);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn exchange_lot(
        &self,
        req: Request<pb::ExchangeLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let t = Transition::new(Action::Exchange, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn mark_unconditional(
        &self,
        req: Request<pb::MarkUnconditionalRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let t = Transition::new(Action::MarkUnconditional, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn settle_lot(
        &self,
        req: Request<pb::SettleLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let t = Transition::new(Action::Settle, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn withdraw_lot(
        &self,
        req: Request<pb::WithdrawLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let t = Transition::new(Action::Withdraw, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn revert_lot(
        &self,
        req: Request<pb::RevertLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        if r.reason.trim().is_empty() {
            return Err(API.invalid("reason", "a revert is audited: say why"));
        }
        let t = Transition::new(Action::Revert, r.id, &r.etag, &r.reason);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn set_lot_price(
        &self,
        req: Request<pb::SetLotPriceRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        Ok(Response::new(
            lifecycle::set_price(&self.state, &ctx, req.into_inner()).await?,
        ))
    }

    async fn list_lot_status_changes(
        &self,
        req: Request<pb::ListLotStatusChangesRequest>,
    ) -> Result<Response<pb::ListLotStatusChangesResponse>, Status> {
        let ctx = caller(&req)?;
        Ok(Response::new(
            lifecycle::status_changes(&self.state, &ctx, req.into_inner()).await?,
        ))
    }

    async fn list_lot_prices(
        &self,
        req: Request<pb::ListLotPricesRequest>,
    ) -> Result<Response<pb::ListLotPricesResponse>, Status> {
        let ctx = caller(&req)?;
        Ok(Response::new(
            lifecycle::prices(&self.state, &ctx, req.into_inner()).await?,
        ))
    }

    type WatchLotAvailabilityStream = Watch;

    async fn watch_lot_availability(
        &self,
        req: Request<pb::WatchLotAvailabilityRequest>,
    ) -> Result<Response<Self::WatchLotAvailabilityStream>, Status> {
        let ctx = caller(&req)?;
        let project_id = req.into_inner().project_id;
        Ok(Response::new(
            lifecycle::watch(&self.state, &ctx, project_id).await?,
        ))
    }
}
