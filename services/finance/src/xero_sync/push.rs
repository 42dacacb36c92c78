//! Pushing an invoice to the tenant's Xero organisation (`SyncInvoiceToXero`, and the
//! same after `ApproveInvoice` when the tenant's `sync_on_approval` is set).
//!
//! A push never holds a database transaction while it waits on Xero. It reads the
//! invoice (a retry with the request id of a finished push gets that push's answer),
//! makes its calls, then writes the outcome in a short transaction guarded by the
//! version it read:
//!
//! 1. the contact: the invoice's `xero_contact_id`, else the one another invoice of the
//!    same crm contact was pushed with, else the crm contact (read from crm as the
//!    caller) found by name in Xero or created there;
//! 2. the invoice: created (`PUT`) the first time, updated (`POST`) after, with our
//!    number, dates, lines and the amounts our server computed, as `SUBMITTED` or
//!    `AUTHORISED` like ours (a paid invoice goes as `AUTHORISED`; its payments are
//!    not pushed, and once in Xero it is not pushed again: Xero keeps paid invoices
//!    as they are);
//! 3. the outcome: `xero_invoice_id`, `xero_contact_id`, each line's
//!    `xero_line_item_id` (by position), `last_synced_at`, `xero_sync_status`
//!    `synced`. Had the invoice changed meanwhile, its Xero ids are kept (so the next
//!    push updates instead of creating a second one) and the call is ABORTED
//!    `CONCURRENT_UPDATE`: push again.
//!
//! Every call names an `Idempotency-Key` derived from stable ids: the tenant, the
//! invoice and its version (the contact: the crm contact and its name), so a push
//! repeated after a lost answer gets Xero's first answer instead of a second invoice.
//! Every call waits its turn in the organisation's limiter. When the invoice cannot go
//! (it has no contact, or its crm contact is gone), Xero refuses it (400), limits it
//! past the limiter's retries or cannot be reached, the invoice records `failed` with
//! the reason, committed even though the call fails.

use chrono::Utc;
use rust_decimal::Decimal;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use fusion_db::idempotency::RequestKey;
use fusion_db::resource::{Read, Val};
use fusion_proto::finance::v1 as pb;
use fusion_service::custom::write;
use fusion_tenancy::TenantContext;

use super::{XeroLink, connection, xero_error};
use crate::error::FinanceError;
use crate::store::invoices::{
    AUTHORISED, InvoiceRow, Invoices, LineRow, PAID, SUBMITTED, TABLE, to_pb,
};
use crate::store::settings;
use crate::store::xero::{self as store, CONNECTED};
use crate::xero::XeroSession;
use crate::xero::model::{
    self, ContactRef, InvoiceStatus, InvoiceType, LineAmountTypes, LineItem, NewContact, NewInvoice,
};
use crate::{AppState, DOMAIN};

/// The method whose request ids replay a push.
const METHOD: &str = "SyncInvoiceToXero";

/// `xero_sync_status` after a push Xero took, and after one it did not.
const SYNCED: &str = "synced";
const FAILED: &str = "failed";

/// What Xero holds after a push.
struct Pushed {
    contact_id: Uuid,
    invoice: model::Invoice,
}

/// `SyncInvoiceToXero`: pushes invoice `id` (see the module docs).
pub(crate) async fn sync_invoice(
    state: &AppState,
    caller: &TenantContext,
    key: Option<RequestKey>,
    id: i64,
) -> Result<pb::Invoice, FinanceError> {
    let link = state.xero()?;
    fusion_db::resource::require_id(DOMAIN, "id", id)?;
    let tenant_id = caller.tenant_id;
    let mut tx = state.db.begin(tenant_id).await?;
    if let Some(answer) = state.kit.request_ids.replay(&mut tx, METHOD, key).await? {
        return Ok(answer);
    }
    let invoice: InvoiceRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
    if ![SUBMITTED, AUTHORISED, PAID].contains(&invoice.status.as_str()) {
        return Err(FinanceError::InvoiceStatus {
            id,
            status: invoice.status,
            action: "pushed to Xero",
            allowed: "submitted, authorised or paid",
        });
    }
    let known_contact = match (&invoice.xero_contact_id, invoice.contact_id) {
        (None, Some(contact_id)) => store::known_contact(&mut tx, contact_id).await?,
        _ => None,
    };
    tx.commit().await?;
    if invoice.status == PAID && invoice.xero_invoice_id.is_some() {
        return Ok(to_pb(&state.kit, invoice));
    }
    let session = connection::session(&state.db, link, tenant_id).await?;
    match push(state, link, &session, tenant_id, &invoice, known_contact).await {
        Ok(pushed) => record_success(state, tenant_id, key, &invoice, pushed).await,
        Err(error) => {
            if matches!(
                error,
                FinanceError::Invalid(_)
                    | FinanceError::XeroRejected(_)
                    | FinanceError::XeroRateLimited { .. }
                    | FinanceError::XeroUnavailable(_)
            ) {
                record_failure(state, tenant_id, &invoice, &error).await;
            }
            Err(error)
        }
    }
}

/// After `ApproveInvoice` committed `approved`: pushed when the tenant's
/// `sync_on_approval` is set and Xero is connected. The approval stands whatever the
/// push does; the answer is the invoice as it then is, the push's outcome on its sync
/// fields.
pub(crate) async fn after_approval(
    state: &AppState,
    caller: &TenantContext,
    approved: pb::Invoice,
) -> pb::Invoice {
    if state.xero().is_err() {
        return approved;
    }
    let wanted = async {
        let mut tx = state.db.begin(caller.tenant_id).await?;
        let sync_on_approval = settings::read(&mut tx).await?.sync_on_approval;
        let connected = store::connection(&mut tx, false)
            .await?
            .is_some_and(|c| c.status == CONNECTED);
        tx.commit().await?;
        Ok::<_, FinanceError>(sync_on_approval && connected)
    };
    match wanted.await {
        Ok(true) => {}
        Ok(false) => return approved,
        Err(error) => {
            tracing::warn!(invoice_id = approved.id, %error, "could not tell whether to push the approved invoice to Xero");
            return approved;
        }
    }
    match sync_invoice(state, caller, None, approved.id).await {
        Ok(pushed) => pushed,
        Err(error) => {
            tracing::warn!(invoice_id = approved.id, %error, "the approved invoice was not pushed to Xero");
            let now = async {
                let mut tx = state.db.begin(caller.tenant_id).await?;
                let row: InvoiceRow = TABLE.fetch(&mut tx, approved.id, Read::live()).await?;
                tx.commit().await?;
                Ok::<_, FinanceError>(to_pb(&state.kit, row))
            };
            now.await.unwrap_or(approved)
        }
    }
}

/// The contact, then the invoice, in Xero.
async fn push(
    state: &AppState,
    link: &XeroLink,
    session: &XeroSession,
    tenant_id: i64,
    invoice: &InvoiceRow,
    known_contact: Option<String>,
) -> Result<Pushed, FinanceError> {
    let contact_id = match invoice.xero_contact_id.clone().or(known_contact) {
        Some(id) => Uuid::parse_str(&id)
            .map_err(|_| FinanceError::Internal("a stored Xero contact id is not a UUID"))?,
        None => {
            let crm_id = invoice.contact_id.ok_or_else(|| {
                FinanceError::invalid(
                    "id",
                    format!(
                        "invoice {} has no contact_id; Xero needs a contact: set one, then push",
                        invoice.id
                    ),
                )
            })?;
            let contact = state.refs.contact("invoice.contact_id", crm_id).await?;
            let name = format!("{} {}", contact.first_name.trim(), contact.last_name.trim());
            let new = NewContact {
                name: name.trim().to_owned(),
                email_address: Some(contact.email.trim().to_owned()).filter(|e| !e.is_empty()),
            };
            let key = contact_key(tenant_id, crm_id, &new);
            link.client
                .ensure_contact(session, &new, &key)
                .await
                .map_err(xero_error)?
                .contact_id
        }
    };
    let body = xero_invoice(link, invoice, contact_id)?;
    let key = invoice_key(tenant_id, invoice);
    let pushed = match invoice.xero_invoice_id.as_deref() {
        None => link.client.create_invoice(session, &body, &key).await,
        Some(xero_id) => {
            let xero_id = Uuid::parse_str(xero_id)
                .map_err(|_| FinanceError::Internal("a stored Xero invoice id is not a UUID"))?;
            link.client
                .update_invoice(session, xero_id, &body, &key)
                .await
        }
    }
    .map_err(xero_error)?;
    Ok(Pushed {
        contact_id,
        invoice: pushed,
    })
}

/// The Idempotency-Key of pushing `invoice` at its version: the same push repeated
/// gets Xero's first answer; a push after any change (including the outcome of the
/// last push) is a new one.
fn invoice_key(tenant_id: i64, invoice: &InvoiceRow) -> String {
    format!(
        "fusion-finance-{tenant_id}-invoice-{}-v{}",
        invoice.id, invoice.version
    )
}

/// The Idempotency-Key of creating crm contact `contact_id` as `contact`.
fn contact_key(tenant_id: i64, contact_id: i64, contact: &NewContact) -> String {
    let mut digest = Sha256::new();
    digest.update(contact.name.as_bytes());
    digest.update([0]);
    digest.update(
        contact
            .email_address
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    let digest = digest.finalize();
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("fusion-finance-{tenant_id}-contact-{contact_id}-{short}")
}

/// The invoice as Xero takes it.
fn xero_invoice(
    link: &XeroLink,
    invoice: &InvoiceRow,
    contact_id: Uuid,
) -> Result<NewInvoice, FinanceError> {
    let line_items = invoice
        .line_items
        .0
        .iter()
        .map(|line| xero_line(link, line))
        .collect::<Result<_, _>>()?;
    Ok(NewInvoice {
        kind: InvoiceType::Receivable,
        contact: ContactRef { contact_id },
        date: invoice.invoice_date,
        due_date: invoice.due_date,
        line_amount_types: match invoice.line_amount_types.as_str() {
            "inclusive" => LineAmountTypes::Inclusive,
            "no_tax" => LineAmountTypes::NoTax,
            _ => LineAmountTypes::Exclusive,
        },
        line_items,
        invoice_number: Some(invoice.invoice_number.clone()),
        reference: invoice.reference.clone(),
        currency_code: Some(invoice.currency.clone()),
        status: if invoice.status == SUBMITTED {
            InvoiceStatus::Submitted
        } else {
            InvoiceStatus::Authorised
        },
    })
}

/// A stored line as Xero takes it: the amounts are ours.
fn xero_line(link: &XeroLink, line: &LineRow) -> Result<LineItem, FinanceError> {
    let amount = |text: &str| {
        text.parse::<Decimal>()
            .map_err(|_| FinanceError::Internal("a stored line amount is not a decimal"))
    };
    Ok(LineItem {
        line_item_id: line
            .xero_line_item_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok()),
        description: line.description.clone(),
        quantity: amount(&line.quantity)?,
        unit_amount: amount(&line.unit_price)?,
        line_amount: Some(amount(&line.amount)?),
        tax_amount: Some(amount(&line.tax_amount)?),
        account_code: Some(link.account_code.clone()),
        tax_type: None,
    })
}

/// Writes what Xero holds after the push (see the module docs), and answers it.
async fn record_success(
    state: &AppState,
    tenant_id: i64,
    key: Option<RequestKey>,
    read: &InvoiceRow,
    pushed: Pushed,
) -> Result<pb::Invoice, FinanceError> {
    let mut tx = state.db.begin(tenant_id).await?;
    // The same request id, pushed concurrently, finished first.
    if let Some(answer) = state.kit.request_ids.replay(&mut tx, METHOD, key).await? {
        return Ok(answer);
    }
    let current: InvoiceRow = TABLE
        .fetch(&mut tx, read.id, Read::live().for_update())
        .await?;
    let xero_ids = vec![
        (
            "xero_invoice_id",
            Val::Text(Some(pushed.invoice.invoice_id.to_string())),
        ),
        (
            "xero_contact_id",
            Val::Text(Some(pushed.contact_id.to_string())),
        ),
    ];
    if current.version != read.version {
        if current.xero_invoice_id.is_none() {
            TABLE.update(&mut tx, read.id, xero_ids).await?;
        }
        tx.commit().await?;
        return Err(FinanceError::Db(fusion_db::Error::new(
            DOMAIN,
            fusion_db::error::Kind::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: format!(
                    "invoice {} changed while it was pushed to Xero; push it again",
                    read.id
                ),
            },
        )));
    }
    let line_ids: Vec<(i64, String)> = current
        .line_items
        .0
        .iter()
        .zip(&pushed.invoice.line_items)
        .filter_map(|(ours, theirs)| theirs.line_item_id.map(|id| (ours.id, id.to_string())))
        .collect();
    store::set_line_ids(&mut tx, &line_ids).await?;
    let mut values = xero_ids;
    values.extend([
        ("last_synced_at", Val::Timestamp(Some(Utc::now()))),
        ("xero_sync_status", Val::text(SYNCED)),
        ("xero_sync_error", Val::Text(None)),
    ]);
    let row = write::<Invoices>(&mut tx, read.id, values).await?;
    let answer = to_pb(&state.kit, row);
    state
        .kit
        .request_ids
        .remember(&mut tx, METHOD, key, &answer)
        .await?;
    tx.commit().await?;
    Ok(answer)
}

/// Records that the push failed and why, unless the invoice changed meanwhile (the
/// next push then tells). A failure to record is logged: the caller gets Xero's error.
async fn record_failure(state: &AppState, tenant_id: i64, read: &InvoiceRow, error: &FinanceError) {
    let recorded = async {
        let mut tx = state.db.begin(tenant_id).await?;
        let current: InvoiceRow = TABLE
            .fetch(&mut tx, read.id, Read::live().for_update())
            .await?;
        if current.version == read.version {
            TABLE
                .update(
                    &mut tx,
                    read.id,
                    vec![
                        ("xero_sync_status", Val::text(FAILED)),
                        ("xero_sync_error", Val::Text(Some(failure_text(error)))),
                    ],
                )
                .await?;
        }
        tx.commit().await?;
        Ok::<_, FinanceError>(())
    };
    if let Err(record_error) = recorded.await {
        tracing::warn!(invoice_id = read.id, %record_error, %error, "a failed push to Xero could not be recorded");
    }
}

/// What the invoice records of a push that failed: the reason, as the caller reads it.
fn failure_text(error: &FinanceError) -> String {
    match error {
        FinanceError::Invalid(violations) => violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
