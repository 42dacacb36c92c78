//! Finance's invoices in the tenant's Xero organisation, both ways, on top of the Xero
//! client in [`crate::xero`]:
//!
//! - [`connection`]: connecting a tenant (single-use OAuth states, the code exchange,
//!   the organisation from `GET /connections`), its tokens (sealed at rest, refreshed
//!   under the connection row's lock by one refresher at a time) and disconnecting;
//! - [`push`]: `SyncInvoiceToXero`, and the same push after an approval when the
//!   tenant asks for it;
//! - [`pull`]: the webhook's events and the periodic poll, reconciled into the
//!   invoices (payments made in Xero, invoices voided there).
//!
//! [`XeroLink`] is what the three share; it exists only when Xero is configured, and
//! every Xero method answers FAILED_PRECONDITION `XERO_NOT_CONFIGURED` without it.

pub(crate) mod connection;
pub(crate) mod pull;
pub(crate) mod push;

use anyhow::Context as _;

use crate::error::FinanceError;
use crate::xero::{TokenCipher, XeroClient, XeroConfig, XeroError};

/// The Xero app this deployment is, and the key tokens are sealed with.
#[derive(Debug)]
pub(crate) struct XeroLink {
    /// The HTTP client, with the limiter of every organisation.
    pub client: XeroClient,
    /// Seals and opens tokens, bound to their tenant.
    pub cipher: TokenCipher,
    /// The revenue account of every line pushed.
    pub account_code: String,
}

impl XeroLink {
    /// The link `config` describes; none when Xero's client credentials or the token
    /// key are not set. A configured URL that is not one stops the start.
    pub fn from_config(config: &XeroConfig) -> anyhow::Result<Option<Self>> {
        let (Some(_), Some(cipher)) = (&config.credentials, &config.token_cipher) else {
            return Ok(None);
        };
        let client = XeroClient::new(config).context("the Xero settings")?;
        Ok(Some(Self {
            client,
            cipher: cipher.clone(),
            account_code: config.account_code.clone(),
        }))
    }
}

/// What an answer of Xero's means for our caller.
pub(crate) fn xero_error(error: XeroError) -> FinanceError {
    match error {
        XeroError::NotConfigured(variables) => FinanceError::XeroNotConfigured(variables),
        XeroError::RateLimited { retry_after, .. } => FinanceError::XeroRateLimited { retry_after },
        // The grant is gone (revoked, or the organisation disconnected from the app in
        // Xero): only connecting again helps.
        XeroError::Unauthorized(detail) | XeroError::Forbidden(detail) => {
            tracing::warn!(%detail, "Xero refused the connection's access");
            FinanceError::XeroNotConnected
        }
        XeroError::InvalidGrant => FinanceError::XeroNotConnected,
        XeroError::NotFound(detail) => {
            FinanceError::XeroRejected(format!("not found in Xero: {detail}"))
        }
        XeroError::Invalid(message) => FinanceError::XeroRejected(message),
        XeroError::Unavailable(detail) | XeroError::Unexpected(detail) => {
            FinanceError::XeroUnavailable(detail)
        }
    }
}
