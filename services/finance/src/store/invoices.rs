//! Invoices: their row (with its lines and payments), their description for the
//! standard methods, the gapless number, and the status steps.
//!
//! Every amount is computed here from the lines with `crate::domain::invoice`, in the
//! transaction that writes them; the client never sends one. The lines live in
//! `finance.invoice_items` and are read back with the invoice in one statement (JSON
//! sub-selects), so a Get or a List page is one round trip.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::types::Json;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::finance::v1 as pb;
use fusion_service::api::{date_pb, etag, opt_ts, parse_date, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_service::validate;

use crate::domain::currency::Currency;
use crate::domain::invoice::{self as money, LineAmountTypes, RawLine};
use crate::error::FinanceError;
use crate::store::{values_of, violations};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "finance.invoices",
    select: SELECT,
    what: "invoice",
};

/// The invoice's columns, its lines in order and its payments oldest first.
const SELECT: &str = "id, tenant_id, deal_id, contact_id, invoice_number, xero_invoice_id, \
    xero_contact_id, invoice_date, due_date, amount, tax_amount, status, currency, reference, \
    description, last_synced_at, line_amount_types, subtotal, amount_paid, amount_due, \
    xero_sync_status, xero_sync_error, version, created_at, updated_at, deleted_at, \
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', li.id, 'description', li.description, \
        'quantity', li.quantity::text, 'unit_price', li.unit_price::text, \
        'tax_rate', li.tax_rate::text, 'amount', li.amount::text, \
        'tax_amount', li.tax_amount::text, 'xero_line_item_id', li.xero_line_item_id) \
        ORDER BY li.position), '[]'::jsonb) \
       FROM finance.invoice_items li \
      WHERE li.tenant_id = invoices.tenant_id AND li.invoice_id = invoices.id) AS line_items, \
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'amount', p.amount::text, \
        'payment_date', p.payment_date, 'reference', p.reference, \
        'xero_payment_id', p.xero_payment_id, 'created_at', p.created_at) ORDER BY p.id), \
        '[]'::jsonb) \
       FROM finance.payments p \
      WHERE p.tenant_id = invoices.tenant_id AND p.invoice_id = invoices.id) AS payments";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("invoice_number", "invoice_number", FieldKind::Text),
    FieldSpec::new("deal_id", "deal_id", FieldKind::Int),
    FieldSpec::new("contact_id", "contact_id", FieldKind::Int),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("currency_code", "currency", FieldKind::Text),
    FieldSpec::new("amount", "amount", FieldKind::Decimal),
    FieldSpec::new("amount_due", "amount_due", FieldKind::Decimal),
    FieldSpec::new("invoice_date", "invoice_date", FieldKind::Date),
    FieldSpec::new("due_date", "due_date", FieldKind::Date),
    FieldSpec::new("xero_sync_status", "xero_sync_status", FieldKind::Text),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "invoice_date",
        "due_date",
        "invoice_number",
        "amount",
        "amount_due",
        "create_time",
        "update_time",
    ],
    default_order: "invoice_date desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What Create sets and Update may change.
pub(crate) const MUTABLE: &[&str] = &[
    "deal_id",
    "contact_id",
    "invoice_date",
    "due_date",
    "line_amount_types",
    "line_items",
    "currency_code",
    "reference",
    "description",
];

/// What may change whatever the invoice's status (the rest only while draft or
/// submitted).
const ALWAYS_MUTABLE: &[&str] = &["reference", "description"];

/// The fields whose change re-prices the invoice.
const PRICING: &[&str] = &["line_items", "line_amount_types", "currency_code"];

/// Days from the invoice date to the default due date.
const DEFAULT_TERMS_DAYS: u64 = 30;

/// Statuses.
pub(crate) const DRAFT: &str = "draft";
pub(crate) const SUBMITTED: &str = "submitted";
pub(crate) const AUTHORISED: &str = "authorised";
pub(crate) const PAID: &str = "paid";
pub(crate) const VOIDED: &str = "voided";

/// The `finance.invoice.paid` event type (fusion.finance.v1.InvoicePaid).
pub(crate) const INVOICE_PAID: &str = "finance.invoice.paid";

#[derive(sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    pub id: i64,
    pub tenant_id: i64,
    pub deal_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub invoice_number: String,
    pub xero_invoice_id: Option<String>,
    pub xero_contact_id: Option<String>,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amount: Decimal,
    pub tax_amount: Decimal,
    pub status: String,
    pub currency: String,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub line_amount_types: String,
    pub subtotal: Decimal,
    pub amount_paid: Decimal,
    pub amount_due: Decimal,
    pub xero_sync_status: String,
    pub xero_sync_error: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub line_items: Json<Vec<LineRow>>,
    pub payments: Json<Vec<PaymentRow>>,
}

fusion_db::versioned!(InvoiceRow);

/// A stored line; decimals as PostgreSQL writes them (`"33.33"`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LineRow {
    pub id: i64,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub tax_rate: String,
    pub amount: String,
    pub tax_amount: String,
    pub xero_line_item_id: Option<String>,
}

/// A stored payment.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PaymentRow {
    pub id: i64,
    pub amount: String,
    pub payment_date: NaiveDate,
    pub reference: Option<String>,
    pub xero_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A line priced and ready to store.
struct PricedLine<'a> {
    description: &'a str,
    line: money::Line,
    totals: money::LineTotals,
}

/// Invoices on the standard methods: numbered at creation, priced from their lines
/// whenever the lines, tax treatment or currency change, and changed (beyond their
/// reference and description) or deleted only while draft or submitted.
pub(crate) struct Invoices;

impl Resource for Invoices {
    type Row = InvoiceRow;
    type Pb = pb::Invoice;
    type State = AppState;
    type Error = FinanceError;

    const SINGULAR: &'static str = "Invoice";
    const FIELD: &'static str = "invoice";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: InvoiceRow) -> pb::Invoice {
        to_pb(&state.kit, r)
    }

    fn id(i: &pb::Invoice) -> i64 {
        i.id
    }

    fn etag(i: &pb::Invoice) -> &str {
        &i.etag
    }

    fn populated(i: &pb::Invoice) -> Vec<&'static str> {
        populated(&[
            ("deal_id", i.deal_id != 0),
            ("contact_id", i.contact_id != 0),
            ("invoice_date", i.invoice_date.is_some()),
            ("due_date", i.due_date.is_some()),
            ("line_amount_types", !i.line_amount_types.is_empty()),
            ("line_items", !i.line_items.is_empty()),
            ("currency_code", !i.currency_code.is_empty()),
            ("reference", !i.reference.is_empty()),
            ("description", !i.description.is_empty()),
        ])
    }

    /// Checked field by field. Lines, tax treatment and currency are priced together
    /// where the sent and stored values meet (`on_create`, `on_update`); dates are
    /// compared there too.
    fn values(
        _: &AppState,
        i: &pb::Invoice,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, FinanceError> {
        values_of("invoice", fields, |field| {
            Ok(Some(match field {
                "deal_id" => ("deal_id", positive_or_null(i.deal_id)?),
                "contact_id" => ("contact_id", positive_or_null(i.contact_id)?),
                "invoice_date" => ("invoice_date", Val::Date(date_of(&i.invoice_date)?)),
                "due_date" => ("due_date", Val::Date(date_of(&i.due_date)?)),
                "line_amount_types" => {
                    let types = line_amount_types(&i.line_amount_types, method)?;
                    ("line_amount_types", Val::text(types.as_str()))
                }
                "currency_code" => {
                    let currency = currency(&i.currency_code, method)?;
                    ("currency", Val::text(currency.code()))
                }
                "reference" => {
                    validate::max_len(&i.reference, 255)?;
                    ("reference", Val::text(&i.reference))
                }
                "description" => {
                    validate::max_len(&i.description, 10_000)?;
                    ("description", Val::text(&i.description))
                }
                // Priced with the other pricing fields in the transaction.
                _ => return Ok(None),
            }))
        })
    }

    /// Checks the deal and contact with crm as the caller, fills the default dates,
    /// prices the lines and takes the tenant's next number, last, so the counter row
    /// is locked for as short a time as possible.
    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        i: &pb::Invoice,
        values: &mut Values,
    ) -> Result<(), FinanceError> {
        check_parties(call, i, MUTABLE).await?;
        let invoice_date = date_of(&i.invoice_date)
            .map_err(|e| FinanceError::invalid("invoice.invoice_date", e))?
            .unwrap_or_else(|| call.caller.today());
        let due_date = date_of(&i.due_date)
            .map_err(|e| FinanceError::invalid("invoice.due_date", e))?
            .unwrap_or(invoice_date + chrono::Days::new(DEFAULT_TERMS_DAYS));
        check_dates(invoice_date, due_date)?;
        set(values, "invoice_date", Val::Date(Some(invoice_date)));
        set(values, "due_date", Val::Date(Some(due_date)));
        let types = line_amount_types(&i.line_amount_types, Method::Create)
            .map_err(|e| FinanceError::invalid("invoice.line_amount_types", e))?;
        let currency = currency(&i.currency_code, Method::Create)
            .map_err(|e| FinanceError::invalid("invoice.currency_code", e))?;
        let totals = price(&i.line_items, types, currency)?;
        push_totals(values, &totals);
        let number = next_number(tx).await?;
        values.push(("invoice_number", Val::Text(Some(number))));
        Ok(())
    }

    async fn after_insert(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        i: &pb::Invoice,
    ) -> Result<(), FinanceError> {
        let types = line_amount_types(&i.line_amount_types, Method::Create)
            .map_err(|e| FinanceError::invalid("invoice.line_amount_types", e))?;
        let currency = currency(&i.currency_code, Method::Create)
            .map_err(|e| FinanceError::invalid("invoice.currency_code", e))?;
        let priced = priced_lines(&i.line_items, types, currency)?;
        insert_lines(tx, id, &priced).await
    }

    /// Refuses changes a status no longer allows, re-prices when the lines, tax
    /// treatment or currency change (the stored lines when only the treatment or
    /// currency does), and keeps the due date on or after the invoice date.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &InvoiceRow,
        i: &pb::Invoice,
        values: &mut Values,
    ) -> Result<(), FinanceError> {
        if !editable(&current.status)
            && let Some(field) = call.fields.iter().find(|f| !ALWAYS_MUTABLE.contains(f))
        {
            return Err(FinanceError::InvoiceLocked {
                id: current.id,
                status: current.status.clone(),
                field: (*field).to_owned(),
            });
        }
        check_parties(call, i, call.fields).await?;
        let changing = |f: &str| call.fields.contains(&f);
        let invoice_date = if changing("invoice_date") {
            date_of(&i.invoice_date)
                .map_err(|e| FinanceError::invalid("invoice.invoice_date", e))?
                .ok_or_else(|| FinanceError::invalid("invoice.invoice_date", "is required"))?
        } else {
            current.invoice_date
        };
        let due_date = if changing("due_date") {
            date_of(&i.due_date)
                .map_err(|e| FinanceError::invalid("invoice.due_date", e))?
                .ok_or_else(|| FinanceError::invalid("invoice.due_date", "is required"))?
        } else {
            current.due_date
        };
        check_dates(invoice_date, due_date)?;
        if !PRICING.iter().any(|f| changing(f)) {
            return Ok(());
        }
        let types = if changing("line_amount_types") {
            line_amount_types(&i.line_amount_types, Method::Update)
                .map_err(|e| FinanceError::invalid("invoice.line_amount_types", e))?
        } else {
            LineAmountTypes::parse(&current.line_amount_types).map_err(|_| {
                FinanceError::Internal("a stored invoice has an unknown tax treatment")
            })?
        };
        let currency = if changing("currency_code") {
            currency(&i.currency_code, Method::Update)
                .map_err(|e| FinanceError::invalid("invoice.currency_code", e))?
        } else {
            Currency::parse(&current.currency)
                .map_err(|_| FinanceError::Internal("a stored invoice has an unknown currency"))?
        };
        let sent: Vec<pb::InvoiceLineItem>;
        let lines = if changing("line_items") {
            &i.line_items
        } else {
            sent = current
                .line_items
                .0
                .iter()
                .map(|l| pb::InvoiceLineItem {
                    description: l.description.clone(),
                    quantity: l.quantity.clone(),
                    unit_price: l.unit_price.clone(),
                    tax_rate: l.tax_rate.clone(),
                    ..Default::default()
                })
                .collect();
            &sent
        };
        let totals = price(lines, types, currency)?;
        push_totals(values, &totals);
        let priced = priced_lines(lines, types, currency)?;
        replace_lines(tx, current.id, &priced).await
    }

    /// Only draft and submitted invoices are deleted; their numbers stay used.
    async fn on_delete(
        _: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &InvoiceRow,
    ) -> Result<(), FinanceError> {
        if editable(&current.status) {
            Ok(())
        } else {
            Err(FinanceError::InvoiceStatus {
                id: current.id,
                status: current.status.clone(),
                action: "deleted",
                allowed: "draft or submitted",
            })
        }
    }
}

/// Whether lines, amounts, dates and parties may still change.
pub(crate) fn editable(status: &str) -> bool {
    status == DRAFT || status == SUBMITTED
}

/// The wire form of a stored invoice.
pub(crate) fn to_pb(kit: &Kit, r: InvoiceRow) -> pb::Invoice {
    pb::Invoice {
        id: r.id,
        tenant_id: r.tenant_id,
        invoice_number: r.invoice_number,
        deal_id: r.deal_id.unwrap_or_default(),
        contact_id: r.contact_id.unwrap_or_default(),
        invoice_date: Some(date_pb(r.invoice_date)),
        due_date: Some(date_pb(r.due_date)),
        line_amount_types: r.line_amount_types,
        line_items: r
            .line_items
            .0
            .into_iter()
            .map(|l| pb::InvoiceLineItem {
                id: l.id,
                description: l.description,
                quantity: l.quantity,
                unit_price: l.unit_price,
                tax_rate: l.tax_rate,
                amount: l.amount,
                tax_amount: l.tax_amount,
                xero_line_item_id: l.xero_line_item_id.unwrap_or_default(),
            })
            .collect(),
        subtotal: two_places(r.subtotal),
        tax_amount: two_places(r.tax_amount),
        amount: two_places(r.amount),
        amount_paid: two_places(r.amount_paid),
        amount_due: two_places(r.amount_due),
        currency_code: r.currency,
        status: r.status,
        reference: r.reference.unwrap_or_default(),
        description: r.description.unwrap_or_default(),
        payments: r
            .payments
            .0
            .into_iter()
            .map(|p| pb::Payment {
                id: p.id,
                amount: p.amount,
                payment_date: Some(date_pb(p.payment_date)),
                reference: p.reference.unwrap_or_default(),
                xero_payment_id: p.xero_payment_id.unwrap_or_default(),
                create_time: Some(ts(p.created_at)),
            })
            .collect(),
        xero_invoice_id: r.xero_invoice_id.unwrap_or_default(),
        xero_contact_id: r.xero_contact_id.unwrap_or_default(),
        xero_sync_status: r.xero_sync_status,
        xero_sync_error: r.xero_sync_error.unwrap_or_default(),
        last_sync_time: opt_ts(r.last_synced_at),
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}

/// An amount as the API writes it: plain, with two decimals ("0.00").
pub(crate) fn two_places(mut d: Decimal) -> String {
    d.rescale(2);
    d.to_string()
}

/// A positive id, or 0 for none.
fn positive_or_null(id: i64) -> Result<Val, String> {
    match id {
        0 => Ok(Val::Int(None)),
        id if id > 0 => Ok(Val::Int(Some(id))),
        _ => Err("must be a positive id, or 0 for none".into()),
    }
}

/// A `google.type.Date` from the wire; unset (or all zero) is none.
fn date_of(d: &Option<fusion_proto::google::r#type::Date>) -> Result<Option<NaiveDate>, String> {
    match d {
        Some(d) => parse_date(d.year, d.month, d.day),
        None => Ok(None),
    }
}

/// The due date is on or after the invoice date.
fn check_dates(invoice_date: NaiveDate, due_date: NaiveDate) -> Result<(), FinanceError> {
    if due_date < invoice_date {
        Err(FinanceError::invalid(
            "invoice.due_date",
            format!("{due_date} is before the invoice date {invoice_date}"),
        ))
    } else {
        Ok(())
    }
}

/// The tax treatment sent; empty on create is exclusive, on update refused.
fn line_amount_types(raw: &str, method: Method) -> Result<LineAmountTypes, String> {
    match (raw.trim(), method) {
        ("", Method::Create) => Ok(LineAmountTypes::Exclusive),
        ("", Method::Update) => Err("is required: exclusive, inclusive or no_tax".into()),
        (name, _) => LineAmountTypes::parse(name),
    }
}

/// The currency sent; empty on create is AUD, on update refused.
fn currency(raw: &str, method: Method) -> Result<Currency, String> {
    match (raw.trim(), method) {
        ("", Method::Create) => Currency::parse("AUD"),
        ("", Method::Update) => Err("is required: an ISO 4217 code such as AUD".into()),
        (code, _) => Currency::parse(code),
    }
}

/// Checks the deal and contact named in `fields` with crm, as the caller.
async fn check_parties(
    call: &Call<'_, AppState>,
    i: &pb::Invoice,
    fields: &[&str],
) -> Result<(), FinanceError> {
    if fields.contains(&"deal_id") && i.deal_id > 0 {
        call.state.refs.deal("invoice.deal_id", i.deal_id).await?;
    }
    if fields.contains(&"contact_id") && i.contact_id > 0 {
        call.state
            .refs
            .contact("invoice.contact_id", i.contact_id)
            .await?;
    }
    Ok(())
}

/// The domain's view of the lines sent.
fn raw_lines(lines: &[pb::InvoiceLineItem]) -> Vec<RawLine<'_>> {
    lines
        .iter()
        .map(|l| RawLine {
            quantity: &l.quantity,
            unit_price: &l.unit_price,
            tax_rate: &l.tax_rate,
        })
        .collect()
}

/// Prices the lines sent, refusing them by path (`invoice.line_items[2].quantity`).
fn price(
    lines: &[pb::InvoiceLineItem],
    types: LineAmountTypes,
    currency: Currency,
) -> Result<money::InvoiceTotals, FinanceError> {
    let mut problems = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if let Err(e) = validate::required(&line.description, 4_000) {
            problems.push((format!("line_items[{index}].description"), e));
        }
    }
    let parsed = money::parse_lines(&raw_lines(lines));
    match parsed {
        Err(mut found) => {
            problems.append(&mut found);
            Err(violations("invoice", problems))
        }
        Ok(_) if !problems.is_empty() => Err(violations("invoice", problems)),
        Ok(parsed) => money::totals(&parsed, types, currency).map_err(|p| violations("invoice", p)),
    }
}

/// The lines sent, each with its computed amounts.
fn priced_lines(
    lines: &[pb::InvoiceLineItem],
    types: LineAmountTypes,
    currency: Currency,
) -> Result<Vec<PricedLine<'_>>, FinanceError> {
    let parsed = money::parse_lines(&raw_lines(lines)).map_err(|p| violations("invoice", p))?;
    Ok(lines
        .iter()
        .zip(parsed)
        .map(|(sent, line)| PricedLine {
            description: sent.description.trim(),
            totals: money::compute_line(&line, types, currency),
            line,
        })
        .collect())
}

/// Sets (or replaces) column `column` in `values`.
fn set(values: &mut Values, column: &'static str, value: Val) {
    values.retain(|(c, _)| *c != column);
    values.push((column, value));
}

fn push_totals(values: &mut Values, totals: &money::InvoiceTotals) {
    set(values, "subtotal", Val::Decimal(Some(totals.subtotal)));
    set(values, "tax_amount", Val::Decimal(Some(totals.tax_amount)));
    set(values, "amount", Val::Decimal(Some(totals.total)));
}

/// Takes the tenant's next invoice number: the counter row (made on first use) is
/// locked until the transaction ends, so concurrent creations queue, and a creation
/// that rolls back gives its number back. Gapless, never reused. The settings' etag
/// does not move with the counter.
async fn next_number(tx: &mut TenantTx) -> Result<String, FinanceError> {
    let (prefix, number): (String, i64) = sqlx::query_as(
        "INSERT INTO finance.settings (tenant_id, next_invoice_number) VALUES ($1, 2)
         ON CONFLICT (tenant_id) DO UPDATE
            SET next_invoice_number = finance.settings.next_invoice_number + 1
         RETURNING invoice_number_prefix, next_invoice_number - 1",
    )
    .bind(tx.tenant_id())
    .fetch_one(&mut **tx)
    .await?;
    Ok(format!("{prefix}{number}"))
}

async fn insert_lines(
    tx: &mut TenantTx,
    invoice_id: i64,
    lines: &[PricedLine<'_>],
) -> Result<(), FinanceError> {
    let rows = lines
        .iter()
        .enumerate()
        .map(|(position, l)| {
            vec![
                Val::Int(Some(invoice_id)),
                Val::Int32(Some(i32::try_from(position).unwrap_or(i32::MAX))),
                Val::Text(Some(l.description.to_owned())),
                Val::Decimal(Some(l.line.quantity())),
                Val::Decimal(Some(l.line.unit_price())),
                Val::Decimal(Some(l.totals.amount)),
                Val::Decimal(Some(l.line.tax_rate())),
                Val::Decimal(Some(l.totals.tax_amount)),
            ]
        })
        .collect();
    fusion_db::resource::insert_many(
        tx,
        DOMAIN,
        "finance.invoice_items",
        &[
            "invoice_id",
            "position",
            "description",
            "quantity",
            "unit_price",
            "amount",
            "tax_rate",
            "tax_amount",
        ],
        rows,
    )
    .await?;
    Ok(())
}

/// Replaces every line of invoice `invoice_id` (its amounts are set by the caller).
async fn replace_lines(
    tx: &mut TenantTx,
    invoice_id: i64,
    lines: &[PricedLine<'_>],
) -> Result<(), FinanceError> {
    sqlx::query("DELETE FROM finance.invoice_items WHERE invoice_id = $1")
        .bind(invoice_id)
        .execute(&mut **tx)
        .await?;
    insert_lines(tx, invoice_id, lines).await
}

/// A payment to record on an invoice.
#[derive(Clone, Debug)]
pub(crate) struct NewPayment<'a> {
    /// Above zero.
    pub amount: Decimal,
    /// When it was paid.
    pub payment_date: NaiveDate,
    /// The bank or Xero reference.
    pub reference: &'a str,
    /// The payment's id in Xero, when it came from there.
    pub xero_payment_id: Option<&'a str>,
    /// Who recorded it; none when reconciled from Xero.
    pub user_id: Option<i64>,
}

/// Records `payment` on `current` (an authorised invoice, locked by the caller's
/// transaction): never more than is due; when nothing is left due the invoice is paid
/// and `finance.invoice.paid` is announced in the same transaction.
pub(crate) async fn record_payment(
    tx: &mut TenantTx,
    current: &InvoiceRow,
    payment: &NewPayment<'_>,
) -> Result<(), FinanceError> {
    // Nothing is due on a paid invoice: any payment is too much.
    if current.status != AUTHORISED && current.status != PAID {
        return Err(FinanceError::InvoiceStatus {
            id: current.id,
            status: current.status.clone(),
            action: "paid",
            allowed: "authorised",
        });
    }
    if payment.amount > current.amount_due {
        return Err(FinanceError::Overpayment {
            id: current.id,
            amount: two_places(payment.amount),
            due: two_places(current.amount_due),
        });
    }
    sqlx::query(
        "INSERT INTO finance.payments
             (tenant_id, invoice_id, amount, payment_date, reference, xero_payment_id, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.tenant_id())
    .bind(current.id)
    .bind(payment.amount)
    .bind(payment.payment_date)
    .bind(Some(payment.reference.trim()).filter(|r| !r.is_empty()))
    .bind(payment.xero_payment_id)
    .bind(payment.user_id)
    .execute(&mut **tx)
    .await?;
    let paid = payment.amount == current.amount_due;
    let status = if paid { PAID } else { AUTHORISED };
    sqlx::query(
        "UPDATE finance.invoices
            SET amount_paid = amount_paid + $2, status = $3, updated_at = now(),
                version = version + 1
          WHERE id = $1",
    )
    .bind(current.id)
    .bind(payment.amount)
    .bind(status)
    .execute(&mut **tx)
    .await?;
    if paid {
        let event = pb::InvoicePaid {
            invoice_id: current.id,
            invoice_number: current.invoice_number.clone(),
            deal_id: current.deal_id.unwrap_or_default(),
            contact_id: current.contact_id.unwrap_or_default(),
            amount: two_places(current.amount),
            currency_code: current.currency.clone(),
            payment_date: Some(date_pb(payment.payment_date)),
        };
        fusion_events::outbox::append(
            tx,
            crate::SCHEMA,
            fusion_events::Event::new(INVOICE_PAID, current.id, &event),
        )
        .await?;
    }
    Ok(())
}
