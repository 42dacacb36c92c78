//! `fusion.property.v1.LotService`: the lots of a stage, their features and prices.
//! The lifecycle methods, price changes, histories and the live feed are in
//! [`super::lifecycle`]; both halves follow the locking order of [`crate::stock`].

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::{ListSpec, ScopeValue};
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_server::LotService;
use fusion_service::api::{date_pb, dec_str, etag, opt_ts, parse_date, populated, ts};
use fusion_service::standard::{self, Call, Change, Kit, Locking, Method, Parent, Resource};

use super::caller;
use super::lifecycle::{self, Transition, Watch};
use super::rpc;
use crate::api::API;
use crate::domain::amounts::{non_negative, price as parse_price};
use crate::domain::lifecycle::{Action, LotStatus};
use crate::domain::validate;
use crate::error::{PropertyError, reason};
use crate::stock::{self, StatusChange};
use crate::store::lots::{
    LIST, LotRow, TABLE, project_of, project_of_any, project_of_stage, record_price,
};
use crate::store::media::refuse_live_media;
use crate::{AppState, DOMAIN};

const CREATE: &[&str] = &[
    "stage_id",
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
    "estimated_completion_date",
];

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
    "estimated_completion_date",
];

impl LotRow {
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
            estimated_completion_date: self.estimated_completion.map(date_pb),
            hold_expire_time: opt_ts(self.hold_expires_at),
            reserved_price: dec_str(self.reserved_price),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: state.kit.purge_time(self.deleted_at),
            etag: etag(self.version),
            currency_code: self.currency,
            deal_id: self.deal_id.unwrap_or_default(),
        }
    }
}

fn count(field: &str, n: Option<i32>) -> Result<Option<i32>, String> {
    match n {
        Some(n) if !(0..=1000).contains(&n) => Err(format!("{field} must be between 0 and 1000")),
        n => Ok(n),
    }
}

/// The column values of the fields in `fields` (other than `feature_ids`), validated.
fn values(l: &pb::Lot, fields: &[&str]) -> Result<Values, PropertyError> {
    values_of(DOMAIN, "lot", fields, |field| {
        Ok(Some(match field {
            "stage_id" => ("stage_id", Val::Int(Some(l.stage_id))),
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
            "estimated_completion_date" => {
                let d = l.estimated_completion_date.unwrap_or_default();
                (
                    "estimated_completion",
                    Val::Date(parse_date(d.year, d.month, d.day)?),
                )
            }
            _ => return Ok(None),
        }))
    })
    .map_err(Into::into)
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
}

/// Lots on the standard methods. A lot lives under a stage and carries its project;
/// every write locks the project before the lot (the order of [`crate::stock`]),
/// records prices and status changes with the acting user, keeps the lot's feature
/// links, and refreshes the project's figures.
struct Lots;

impl Resource for Lots {
    type Row = LotRow;
    type Pb = pb::Lot;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Lot";
    const FIELD: &'static str = "lot";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["stage_id"];
    const PARENT: Option<Parent> = Some(Parent {
        table: "property.stages",
        field: "stage_id",
        what: "stage",
        deleted_reason: reason::STAGE_DELETED,
    });

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, row: LotRow) -> pb::Lot {
        row.into_pb(state)
    }

    fn id(l: &pb::Lot) -> i64 {
        l.id
    }

    fn etag(l: &pb::Lot) -> &str {
        &l.etag
    }

    fn populated(l: &pb::Lot) -> Vec<&'static str> {
        populated(&[
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
            (
                "estimated_completion_date",
                l.estimated_completion_date.is_some(),
            ),
        ])
    }

    /// A Create names its stage first: without one nothing else is checked.
    fn values(
        _: &AppState,
        l: &pb::Lot,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        if method == Method::Create {
            fusion_db::resource::require_id(DOMAIN, "lot.stage_id", l.stage_id)?;
        }
        values(l, fields)
    }

    fn sent_parent_id(l: &pb::Lot) -> i64 {
        l.stage_id
    }

    fn parent_id(row: &LotRow) -> i64 {
        row.stage_id
    }

    /// The project before the lot: a lot's project never changes, so it is read
    /// before either is locked.
    async fn before_lock(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        locking: Locking,
    ) -> Result<(), crate::error::PropertyError> {
        let project_id = if locking.deleted_too() {
            project_of_any(tx, id).await?
        } else {
            project_of(tx, id).await?
        };
        stock::lock_project(tx, project_id).await
    }

    /// The stage is key-share locked by now; its project is locked next and recorded
    /// on the lot.
    async fn on_create(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        l: &pb::Lot,
        values: &mut Values,
    ) -> Result<(), crate::error::PropertyError> {
        let project_id = project_of_stage(tx, l.stage_id).await?;
        stock::lock_project(tx, project_id).await?;
        values.push(("project_id", Val::Int(Some(project_id))));
        Ok(())
    }

    async fn after_insert(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        l: &pb::Lot,
    ) -> Result<(), crate::error::PropertyError> {
        if l.feature_ids.is_empty() {
            return Ok(());
        }
        stock::set_lot_features(tx, call.caller.tenant_id, id, &l.feature_ids).await
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &LotRow,
        l: &pb::Lot,
        _: &mut Values,
    ) -> Result<(), crate::error::PropertyError> {
        if !call.fields.contains(&"feature_ids") {
            return Ok(());
        }
        stock::set_lot_features(tx, call.caller.tenant_id, current.id, &l.feature_ids).await
    }

    /// Media never outlives its lot, and a lot under contract stays until reverted.
    async fn on_delete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &LotRow,
    ) -> Result<(), crate::error::PropertyError> {
        refuse_live_media(tx, "lot", current.id).await?;
        match current.status() {
            LotStatus::Available | LotStatus::Hold | LotStatus::Withdrawn => Ok(()),
            status => Err(PropertyError::LotSold { status }),
        }
    }

    async fn after_write(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, LotRow>,
        row: &LotRow,
    ) -> Result<(), crate::error::PropertyError> {
        let (tenant_id, user_id) = (call.caller.tenant_id, call.caller.user_id);
        match change {
            Change::Created => {
                if let Some(price) = row.price {
                    record_price(tx, tenant_id, row.id, price, Some("initial price"), user_id)
                        .await?;
                }
                let change = StatusChange {
                    from: None,
                    to: LotStatus::Available.as_str(),
                    reason: Some("created"),
                    deposit: None,
                    actor_user_id: Some(user_id),
                    deal_id: None,
                };
                stock::record_status(tx, &row.reference(), change).await?;
            }
            Change::Updated(before) => {
                if let Some(price) = row.price.filter(|_| row.price != before.price) {
                    record_price(tx, tenant_id, row.id, price, Some("updated"), user_id).await?;
                }
            }
            Change::Deleted | Change::Undeleted => {}
        }
        stock::refresh_figures(tx, row.project_id).await
    }
}

#[tonic::async_trait]
impl LotService for LotApi {
    async fn create_lot(
        &self,
        req: Request<pb::CreateLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        rpc::create::<Lots, _>(&self.state, req, |r| &r.request_id, |r| r.lot).await
    }

    async fn get_lot(&self, req: Request<pb::GetLotRequest>) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let lot = standard::get::<Lots>(&self.state, &ctx, id);
        Ok(Response::new(lot.await?))
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
        rpc::page::<Lots, _, _>(&self.state, &ctx, r, Some(&scope)).await
    }

    async fn update_lot(
        &self,
        req: Request<pb::UpdateLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        rpc::update::<Lots, _>(&self.state, req, |r| (r.lot, r.update_mask)).await
    }

    async fn delete_lot(
        &self,
        req: Request<pb::DeleteLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        rpc::delete::<Lots, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_lot(
        &self,
        req: Request<pb::UndeleteLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        rpc::undelete::<Lots, _>(&self.state, req, |r| r.id).await
    }

    async fn hold_lot(
        &self,
        req: Request<pb::HoldLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let hold_for = lifecycle::hold_duration(r.hold_duration)?;
        let t = Transition::new(Action::Hold, r.id, &r.etag, &r.reason)
            .hold_for(hold_for)
            .deal(r.deal_id)
            .request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn release_lot(
        &self,
        req: Request<pb::ReleaseLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let t = Transition::new(Action::Release, r.id, &r.etag, &r.reason).request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn reserve_lot(
        &self,
        req: Request<pb::ReserveLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let deposit = non_negative(&r.deposit_amount, 10, 2)
            .map_err(|m| PropertyError::invalid("deposit_amount", m))?;
        let t = Transition::new(Action::Reserve, r.id, &r.etag, &r.reason)
            .deposit(deposit)
            .deal(r.deal_id)
            .request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn exchange_lot(
        &self,
        req: Request<pb::ExchangeLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let t = Transition::new(Action::Exchange, r.id, &r.etag, &r.reason).request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn mark_lot_unconditional(
        &self,
        req: Request<pb::MarkLotUnconditionalRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let t = Transition::new(Action::MarkUnconditional, r.id, &r.etag, &r.reason).request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn settle_lot(
        &self,
        req: Request<pb::SettleLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let t = Transition::new(Action::Settle, r.id, &r.etag, &r.reason).request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn withdraw_lot(
        &self,
        req: Request<pb::WithdrawLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let t = Transition::new(Action::Withdraw, r.id, &r.etag, &r.reason).request(key);
        Ok(Response::new(lifecycle::apply(&self.state, &ctx, t).await?))
    }

    async fn revert_lot(
        &self,
        req: Request<pb::RevertLotRequest>,
    ) -> Result<Response<pb::Lot>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        if r.reason.trim().is_empty() {
            return Err(PropertyError::invalid("reason", "a revert is audited: say why").into());
        }
        let t = Transition::new(Action::Revert, r.id, &r.etag, &r.reason).request(key);
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
        let project_id = req.get_ref().project_id;
        let watch = lifecycle::watch(&self.state, &ctx, project_id).await?;
        // The feed ends when the token that opened it expires or is revoked.
        Ok(Response::new(fusion_tenancy::end_with_token(&req, watch)))
    }
}
