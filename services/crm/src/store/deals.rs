//! Deals: their row, their description for the standard methods, where a deal starts
//! and closes, the one won deal a lot may have, its lot conflict, and its events
//! (`crm.deal.won`, `crm.deal.lost`, `crm.deal.reopened`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Read, Table, Val, Values, lock_live};
use fusion_events::Event;
use fusion_proto::crm::v1 as pb;
use fusion_proto::errors::FieldViolation;
use fusion_service::api::{date_pb, dec_str, opt_ts, parse_date, parse_decimal, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};

use crate::domain::{pipeline, validate};
use crate::error::{CrmError, Outcome};
use crate::store::pipeline::{StageInfo, require_deal_stage};
use crate::store::{custom_fields_pb, record_values, tags_of, tags_val};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.deals",
    select: "id, tenant_id, lead_id, contact_id, lot_id, assigned_to, title, description, \
             value, currency, status, stage, probability, expected_close_date, actual_close_date, \
             close_reason, custom_fields, tags, version, created_at, updated_at, deleted_at, \
             lot_conflict_status, lot_conflict_deal_id, lot_conflict_at",
    what: "deal",
};

/// `order_by=stage` sorts by the stage's position in the tenant's pipeline, not by its
/// key. The List sees that order as this field, which no filter can name (`#` is not a
/// filter character) and callers never write: [`list_order`] puts it in for `stage`.
pub(crate) const STAGE_POSITION: &str = "stage#position";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("lead_id", "lead_id", FieldKind::Int),
    FieldSpec::new("contact_id", "contact_id", FieldKind::Int),
    FieldSpec::new("lot_id", "lot_id", FieldKind::Int),
    FieldSpec::new("assignee_user_id", "assigned_to", FieldKind::Int),
    FieldSpec::new("title", "title", FieldKind::Text),
    FieldSpec::new("value", "value", FieldKind::Decimal),
    FieldSpec::new("currency_code", "currency", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("stage", "stage", FieldKind::Text),
    FieldSpec::new("probability", "probability", FieldKind::Int),
    FieldSpec::new(
        "expected_close_date",
        "expected_close_date",
        FieldKind::Date,
    ),
    FieldSpec::new("actual_close_date", "actual_close_date", FieldKind::Date),
    FieldSpec::new("tags", "tags", FieldKind::Tags),
    FieldSpec::new("custom_fields", "custom_fields", FieldKind::CustomFields),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
    FieldSpec::new(
        STAGE_POSITION,
        "(SELECT s.position FROM crm.deal_stages s \
          WHERE s.tenant_id = crm.deals.tenant_id AND s.key = crm.deals.stage)",
        FieldKind::Int,
    ),
];

/// What `order_by` may name, as callers write it.
pub(crate) const ORDER_FIELDS: &[&str] = &[
    "create_time",
    "update_time",
    "title",
    "value",
    "probability",
    "expected_close_date",
    "actual_close_date",
    "stage",
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "create_time",
        "update_time",
        "title",
        "value",
        "probability",
        "expected_close_date",
        "actual_close_date",
        STAGE_POSITION,
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// The fields CreateDeal reads (the stage, its outcome and the default probability are
/// settled in the transaction by [`place_new_deal`]).
pub(crate) const CREATE: &[&str] = &[
    "lead_id",
    "contact_id",
    "lot_id",
    "assignee_user_id",
    "title",
    "description",
    "value",
    "currency_code",
    "stage",
    "probability",
    "expected_close_date",
    "custom_fields",
    "tags",
];

/// What UpdateDeal may change (the stage moves only through MoveDealStage, WinDeal and
/// LoseDeal).
pub(crate) const MUTABLE: &[&str] = &[
    "lead_id",
    "contact_id",
    "lot_id",
    "assignee_user_id",
    "title",
    "description",
    "value",
    "currency_code",
    "probability",
    "expected_close_date",
    "custom_fields",
    "tags",
];

/// What an update mask may not name.
pub(crate) const FIXED: &[&str] = &[
    "id",
    "tenant_id",
    "status",
    "stage",
    "actual_close_date",
    "close_reason",
    "create_time",
    "update_time",
    "delete_time",
    "purge_time",
    "lot_conflict",
];

#[derive(sqlx::FromRow)]
pub(crate) struct DealRow {
    pub id: i64,
    pub tenant_id: i64,
    pub lead_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub lot_id: Option<i64>,
    pub assigned_to: Option<i64>,
    pub title: String,
    pub description: Option<String>,
    pub value: Option<Decimal>,
    pub currency: String,
    pub status: String,
    pub stage: String,
    pub probability: Option<i32>,
    pub expected_close_date: Option<NaiveDate>,
    pub actual_close_date: Option<NaiveDate>,
    pub close_reason: Option<String>,
    pub custom_fields: serde_json::Value,
    pub tags: serde_json::Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The lot's status when property refused to sell it to this won deal.
    pub lot_conflict_status: Option<String>,
    /// The deal property had sold the lot to, if any.
    pub lot_conflict_deal_id: Option<i64>,
    /// When crm learned of the refusal; set exactly when the deal has a conflict.
    pub lot_conflict_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(DealRow);

impl DealRow {
    pub(crate) fn into_pb(self, state: &AppState) -> pb::Deal {
        pb::Deal {
            id: self.id,
            tenant_id: self.tenant_id,
            lead_id: self.lead_id.unwrap_or_default(),
            contact_id: self.contact_id.unwrap_or_default(),
            lot_id: self.lot_id.unwrap_or_default(),
            assignee_user_id: self.assigned_to.unwrap_or_default(),
            title: self.title,
            description: self.description.unwrap_or_default(),
            value: dec_str(self.value.map(cents)),
            currency_code: self.currency,
            status: self.status,
            stage: self.stage,
            probability: self.probability,
            expected_close_date: self.expected_close_date.map(date_pb),
            actual_close_date: self.actual_close_date.map(date_pb),
            close_reason: self.close_reason.unwrap_or_default(),
            custom_fields: custom_fields_pb(&self.custom_fields),
            tags: tags_of(&self.tags),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: state.kit.purge_time(self.deleted_at),
            etag: fusion_service::api::etag(self.version),
            lot_conflict: self.lot_conflict_at.map(|at| pb::LotConflict {
                lot_status: self.lot_conflict_status.unwrap_or_default(),
                sold_to_deal_id: self.lot_conflict_deal_id.unwrap_or_default(),
                detect_time: Some(ts(at)),
            }),
        }
    }
}

/// The column values of the fields in `fields`, validated field by field. A `stage`
/// is only checked for form here (it is placed by [`place_new_deal`]); whether the
/// lot and assignee exist is asked of their owners by [`check_owners`], and whether
/// the lead and contact do by [`lock_links`].
pub(crate) fn values(d: &pb::Deal, fields: &[&str], method: Method) -> Result<Values, CrmError> {
    let creating = method == Method::Create;
    record_values("deal", fields, &d.custom_fields, |field| {
        Ok(Some(match field {
            "lead_id" => ("lead_id", Val::Int(optional_id(d.lead_id)?)),
            "contact_id" => ("contact_id", Val::Int(optional_id(d.contact_id)?)),
            "lot_id" => ("lot_id", Val::Int(optional_id(d.lot_id)?)),
            "assignee_user_id" => ("assigned_to", Val::Int(optional_id(d.assignee_user_id)?)),
            "title" => {
                validate::required(&d.title, 255)?;
                ("title", Val::text(&d.title))
            }
            "description" => {
                validate::max_len(&d.description, 20_000)?;
                ("description", Val::text(&d.description))
            }
            "value" => ("value", Val::Decimal(money(&d.value)?)),
            // Empty on create: the table's default (AUD; the CRM settings name no
            // currency). An update naming it must send one.
            "currency_code" => match d.currency_code.trim() {
                "" if creating => return Ok(None),
                "" => return Err("is required".into()),
                code => {
                    fusion_service::validate::currency_code(code)?;
                    ("currency", Val::text(code))
                }
            },
            "stage" => {
                if !d.stage.trim().is_empty() {
                    pipeline::key(d.stage.trim())?;
                }
                return Ok(None);
            }
            "probability" => ("probability", Val::Int32(probability(d.probability)?)),
            "expected_close_date" => {
                let date = d.expected_close_date.unwrap_or_default();
                (
                    "expected_close_date",
                    Val::Date(parse_date(date.year, date.month, date.day)?),
                )
            }
            "tags" => ("tags", tags_val(&d.tags)?),
            _ => return Ok(None),
        }))
    })
}

/// An id of another record: 0 is none.
pub(crate) fn optional_id(id: i64) -> Result<Option<i64>, String> {
    match id {
        0 => Ok(None),
        id if id > 0 => Ok(Some(id)),
        _ => Err("must be a positive id, or 0 for none".into()),
    }
}

/// A deal value: NUMERIC(12,2), never negative; empty is unset.
pub(crate) fn money(raw: &str) -> Result<Option<Decimal>, String> {
    match parse_decimal(raw, 10, 2, None)? {
        Some(v) if v.is_sign_negative() && !v.is_zero() => Err("cannot be negative".into()),
        v => Ok(v),
    }
}

/// A stored value with its two decimal places: PostgreSQL keeps NUMERIC(12,2)'s scale,
/// but a zero is decoded without it ("0", not "0.00").
pub(crate) fn cents(mut v: Decimal) -> Decimal {
    v.rescale(2);
    v
}

/// A probability from 0 to 100; unset stays unset.
pub(crate) fn probability(p: Option<i32>) -> Result<Option<i32>, String> {
    match p {
        Some(p) if !(0..=100).contains(&p) => Err("must be between 0 and 100".into()),
        p => Ok(p),
    }
}

/// Asks identity and property, as the caller, about the deal's assignee and lot when
/// `fields` names them and they are set; both questions at once, before any
/// transaction is open.
pub(crate) async fn check_owners(
    state: &AppState,
    d: &pb::Deal,
    fields: &[&str],
) -> Result<(), CrmError> {
    let lot = async {
        if fields.contains(&"lot_id") && d.lot_id > 0 {
            state.refs.property("deal.lot_id", "lot", d.lot_id).await
        } else {
            Ok(())
        }
    };
    let user = async {
        if fields.contains(&"assignee_user_id") && d.assignee_user_id > 0 {
            state
                .refs
                .user("deal.assignee_user_id", d.assignee_user_id)
                .await
        } else {
            Ok(())
        }
    };
    tokio::try_join!(lot, user).map(|_| ())
}

/// Checks that the deal's lead and contact (when `fields` names them and they are set)
/// are live rows of the tenant, key-share locking them until the transaction ends so
/// neither can be deleted under the deal.
pub(crate) async fn lock_links(
    tx: &mut TenantTx,
    d: &pb::Deal,
    fields: &[&str],
) -> Result<(), CrmError> {
    let mut violations = Vec::new();
    for (field, table, what, id) in [
        ("lead_id", "crm.leads", "lead", d.lead_id),
        ("contact_id", "crm.contacts", "contact", d.contact_id),
    ] {
        if fields.contains(&field) && id > 0 && !lock_live(tx, DOMAIN, table, id).await? {
            violations.push(FieldViolation::new(
                format!("deal.{field}"),
                format!("no {what} {id} in this tenant"),
            ));
        }
    }
    CrmError::check(violations)
}

/// Settles where a new deal starts: the live open stage it names, or the tenant's first
/// open stage; status open; the stage's default probability unless one was given.
/// Replaces any `stage`, `status` or (defaulted) `probability` in `values`.
pub(crate) async fn place_new_deal(
    tx: &mut TenantTx,
    d: &pb::Deal,
    values: &mut Values,
) -> Result<StageInfo, CrmError> {
    let stage = if d.stage.trim().is_empty() {
        first_stage(tx, Outcome::Open)
            .await?
            .ok_or(CrmError::NoStage(Outcome::Open))?
    } else {
        let stage = require_deal_stage(tx, "deal.stage", d.stage.trim()).await?;
        if stage.outcome != "open" {
            return Err(CrmError::invalid(
                "deal.stage",
                format!(
                    "{:?} is a {} stage; a deal starts in an open stage (then WinDeal or LoseDeal)",
                    stage.key, stage.outcome
                ),
            ));
        }
        stage
    };
    let defaulted = d.probability.is_none();
    values.retain(|(c, _)| match *c {
        "stage" | "status" => false,
        "probability" => !defaulted,
        _ => true,
    });
    values.push(("stage", Val::Text(Some(stage.key.clone()))));
    values.push(("status", Val::Text(Some(stage.outcome.clone()))));
    if defaulted {
        values.push(("probability", Val::Int32(stage.default_probability)));
    }
    Ok(stage)
}

/// The tenant's live stage with `outcome` and the lowest position.
pub(crate) async fn first_stage(
    tx: &mut TenantTx,
    outcome: Outcome,
) -> Result<Option<StageInfo>, CrmError> {
    let tenant = tx.tenant_id();
    sqlx::query_as(
        "SELECT key, outcome, default_probability FROM crm.deal_stages
          WHERE tenant_id = $1 AND outcome = $2 AND deleted_at IS NULL
          ORDER BY position, key LIMIT 1",
    )
    .bind(tenant)
    .bind(outcome.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(Into::into)
}

/// The stage a WinDeal (`outcome` won) or LoseDeal (lost) closes the deal in: the live
/// stage named by `key` (INVALID_ARGUMENT on `stage` unless it has that outcome), or
/// the tenant's first stage with the outcome (FAILED_PRECONDITION when it has none).
pub(crate) async fn closing_stage(
    tx: &mut TenantTx,
    key: &str,
    outcome: Outcome,
) -> Result<StageInfo, CrmError> {
    let key = key.trim();
    if key.is_empty() {
        return first_stage(tx, outcome)
            .await?
            .ok_or(CrmError::NoStage(outcome));
    }
    let stage = require_deal_stage(tx, "stage", key).await?;
    if stage.outcome == outcome.as_str() {
        Ok(stage)
    } else {
        Err(CrmError::invalid(
            "stage",
            format!(
                "{key:?} is not a {outcome} stage (its outcome is {})",
                stage.outcome
            ),
        ))
    }
}

/// FAILED_PRECONDITION (DEAL_CLOSED) unless the deal is open.
pub(crate) fn require_open(deal: &DealRow, action: &str) -> Result<(), CrmError> {
    if deal.status == "open" {
        return Ok(());
    }
    Err(CrmError::DealClosed {
        id: deal.id,
        status: deal.status.clone(),
        stage: deal.stage.clone(),
        action: action.to_owned(),
    })
}

/// The close date of a WinDeal or LoseDeal: the one given, else `today` (the
/// tenant's date, see `TenantContext::today`).
pub(crate) fn close_date(
    d: Option<&fusion_proto::google::r#type::Date>,
    today: NaiveDate,
) -> Result<NaiveDate, String> {
    let (year, month, day) = d.map(|d| (d.year, d.month, d.day)).unwrap_or_default();
    parse_date(year, month, day).map(|date| date.unwrap_or(today))
}

/// Deals on the standard methods: a new deal starts in an open stage (the one it names
/// or the tenant's first) at that stage's default probability; its lot and assignee
/// are asked of their owners as the caller, its lead and contact are live rows of the
/// tenant, key-share locked until the write commits.
pub(crate) struct Deals;

impl Resource for Deals {
    type Row = DealRow;
    type Pb = pb::Deal;
    type State = AppState;
    type Error = crate::error::CrmError;

    const SINGULAR: &'static str = "Deal";
    const FIELD: &'static str = "deal";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = FIXED;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, row: DealRow) -> pb::Deal {
        row.into_pb(state)
    }

    fn id(d: &pb::Deal) -> i64 {
        d.id
    }

    fn etag(d: &pb::Deal) -> &str {
        &d.etag
    }

    fn populated(d: &pb::Deal) -> Vec<&'static str> {
        populated(&[
            ("lead_id", d.lead_id != 0),
            ("contact_id", d.contact_id != 0),
            ("lot_id", d.lot_id != 0),
            ("assignee_user_id", d.assignee_user_id != 0),
            ("title", !d.title.is_empty()),
            ("description", !d.description.is_empty()),
            ("value", !d.value.is_empty()),
            ("currency_code", !d.currency_code.is_empty()),
            ("probability", d.probability.is_some()),
            ("expected_close_date", d.expected_close_date.is_some()),
            ("custom_fields", !d.custom_fields.is_empty()),
            ("tags", !d.tags.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        d: &pb::Deal,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, crate::error::CrmError> {
        values(d, fields, method)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        d: &pb::Deal,
        values: &mut Values,
    ) -> Result<(), crate::error::CrmError> {
        check_owners(call.state, d, CREATE).await?;
        lock_links(tx, d, CREATE).await?;
        place_new_deal(tx, d, values).await?;
        Ok(())
    }

    /// The owners are asked with the deal locked (the kit opens the transaction before
    /// any hook); the lead and contact are key-share locked after it. A new lot clears
    /// the deal's lot conflict, and a won deal may take it only when no other live deal
    /// of the tenant has won it.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &DealRow,
        d: &pb::Deal,
        values: &mut Values,
    ) -> Result<(), crate::error::CrmError> {
        // The masked fields, as the proto names them.
        check_owners(call.state, d, call.fields).await?;
        lock_links(tx, d, call.fields).await?;
        if call.fields.contains(&"lot_id") {
            let lot = optional_id(d.lot_id).map_err(|why| CrmError::invalid("deal.lot_id", why))?;
            if lot != current.lot_id {
                values.extend(cleared_lot_conflict());
                if current.status == "won"
                    && let Some(lot) = lot
                {
                    require_sole_winner(tx, current.id, lot).await?;
                }
            }
        }
        Ok(())
    }

    /// A won deal comes back only while no other live deal of the tenant has won its
    /// lot.
    async fn on_undelete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &DealRow,
    ) -> Result<(), crate::error::CrmError> {
        if current.status == "won"
            && let Some(lot) = current.lot_id
        {
            require_sole_winner(tx, current.id, lot).await?;
        }
        Ok(())
    }
}

/// The column values that clear a deal's lot conflict (on reopening it or changing its
/// lot).
pub(crate) fn cleared_lot_conflict() -> Values {
    vec![
        ("lot_conflict_status", Val::Text(None)),
        ("lot_conflict_deal_id", Val::Int(None)),
        ("lot_conflict_at", Val::Timestamp(None)),
    ]
}

/// Refuses (LOT_ALREADY_WON, naming the winner) when a live deal of the tenant other
/// than `deal_id` is won with lot `lot_id`, so `deal_id` may become (or stay, with that
/// lot) its winner. It first takes the lot's winner lock (a transaction-level advisory
/// lock on the tenant and lot) until the transaction ends: of two transactions making
/// two deals winners of one lot, the second waits for the first to commit and then
/// sees its winner. Every path to a won deal with a lot takes it after locking its deal
/// (WinDeal, UpdateDeal's lot, UndeleteDeal), so the order is always deal, then lot.
/// The unique index `deals_won_lot_key` holds the rule whatever the code does.
pub(crate) async fn require_sole_winner(
    tx: &mut TenantTx,
    deal_id: i64,
    lot_id: i64,
) -> Result<(), CrmError> {
    let tenant = tx.tenant_id();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(
                    hashtextextended('crm.deals.won_lot/' || $1::text || '/' || $2::text, 0))",
    )
    .bind(tenant)
    .bind(lot_id)
    .execute(&mut **tx)
    .await?;
    let winner: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM crm.deals
          WHERE tenant_id = $1 AND lot_id = $2 AND status = 'won' AND deleted_at IS NULL
            AND id <> $3
          ORDER BY id LIMIT 1",
    )
    .bind(tenant)
    .bind(lot_id)
    .bind(deal_id)
    .fetch_optional(&mut **tx)
    .await?;
    match winner {
        Some(won) => Err(CrmError::LotAlreadyWon {
            lot_id,
            won_deal_id: Some(won),
        }),
        None => Ok(()),
    }
}

/// The `crm.deal.won` event type (fusion.crm.v1.DealWon).
pub(crate) const DEAL_WON: &str = "crm.deal.won";

/// The `crm.deal.lost` event type (fusion.crm.v1.DealLost).
pub(crate) const DEAL_LOST: &str = "crm.deal.lost";

/// The `crm.deal.reopened` event type (fusion.crm.v1.DealReopened).
pub(crate) const DEAL_REOPENED: &str = "crm.deal.reopened";

/// Writes `crm.deal.won` for `deal` to the outbox, in the transaction that won it (which
/// holds the deal's row lock, so one deal's events keep their commit order): property
/// sells the deal's lot on it, and finance may start the commission. `actor` is the
/// user who won it.
pub(crate) async fn announce_won(
    tx: &mut TenantTx,
    deal: &DealRow,
    actor: i64,
) -> Result<(), CrmError> {
    let won = pb::DealWon {
        deal_id: deal.id,
        lot_id: deal.lot_id.unwrap_or_default(),
        contact_id: deal.contact_id.unwrap_or_default(),
        lead_id: deal.lead_id.unwrap_or_default(),
        assignee_user_id: deal.assigned_to.unwrap_or_default(),
        value: dec_str(deal.value.map(cents)),
        currency_code: deal.currency.clone(),
        close_date: deal.actual_close_date.map(date_pb),
        stage: deal.stage.clone(),
        acting_user_id: actor,
    };
    fusion_events::outbox::append(tx, crate::SCHEMA, Event::new(DEAL_WON, deal.id, &won)).await?;
    Ok(())
}

/// Writes `crm.deal.lost` for `deal` (as LoseDeal left it) to the outbox, in the
/// transaction that lost it, holding the deal's row lock: property releases the lot
/// held or reserved for the deal. `actor` is the user who lost it.
pub(crate) async fn announce_lost(
    tx: &mut TenantTx,
    deal: &DealRow,
    actor: i64,
) -> Result<(), CrmError> {
    let lost = pb::DealLost {
        deal_id: deal.id,
        lot_id: deal.lot_id.unwrap_or_default(),
        contact_id: deal.contact_id.unwrap_or_default(),
        value: dec_str(deal.value.map(cents)),
        currency_code: deal.currency.clone(),
        close_date: deal.actual_close_date.map(date_pb),
        reason: deal.close_reason.clone().unwrap_or_default(),
        acting_user_id: actor,
    };
    fusion_events::outbox::append(tx, crate::SCHEMA, Event::new(DEAL_LOST, deal.id, &lost)).await?;
    Ok(())
}

/// Writes `crm.deal.reopened` for `deal` (as MoveDealStage left it, open again) to the
/// outbox, in the transaction that reopened it, holding the deal's row lock: property
/// releases the lot taken for the deal, finance cancels its commissions.
/// `previous_status` is `won` or `lost`; `actor` is the user who reopened it.
pub(crate) async fn announce_reopened(
    tx: &mut TenantTx,
    deal: &DealRow,
    previous_status: &str,
    actor: i64,
) -> Result<(), CrmError> {
    let reopened = pb::DealReopened {
        deal_id: deal.id,
        lot_id: deal.lot_id.unwrap_or_default(),
        contact_id: deal.contact_id.unwrap_or_default(),
        value: dec_str(deal.value.map(cents)),
        currency_code: deal.currency.clone(),
        previous_status: previous_status.to_owned(),
        stage: deal.stage.clone(),
        acting_user_id: actor,
    };
    let event = Event::new(DEAL_REOPENED, deal.id, &reopened);
    fusion_events::outbox::append(tx, crate::SCHEMA, event).await?;
    Ok(())
}

/// What became of a lot sale property refused for a deal.
pub(crate) enum Conflict {
    /// The deal is now flagged; the row as it is now.
    Flagged(Box<DealRow>),
    /// It already was (an earlier refusal of the same sale): nothing changed.
    AlreadyFlagged,
    /// The deal is gone, no longer won, or no longer names that lot: the refusal is
    /// about a sale nobody wants any more.
    Stale,
}

/// Flags deal `deal_id`'s lot conflict (property refused to sell lot `lot_id` to it:
/// the lot is `lot_status`, sold to `sold_to` if to a deal) when the deal, locked, is
/// still live, won and for that lot, and has no conflict yet.
pub(crate) async fn flag_lot_conflict(
    tx: &mut TenantTx,
    deal_id: i64,
    lot_id: i64,
    lot_status: &str,
    sold_to: Option<i64>,
) -> Result<Conflict, CrmError> {
    let deal: DealRow = match TABLE.fetch(tx, deal_id, Read::live().for_update()).await {
        Ok(deal) => deal,
        Err(e) if matches!(e.kind(), fusion_db::Kind::NotFound(_)) => return Ok(Conflict::Stale),
        Err(e) => return Err(e.into()),
    };
    if deal.status != "won" || deal.lot_id != Some(lot_id) {
        return Ok(Conflict::Stale);
    }
    if deal.lot_conflict_at.is_some() {
        return Ok(Conflict::AlreadyFlagged);
    }
    sqlx::query(
        "UPDATE crm.deals
            SET lot_conflict_status = $2, lot_conflict_deal_id = $3, lot_conflict_at = now(),
                updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(deal_id)
    .bind(lot_status)
    .bind(sold_to)
    .execute(&mut **tx)
    .await?;
    let row: DealRow = TABLE.fetch(tx, deal_id, Read::live()).await?;
    Ok(Conflict::Flagged(Box::new(row)))
}
