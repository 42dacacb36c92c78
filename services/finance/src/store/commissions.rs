//! Commissions: their row, their description for the standard methods, and what
//! finance's event consumers write — the parts of a won deal's plan, the milestones
//! its lot reaches, the cancellations and clawbacks when the deal is lost or reopened
//! — and the totals of SummarizeCommissions.
//!
//! The status machine: `pending` → `payable` (its milestone reached) → `approved` →
//! `paid`, and `cancelled` for what a deal lost or reopened never paid. A commission
//! made by hand (`kind` manual) is payable at once; a paid one taken back gets a
//! negative `clawback` row, payable, pointing at it. Status is the deal's business,
//! not the row's visibility: a soft-deleted commission follows its deal's milestones
//! and cancellation like a live one, so an undelete restores it as it would now be.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values, lock_live};
use fusion_proto::finance::v1 as pb;
use fusion_service::api::{date_pb, etag, opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_service::validate;

use crate::domain::commission::{CommissionType, Milestone};
use crate::domain::currency::Currency;
use crate::domain::money::MONEY;
use crate::error::FinanceError;
use crate::store::invoices::two_places;
use crate::store::values_of;
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "finance.commissions",
    select: SELECT,
    what: "commission",
};

const SELECT: &str = "id, tenant_id, deal_id, user_id, invoice_id, amount, rate, status, \
    payment_date, description, currency, commission_type, milestone, kind, plan_id, \
    clawback_of_id, payable_at, version, created_at, updated_at, deleted_at";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("deal_id", "deal_id", FieldKind::Int),
    FieldSpec::new("recipient_user_id", "user_id", FieldKind::Int),
    // None is 0 on the wire.
    FieldSpec::new("invoice_id", "coalesce(invoice_id, 0)", FieldKind::Int),
    FieldSpec::new("amount", "amount", FieldKind::Decimal),
    FieldSpec::new("currency_code", "currency", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("commission_type", "commission_type", FieldKind::Text),
    FieldSpec::new("milestone", "milestone", FieldKind::Text),
    FieldSpec::new("kind", "kind", FieldKind::Text),
    FieldSpec::new("plan_id", "coalesce(plan_id, 0)", FieldKind::Int),
    FieldSpec::new("payment_date", "payment_date", FieldKind::Date),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["create_time", "update_time", "amount", "payment_date"],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What Create sets.
const CREATE: &[&str] = &[
    "deal_id",
    "recipient_user_id",
    "invoice_id",
    "amount",
    "currency_code",
    "commission_type",
    "description",
];

/// What Update may change (the amount only on a manual commission not yet approved).
const MUTABLE: &[&str] = &["amount", "invoice_id", "description"];

/// Fields set at creation only.
const FIXED: &[&str] = &[
    "deal_id",
    "recipient_user_id",
    "currency_code",
    "commission_type",
];

/// Statuses.
pub(crate) const PENDING: &str = "pending";
pub(crate) const PAYABLE: &str = "payable";
pub(crate) const APPROVED: &str = "approved";
pub(crate) const PAID: &str = "paid";

/// Kinds.
const MANUAL: &str = "manual";

#[derive(sqlx::FromRow)]
pub(crate) struct CommissionRow {
    pub id: i64,
    pub tenant_id: i64,
    pub deal_id: i64,
    pub user_id: i64,
    pub invoice_id: Option<i64>,
    pub amount: Decimal,
    pub rate: Option<Decimal>,
    pub status: String,
    pub payment_date: Option<NaiveDate>,
    pub description: Option<String>,
    pub currency: String,
    pub commission_type: String,
    pub milestone: String,
    pub kind: String,
    pub plan_id: Option<i64>,
    pub clawback_of_id: Option<i64>,
    pub payable_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(CommissionRow);

/// Commissions on the standard methods. Create makes a manual commission, payable at
/// once, for a deal crm shows the caller and a user identity shows them; Update
/// changes the description and invoice at any time and the amount of a manual
/// commission not yet approved; Delete refuses an approved or paid commission.
pub(crate) struct Commissions;

impl Resource for Commissions {
    type Row = CommissionRow;
    type Pb = pb::Commission;
    type State = AppState;
    type Error = FinanceError;

    const SINGULAR: &'static str = "Commission";
    const FIELD: &'static str = "commission";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = FIXED;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: CommissionRow) -> pb::Commission {
        to_pb(&state.kit, r)
    }

    fn id(c: &pb::Commission) -> i64 {
        c.id
    }

    fn etag(c: &pb::Commission) -> &str {
        &c.etag
    }

    fn populated(c: &pb::Commission) -> Vec<&'static str> {
        populated(&[
            ("amount", !c.amount.is_empty()),
            ("invoice_id", c.invoice_id != 0),
            ("description", !c.description.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        c: &pb::Commission,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, FinanceError> {
        values_of("commission", fields, |field| {
            Ok(Some(match field {
                "deal_id" => ("deal_id", Val::Int(Some(required_id(c.deal_id)?))),
                "recipient_user_id" => {
                    ("user_id", Val::Int(Some(required_id(c.recipient_user_id)?)))
                }
                "invoice_id" => match c.invoice_id {
                    0 => ("invoice_id", Val::Int(None)),
                    id if id > 0 => ("invoice_id", Val::Int(Some(id))),
                    _ => return Err("must be a positive id, or 0 for none".into()),
                },
                "amount" => {
                    let amount = MONEY.parse(&c.amount)?;
                    if amount <= Decimal::ZERO {
                        return Err("must be above zero".into());
                    }
                    ("amount", Val::Decimal(Some(amount)))
                }
                "currency_code" => ("currency", Val::text(currency(&c.currency_code)?.code())),
                "commission_type" => {
                    let name = match c.commission_type.trim() {
                        "" if method == Method::Create => CommissionType::SalesAgent.as_str(),
                        name => CommissionType::parse(name)?.as_str(),
                    };
                    ("commission_type", Val::text(name))
                }
                "description" => {
                    validate::max_len(&c.description, 10_000)?;
                    ("description", Val::text(&c.description))
                }
                _ => return Ok(None),
            }))
        })
    }

    /// Checks the deal with crm and the recipient with identity (as the caller) and
    /// the invoice in this tenant, then makes the commission manual and payable now.
    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        c: &pb::Commission,
        values: &mut Values,
    ) -> Result<(), FinanceError> {
        let refs = &call.state.refs;
        refs.deal("commission.deal_id", c.deal_id).await?;
        refs.user("commission.recipient_user_id", c.recipient_user_id)
            .await?;
        lock_invoice(tx, c.invoice_id).await?;
        let currency = currency(&c.currency_code)
            .map_err(|e| FinanceError::invalid("commission.currency_code", e))?;
        check_places(currency, &c.amount)?;
        values.extend([
            ("kind", Val::text(MANUAL)),
            ("milestone", Val::text(Milestone::Won.as_str())),
            ("status", Val::text(PAYABLE)),
            ("payable_at", Val::Timestamp(Some(Utc::now()))),
        ]);
        Ok(())
    }

    /// A new amount only on a manual commission not yet approved; a new invoice must
    /// be a live one of the tenant.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &CommissionRow,
        c: &pb::Commission,
        _: &mut Values,
    ) -> Result<(), FinanceError> {
        if call.fields.contains(&"amount") {
            let open = current.status == PENDING || current.status == PAYABLE;
            if current.kind != MANUAL || !open {
                let status = if current.kind == MANUAL {
                    current.status.clone()
                } else {
                    format!("a {} commission", current.kind)
                };
                return Err(FinanceError::CommissionStatus {
                    id: current.id,
                    status,
                    action: "given a new amount",
                    allowed: "manual and pending or payable",
                });
            }
            let currency = Currency::parse(&current.currency).map_err(|_| {
                FinanceError::Internal("a stored commission has an unknown currency")
            })?;
            check_places(currency, &c.amount)?;
        }
        if call.fields.contains(&"invoice_id") {
            lock_invoice(tx, c.invoice_id).await?;
        }
        Ok(())
    }

    /// An approved or paid commission stays.
    async fn on_delete(
        _: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &CommissionRow,
    ) -> Result<(), FinanceError> {
        if current.status == APPROVED || current.status == PAID {
            Err(FinanceError::CommissionStatus {
                id: current.id,
                status: current.status.clone(),
                action: "deleted",
                allowed: "pending, payable or cancelled",
            })
        } else {
            Ok(())
        }
    }
}

/// A required id: positive.
fn required_id(id: i64) -> Result<i64, String> {
    match id {
        0 => Err("is required".into()),
        id if id > 0 => Ok(id),
        _ => Err("must be a positive id".into()),
    }
}

/// The currency sent; empty means AUD.
fn currency(raw: &str) -> Result<Currency, String> {
    match raw.trim() {
        "" => Currency::parse("AUD"),
        code => Currency::parse(code),
    }
}

/// The amount sent (already a valid `decimal(12,2)`) has no more places than
/// `currency` has.
fn check_places(currency: Currency, amount: &str) -> Result<(), FinanceError> {
    let amount = MONEY
        .parse(amount)
        .map_err(|e| FinanceError::invalid("commission.amount", e))?;
    currency
        .check_places(amount)
        .map_err(|e| FinanceError::invalid("commission.amount", e))
}

/// Key-share locks invoice `id` (0: none) so it stays live until the commission
/// naming it commits; INVALID_ARGUMENT on `commission.invoice_id` when the tenant has
/// no such live invoice.
async fn lock_invoice(tx: &mut TenantTx, id: i64) -> Result<(), FinanceError> {
    if id > 0 && !lock_live(tx, DOMAIN, "finance.invoices", id).await? {
        return Err(FinanceError::invalid(
            "commission.invoice_id",
            format!("no invoice {id} in this tenant"),
        ));
    }
    Ok(())
}

/// The wire form of a stored commission.
pub(crate) fn to_pb(kit: &Kit, r: CommissionRow) -> pb::Commission {
    pb::Commission {
        id: r.id,
        tenant_id: r.tenant_id,
        deal_id: r.deal_id,
        recipient_user_id: r.user_id,
        invoice_id: r.invoice_id.unwrap_or_default(),
        amount: two_places(r.amount),
        rate: r.rate.map(two_places).unwrap_or_default(),
        currency_code: r.currency,
        status: r.status,
        payment_date: r.payment_date.map(date_pb),
        description: r.description.unwrap_or_default(),
        commission_type: r.commission_type,
        milestone: r.milestone,
        kind: r.kind,
        plan_id: r.plan_id.unwrap_or_default(),
        clawback_of_id: r.clawback_of_id.unwrap_or_default(),
        payable_time: opt_ts(r.payable_at),
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}

// ---------------------------------------------------------------------------------------
// What the event consumers write
// ---------------------------------------------------------------------------------------

/// One commission of a won deal under its plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanPart {
    /// The plan line it comes from (its index).
    pub line: i32,
    /// The line's type.
    pub commission_type: CommissionType,
    /// The line's rate of the deal value, if it has one.
    pub rate: Option<Decimal>,
    /// Who is paid.
    pub user_id: i64,
    /// When it becomes payable.
    pub milestone: Milestone,
    /// How much.
    pub amount: Decimal,
    /// What it is, in words.
    pub description: String,
}

/// A winning of a deal: which event announced it, and what it is worth in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Win<'a> {
    /// The deal.
    pub deal_id: i64,
    /// The `crm.deal.won` event: one set of commissions per winning.
    pub event_id: uuid::Uuid,
    /// The plan the parts come from.
    pub plan_id: i64,
    /// The deal's currency.
    pub currency: &'a str,
}

/// Locks deal `deal_id`'s row in `finance.deal_milestones` (made, empty, on first
/// use) for the rest of the transaction, and returns the lot milestone it records.
/// A win and a lot event of one deal both take this lock first, so each sees what the
/// other committed.
async fn lock_deal_milestone(
    tx: &mut TenantTx,
    deal_id: i64,
) -> Result<Option<Milestone>, FinanceError> {
    let recorded: Option<String> = sqlx::query_scalar(
        "INSERT INTO finance.deal_milestones (tenant_id, deal_id) VALUES ($1, $2)
         ON CONFLICT (tenant_id, deal_id)
         DO UPDATE SET updated_at = finance.deal_milestones.updated_at
         RETURNING milestone",
    )
    .bind(tx.tenant_id())
    .bind(deal_id)
    .fetch_one(&mut **tx)
    .await?;
    recorded
        .map(|m| Milestone::parse(&m))
        .transpose()
        .map_err(|_| FinanceError::Internal("a stored deal milestone is unknown"))
}

/// Inserts a winning's commissions: those whose milestone the deal has reached (won,
/// and any lot milestone property already announced) payable, the rest pending. A
/// winning already recorded (a redelivered or retried event) inserts nothing.
/// Returns how many were inserted.
pub(crate) async fn insert_win(
    tx: &mut TenantTx,
    win: &Win<'_>,
    parts: &[PlanPart],
) -> Result<u64, FinanceError> {
    let reached = lock_deal_milestone(tx, win.deal_id)
        .await?
        .unwrap_or(Milestone::Won);
    let column = |f: fn(&PlanPart) -> String| parts.iter().map(f).collect::<Vec<String>>();
    let done = sqlx::query(
        "INSERT INTO finance.commissions
             (tenant_id, deal_id, user_id, amount, rate, status, currency, commission_type,
              milestone, kind, plan_id, plan_line, win_event_id, payable_at, description)
         SELECT $1, $2, p.user_id, p.amount, p.rate,
                CASE WHEN p.payable THEN 'payable' ELSE 'pending' END, $3, p.commission_type,
                p.milestone, 'plan', $4, p.line, $5,
                CASE WHEN p.payable THEN now() END, p.description
           FROM unnest($6::bigint[], $7::numeric[], $8::numeric[], $9::text[], $10::text[],
                       $11::integer[], $12::boolean[], $13::text[])
                AS p(user_id, amount, rate, commission_type, milestone, line, payable, description)
         ON CONFLICT (tenant_id, win_event_id, plan_line, user_id, milestone)
            WHERE win_event_id IS NOT NULL AND kind = 'plan'
         DO NOTHING",
    )
    .bind(tx.tenant_id())
    .bind(win.deal_id)
    .bind(win.currency)
    .bind(win.plan_id)
    .bind(win.event_id)
    .bind(parts.iter().map(|p| p.user_id).collect::<Vec<i64>>())
    .bind(parts.iter().map(|p| p.amount).collect::<Vec<Decimal>>())
    .bind(
        parts
            .iter()
            .map(|p| p.rate)
            .collect::<Vec<Option<Decimal>>>(),
    )
    .bind(column(|p| p.commission_type.as_str().to_owned()))
    .bind(column(|p| p.milestone.as_str().to_owned()))
    .bind(parts.iter().map(|p| p.line).collect::<Vec<i32>>())
    .bind(
        parts
            .iter()
            .map(|p| p.milestone.is_reached_by(reached))
            .collect::<Vec<bool>>(),
    )
    .bind(column(|p| p.description.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Records where deal `deal_id`'s lot now is (`milestone`; none when its status is
/// not a milestone) and makes the deal's pending commissions whose milestone that
/// reaches payable. A lot moving back leaves what is payable payable. Returns how many
/// became payable.
pub(crate) async fn reach_milestone(
    tx: &mut TenantTx,
    deal_id: i64,
    milestone: Option<Milestone>,
) -> Result<u64, FinanceError> {
    // The same row lock a win takes (see `lock_deal_milestone`).
    sqlx::query(
        "INSERT INTO finance.deal_milestones (tenant_id, deal_id, milestone) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, deal_id)
         DO UPDATE SET milestone = EXCLUDED.milestone, updated_at = now()",
    )
    .bind(tx.tenant_id())
    .bind(deal_id)
    .bind(milestone.map(Milestone::as_str))
    .execute(&mut **tx)
    .await?;
    let Some(milestone) = milestone else {
        return Ok(0);
    };
    let reached: Vec<&str> = milestone.and_before().iter().map(|m| m.as_str()).collect();
    let done = sqlx::query(
        "UPDATE finance.commissions
            SET status = 'payable', payable_at = now(), updated_at = now(), version = version + 1
          WHERE deal_id = $1 AND status = 'pending' AND milestone = ANY($2)",
    )
    .bind(deal_id)
    .bind(reached)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// What taking back a deal's commissions did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TakenBack {
    /// Unpaid commissions cancelled.
    pub cancelled: u64,
    /// Clawbacks recorded for paid ones.
    pub clawed_back: u64,
}

/// Takes back deal `deal_id`'s commissions because the deal was `why` (lost, or
/// reopened after winning): those not yet paid are cancelled and each paid one gets a
/// clawback (its amount negated, payable), once. Clawbacks themselves are left as
/// they are: they recover what was paid on an earlier winning.
///
/// Cancelling comes first: a commission being marked paid meanwhile is then either
/// cancelled before it is paid (and its payment refused) or seen paid by the clawback
/// statement that follows.
pub(crate) async fn take_back(
    tx: &mut TenantTx,
    deal_id: i64,
    why: &str,
) -> Result<TakenBack, FinanceError> {
    let cancelled = sqlx::query(
        "UPDATE finance.commissions
            SET status = 'cancelled', updated_at = now(), version = version + 1
          WHERE deal_id = $1 AND kind <> 'clawback'
            AND status IN ('pending', 'payable', 'approved')",
    )
    .bind(deal_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let clawed_back = sqlx::query(
        "INSERT INTO finance.commissions
             (tenant_id, deal_id, user_id, amount, rate, status, currency, commission_type,
              milestone, kind, plan_id, plan_line, clawback_of_id, payable_at, description)
         SELECT tenant_id, deal_id, user_id, -amount, rate, 'payable', currency, commission_type,
                milestone, 'clawback', plan_id, plan_line, id, now(),
                format('Clawback of commission %s, paid on %s: deal %s was %s', id,
                       payment_date, deal_id, $2::text)
           FROM finance.commissions
          WHERE deal_id = $1 AND kind <> 'clawback' AND status = 'paid' AND amount <> 0
         ON CONFLICT (tenant_id, clawback_of_id) WHERE clawback_of_id IS NOT NULL DO NOTHING",
    )
    .bind(deal_id)
    .bind(why)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(TakenBack {
        cancelled,
        clawed_back,
    })
}

// ---------------------------------------------------------------------------------------
// SummarizeCommissions
// ---------------------------------------------------------------------------------------

/// The total of one group of commissions.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct TotalRow {
    pub user_id: i64,
    pub commission_type: String,
    pub status: String,
    pub currency: String,
    pub amount: Decimal,
    pub count: i64,
}

/// Totals of the transaction's tenant's live commissions created from `first` to
/// `last` (dates in `zone`, both included), by recipient, type, status and currency,
/// ordered by them; only `recipient`'s when given.
pub(crate) async fn totals(
    tx: &mut TenantTx,
    first: NaiveDate,
    last: NaiveDate,
    zone: chrono_tz::Tz,
    recipient: Option<i64>,
) -> Result<Vec<TotalRow>, FinanceError> {
    Ok(sqlx::query_as(
        "SELECT user_id, commission_type, status, currency, sum(amount) AS amount,
                count(*) AS count
           FROM finance.commissions
          WHERE deleted_at IS NULL
            AND created_at >= $1::date::timestamp AT TIME ZONE $3
            AND created_at < ($2::date + 1)::timestamp AT TIME ZONE $3
            AND ($4::bigint IS NULL OR user_id = $4)
          GROUP BY user_id, commission_type, status, currency
          ORDER BY user_id, commission_type, status, currency",
    )
    .bind(first)
    .bind(last)
    .bind(zone.name())
    .bind(recipient)
    .fetch_all(&mut **tx)
    .await?)
}

/// The wire form of a total.
pub(crate) fn total_pb(t: TotalRow) -> pb::CommissionTotal {
    pb::CommissionTotal {
        recipient_user_id: t.user_id,
        commission_type: t.commission_type,
        status: t.status,
        currency_code: t.currency,
        amount: two_places(t.amount),
        commission_count: fusion_service::api::total(t.count),
    }
}
