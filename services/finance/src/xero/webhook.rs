//! Xero's webhooks: `POST /webhooks/xero`, signed with the app's webhook key.
//!
//! Xero signs the raw body: `x-xero-signature` is the base64 of its HMAC-SHA256 under
//! the key. A request whose signature does not match gets 401, one that does gets 200,
//! both with an empty body; that is also the whole of Xero's "intent to receive" check
//! (payloads without events, some signed badly on purpose). Xero wants its answer
//! within five seconds, so verified events are handed to an [`XeroEventSink`] that
//! queues them; what is lost here is caught by the periodic poll.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

/// Where Xero delivers.
pub const PATH: &str = "/webhooks/xero";

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-xero-signature";

/// A delivery: events, with the sequence numbers Xero gives them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// The events; none in an intent-to-receive check.
    pub events: Vec<WebhookEvent>,
    /// The sequence number of the first event.
    pub first_event_sequence: i64,
    /// The sequence number of the last event.
    pub last_event_sequence: i64,
    /// Random text that makes each signature unpredictable.
    pub entropy: String,
}

/// Something changed in a connected organisation.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The changed record in the Accounting API.
    pub resource_url: String,
    /// Its id (`InvoiceID` for an invoice).
    pub resource_id: Uuid,
    /// When it changed.
    #[serde(with = "super::model::date::instant")]
    pub event_date_utc: DateTime<Utc>,
    /// `CREATE` or `UPDATE`.
    pub event_type: String,
    /// `INVOICE`, `CONTACT`, …
    pub event_category: String,
    /// The organisation (`Xero-tenant-id`).
    pub tenant_id: Uuid,
    /// `ORGANISATION` for an accounting organisation.
    pub tenant_type: String,
}

impl WebhookEvent {
    /// Whether this event is about an invoice.
    pub fn is_invoice(&self) -> bool {
        self.event_category.eq_ignore_ascii_case("INVOICE")
    }
}

/// Takes verified events. It must not wait on Xero or the database: the webhook is
/// answered only after it returns, and Xero gives up on an answer after five seconds.
pub trait XeroEventSink: Send + Sync + 'static {
    /// Queues `events`, all verified and from one delivery.
    fn accept(&self, events: Vec<WebhookEvent>);
}

/// Whether `signature` (as sent in `x-xero-signature`) is the signature of `body` under
/// `key`, compared in constant time.
pub fn signature_is_valid(key: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    expected[..].ct_eq(&given).into()
}

struct Webhook {
    key: Vec<u8>,
    sink: Arc<dyn XeroEventSink>,
}

/// The webhook endpoint at [`PATH`], verifying with `key` and handing events to `sink`.
pub fn router(key: impl Into<Vec<u8>>, sink: Arc<dyn XeroEventSink>) -> Router {
    let webhook = Arc::new(Webhook {
        key: key.into(),
        sink,
    });
    Router::new().route(PATH, post(receive)).with_state(webhook)
}

async fn receive(
    State(webhook): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !signature_is_valid(&webhook.key, &body, signature) {
        return StatusCode::UNAUTHORIZED;
    }
    let payload: WebhookPayload = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!(%error, "a correctly signed Xero webhook that is not a payload");
            return StatusCode::BAD_REQUEST;
        }
    };
    if !payload.events.is_empty() {
        webhook.sink.accept(payload.events);
    }
    StatusCode::OK
}
