//! Xero, the accounting system invoices are pushed to and paid in.
//!
//! - [`config`]: the settings, and which are missing when Xero is off;
//! - [`client`]: the HTTP client (OAuth 2.0, connections, contacts, invoices);
//! - [`limiter`]: Xero's per-organisation limits kept on our side;
//! - [`crypto`]: tokens sealed at rest, bound to their tenant;
//! - [`webhook`]: the signed webhook endpoint;
//! - [`model`]: the typed wire format.

pub mod client;
pub mod config;
pub mod crypto;
pub mod limiter;
pub mod model;
pub mod webhook;

pub use client::{RateLimitProblem, XeroClient, XeroError, XeroTokens};
pub use config::{XeroConfig, XeroCredentials, XeroLimits};
pub use crypto::{CryptoError, TokenCipher};
pub use limiter::XeroLimiter;
pub use model::XeroSession;
pub use webhook::{WebhookEvent, WebhookPayload, XeroEventSink};
