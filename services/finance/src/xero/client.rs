//! The Xero HTTP client: OAuth 2.0 against the identity endpoints, the organisations a
//! user connected, and the Accounting API calls the finance context makes.
//!
//! Every Accounting API call names its organisation (`Xero-tenant-id`) and goes through
//! the [`XeroLimiter`] of that organisation; every call that creates or changes
//! something carries an `Idempotency-Key` the caller derives from a stable id of ours,
//! so that a retry after a lost answer returns the first answer instead of making a
//! second invoice. Answers become a typed [`XeroError`] the service maps to its own
//! errors (`InvalidGrant` means the user must connect again; `RateLimited` that the
//! limiter gave up waiting).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::config::{XeroConfig, XeroCredentials};
use super::limiter::XeroLimiter;
use super::model::{
    Connection, Contact, Contacts, Invoice, Invoices, NewContact, NewInvoice, XeroSession,
};

/// Pages of the Accounting API hold this many records; a shorter page is the last.
const PAGE_SIZE: usize = 100;

/// How long to wait after a 429 that names no `Retry-After` (Xero always sends one):
/// the minute window, the longest but a day.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What went wrong talking to Xero.
#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    /// Xero is not configured; the message names the variables to set.
    #[error("Xero is not configured: set {0}")]
    NotConfigured(String),
    /// A limit was exceeded (and the limiter's attempts ran out).
    #[error("Xero's {problem} limit was exceeded; retry after {retry_after:?}")]
    RateLimited {
        /// Xero's `Retry-After`.
        retry_after: Duration,
        /// Which limit, from `X-Rate-Limit-Problem`.
        problem: RateLimitProblem,
    },
    /// The access token was refused (expired or revoked): refresh it.
    #[error("Xero refused the access token: {0}")]
    Unauthorized(String),
    /// The organisation is not connected to this token (`AuthenticationUnsuccessful`):
    /// the user disconnected it, or lost access to it.
    #[error("Xero refused access to the organisation: {0}")]
    Forbidden(String),
    /// The authorization code or refresh token is not (or no longer) valid: the user
    /// must connect again.
    #[error("Xero refused the grant (code or refresh token used, expired or revoked)")]
    InvalidGrant,
    /// The record does not exist in that organisation.
    #[error("not found in Xero: {0}")]
    NotFound(String),
    /// Xero refused the request as invalid; the message is Xero's validation errors.
    #[error("Xero refused the request: {0}")]
    Invalid(String),
    /// Xero could not be reached or failed (timeouts, 5xx).
    #[error("Xero is unavailable: {0}")]
    Unavailable(String),
    /// Xero answered something this client does not understand.
    #[error("unexpected answer from Xero: {0}")]
    Unexpected(String),
}

/// Which of Xero's limits a 429 was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitProblem {
    /// Calls in progress at once.
    Concurrent,
    /// Calls per minute for the organisation.
    Minute,
    /// Calls per day for the organisation.
    Day,
    /// Calls per minute for the whole app, every organisation together.
    AppMinute,
    /// Xero did not say.
    Unstated,
}

impl std::fmt::Display for RateLimitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Concurrent => "concurrent",
            Self::Minute => "minute",
            Self::Day => "day",
            Self::AppMinute => "app minute",
            Self::Unstated => "rate",
        })
    }
}

impl RateLimitProblem {
    fn from_header(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("concurrent") => Self::Concurrent,
            Some("minute") => Self::Minute,
            Some("day") => Self::Day,
            Some("appminute") => Self::AppMinute,
            _ => Self::Unstated,
        }
    }
}

/// The tokens of one connection.
#[derive(Clone)]
pub struct XeroTokens {
    /// Sent as the bearer on every call, until `expires_at`.
    pub access_token: String,
    /// Exchanged once for the next tokens: Xero's refresh tokens are single use, so the
    /// new one must be stored before this one is forgotten.
    pub refresh_token: String,
    /// When Xero stops accepting the access token (Xero gives 30 minutes).
    pub expires_at: DateTime<Utc>,
    /// The scopes granted.
    pub scope: Option<String>,
}

impl std::fmt::Debug for XeroTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XeroTokens")
            .field("access_token", &"<hidden>")
            .field("refresh_token", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    #[serde(default)]
    scope: Option<String>,
}

/// The token endpoint's refusal.
#[derive(Deserialize)]
struct TokenError {
    error: String,
}

/// Xero's problem answer (401, 403 and some 404s).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// The Accounting API's validation answer (400).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValidationProblem {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    elements: Vec<ValidationElement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValidationElement {
    #[serde(default)]
    validation_errors: Vec<ValidationMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValidationMessage {
    message: String,
}

/// A client of one Xero app, shared by every tenant (its limiter keeps each Xero
/// organisation apart). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct XeroClient {
    http: reqwest::Client,
    api_url: Url,
    token_url: Url,
    authorize_url: Url,
    scopes: String,
    credentials: XeroCredentials,
    limiter: XeroLimiter,
}

impl XeroClient {
    /// A client for the app in `config`, or [`XeroError::NotConfigured`] naming the
    /// variables to set.
    pub fn new(config: &XeroConfig) -> Result<Self, XeroError> {
        let credentials = config
            .credentials
            .clone()
            .ok_or_else(|| XeroError::NotConfigured(config.missing_variables().join(", ")))?;
        let url = |name: &str, text: String| {
            Url::parse(&text)
                .map_err(|e| XeroError::NotConfigured(format!("{name} to a URL ({text:?}: {e})")))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("fusion-finance/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XeroError::Unavailable(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            api_url: url("FINANCE_XERO_API_URL", format!("{}/", config.api_url))?,
            token_url: url(
                "FINANCE_XERO_IDENTITY_URL",
                format!("{}/connect/token", config.identity_url),
            )?,
            authorize_url: url("FINANCE_XERO_AUTHORIZE_URL", config.authorize_url.clone())?,
            scopes: config.scopes.clone(),
            credentials,
            limiter: XeroLimiter::new(config.limits),
        })
    }

    /// Where to send a user to connect an organisation; Xero sends them back to the
    /// redirect URI with a code and this `state`, which the caller issued and will
    /// accept once.
    pub fn authorize_url(&self, state: &str) -> String {
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("redirect_uri", &self.credentials.redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", state);
        url.into()
    }

    /// The tokens for the authorization `code` Xero sent back (single use).
    pub async fn exchange_code(&self, code: &str) -> Result<XeroTokens, XeroError> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.credentials.redirect_uri),
        ])
        .await
    }

    /// New tokens for `refresh_token`, which Xero then refuses for good: store the new
    /// refresh token before anything else.
    pub async fn refresh(&self, refresh_token: &str) -> Result<XeroTokens, XeroError> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<XeroTokens, XeroError> {
        let response = self
            .http
            .post(self.token_url.clone())
            .basic_auth(
                &self.credentials.client_id,
                Some(&self.credentials.client_secret),
            )
            .form(form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let error = serde_json::from_str::<TokenError>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            return Err(match (status, error.as_str()) {
                (_, "invalid_grant") => XeroError::InvalidGrant,
                (StatusCode::UNAUTHORIZED, _) => XeroError::Unauthorized(error),
                (s, _) if s.is_client_error() => XeroError::Invalid(error),
                (s, _) => XeroError::Unavailable(format!("{s}: {error}")),
            });
        }
        let issued_at = Utc::now();
        let tokens: TokenResponse = parse(response).await?;
        Ok(XeroTokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: issued_at + chrono::Duration::seconds(tokens.expires_in),
            scope: tokens.scope,
        })
    }

    /// The organisations the user behind `access_token` connected to this app.
    pub async fn connections(&self, access_token: &str) -> Result<Vec<Connection>, XeroError> {
        let response = self
            .http
            .get(self.api("connections"))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(unreachable)?;
        parse(check(response).await?).await
    }

    /// Disconnects one organisation (`Connection::id`) from this app.
    pub async fn disconnect(
        &self,
        access_token: &str,
        connection_id: Uuid,
    ) -> Result<(), XeroError> {
        let response = self
            .http
            .delete(self.api(&format!("connections/{connection_id}")))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(unreachable)?;
        check(response).await.map(drop)
    }

    /// The contact named `contact.name`, created (with `idempotency_key`, derived from
    /// the stable id of our customer) when the organisation has none by that name yet.
    pub async fn ensure_contact(
        &self,
        session: &XeroSession,
        contact: &NewContact,
        idempotency_key: &str,
    ) -> Result<Contact, XeroError> {
        let found: Contacts<Contact> = self
            .accounting(session, || {
                self.http
                    .get(self.accounting_url("Contacts"))
                    .query(&[("searchTerm", contact.name.as_str()), ("page", "1")])
            })
            .await?;
        // The search matches parts of names and e-mail addresses; Xero's uniqueness is
        // on the whole name, ignoring case.
        if let Some(existing) = found.contacts.into_iter().find(|c| {
            c.name
                .as_deref()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(contact.name.trim()))
        }) {
            return Ok(existing);
        }
        let body = Contacts {
            contacts: vec![contact],
        };
        let created: Contacts<Contact> = self
            .accounting(session, || {
                self.http
                    .put(self.accounting_url("Contacts"))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        single(created.contacts, "contact")
    }

    /// Creates `invoice`; `idempotency_key` (derived from our invoice's stable id) makes
    /// a retry return the invoice the first attempt created.
    pub async fn create_invoice(
        &self,
        session: &XeroSession,
        invoice: &NewInvoice,
        idempotency_key: &str,
    ) -> Result<Invoice, XeroError> {
        let body = Invoices {
            invoices: vec![invoice],
        };
        let created: Invoices<Invoice> = self
            .accounting(session, || {
                self.http
                    .put(self.accounting_url("Invoices"))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        single(created.invoices, "invoice")
    }

    /// Changes invoice `invoice_id` to `invoice` (lines with a `line_item_id` are
    /// changed in place, lines without are added, lines left out are removed).
    pub async fn update_invoice(
        &self,
        session: &XeroSession,
        invoice_id: Uuid,
        invoice: &NewInvoice,
        idempotency_key: &str,
    ) -> Result<Invoice, XeroError> {
        let body = Invoices {
            invoices: vec![invoice],
        };
        let updated: Invoices<Invoice> = self
            .accounting(session, || {
                self.http
                    .post(self.accounting_url(&format!("Invoices/{invoice_id}")))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        single(updated.invoices, "invoice")
    }

    /// Invoice `invoice_id`, with its payments.
    pub async fn get_invoice(
        &self,
        session: &XeroSession,
        invoice_id: Uuid,
    ) -> Result<Invoice, XeroError> {
        let found: Invoices<Invoice> = self
            .accounting(session, || {
                self.http
                    .get(self.accounting_url(&format!("Invoices/{invoice_id}")))
            })
            .await?;
        single(found.invoices, "invoice")
    }

    /// Every invoice changed at or after `since`, page by page. `If-Modified-Since` is
    /// sent to the second, rounded down, so nothing changed within that second is
    /// missed (a few may come twice).
    pub async fn invoices_modified_since(
        &self,
        session: &XeroSession,
        since: DateTime<Utc>,
    ) -> Result<Vec<Invoice>, XeroError> {
        let since = since.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut all = Vec::new();
        for page in 1.. {
            let page = page.to_string();
            let found: Invoices<Invoice> = self
                .accounting(session, || {
                    self.http
                        .get(self.accounting_url("Invoices"))
                        .header("If-Modified-Since", &since)
                        .query(&[("page", page.as_str())])
                })
                .await?;
            let last = found.invoices.len() < PAGE_SIZE;
            all.extend(found.invoices);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// One Accounting API call for `session`'s organisation, through its limiter.
    /// `request` builds the call afresh for each attempt.
    async fn accounting<T: DeserializeOwned>(
        &self,
        session: &XeroSession,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<T, XeroError> {
        self.limiter
            .run(session.tenant_id, || async {
                let response = request()
                    .bearer_auth(&session.access_token)
                    .header("Xero-tenant-id", session.tenant_id.to_string())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(unreachable)?;
                parse(check(response).await?).await
            })
            .await
    }

    fn api(&self, path: &str) -> Url {
        self.api_url
            .join(path)
            .expect("our paths join any base URL")
    }

    fn accounting_url(&self, path: &str) -> Url {
        self.api(&format!("api.xro/2.0/{path}"))
    }
}

/// The one record of an answer that holds exactly one.
fn single<T>(records: Vec<T>, what: &str) -> Result<T, XeroError> {
    let count = records.len();
    let mut records = records.into_iter();
    match (records.next(), count) {
        (Some(record), 1) => Ok(record),
        _ => Err(XeroError::Unexpected(format!(
            "{count} {what}s where one was expected"
        ))),
    }
}

fn unreachable(error: reqwest::Error) -> XeroError {
    XeroError::Unavailable(error.to_string())
}

/// `response` if it succeeded, else the error its status and body say.
async fn check(response: Response) -> Result<Response, XeroError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("Retry-After")
            .and_then(|v| v.trim().parse().ok())
            .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
        return Err(XeroError::RateLimited {
            retry_after,
            problem: RateLimitProblem::from_header(header("X-Rate-Limit-Problem").as_deref()),
        });
    }
    let text = response.text().await.unwrap_or_default();
    let problem = || {
        serde_json::from_str::<Problem>(&text)
            .ok()
            .and_then(|p| p.detail.or(p.title))
            .unwrap_or_else(|| text.clone())
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => XeroError::Unauthorized(problem()),
        StatusCode::FORBIDDEN => XeroError::Forbidden(problem()),
        StatusCode::NOT_FOUND => XeroError::NotFound(problem()),
        StatusCode::BAD_REQUEST => XeroError::Invalid(validation_messages(&text)),
        s if s.is_server_error() => XeroError::Unavailable(format!("{s}: {text}")),
        s => XeroError::Unexpected(format!("{s}: {text}")),
    })
}

/// The validation messages of a 400, joined; the body itself when it has none.
fn validation_messages(text: &str) -> String {
    let Ok(problem) = serde_json::from_str::<ValidationProblem>(text) else {
        return text.to_owned();
    };
    let messages: Vec<String> = problem
        .elements
        .into_iter()
        .flat_map(|e| e.validation_errors)
        .map(|m| m.message)
        .collect();
    if messages.is_empty() {
        problem.message.unwrap_or_else(|| text.to_owned())
    } else {
        messages.join("; ")
    }
}

/// A successful answer's body as `T`.
async fn parse<T: DeserializeOwned>(response: Response) -> Result<T, XeroError> {
    let bytes = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&bytes).map_err(|e| XeroError::Unexpected(e.to_string()))
}
