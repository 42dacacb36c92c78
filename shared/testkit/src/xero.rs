//! A fake Xero for tests: the identity endpoints and the Accounting API on one loopback
//! URL, keeping the documented rules so that a client that breaks one is refused here
//! as Xero would refuse it.
//!
//! What it enforces:
//! - the app's client credentials (HTTP Basic) at the token endpoint;
//! - authorization codes used once, and only with the redirect URI they were issued for;
//! - access tokens that expire ([`FakeXeroOptions::access_token_lifetime`], which a
//!   test may change as it goes with [`FakeXero::set_access_token_lifetime`]);
//! - refresh tokens used once (a second use is `400 invalid_grant`);
//! - a `Xero-tenant-id` naming an organisation connected to the token (else `403`);
//! - `Idempotency-Key`: the same key for the same organisation replays the first
//!   answer without doing anything again;
//! - the limits per organisation ([`FakeLimits`]: in progress, per rolling minute, per
//!   rolling day), past which it answers `429` with `Retry-After` (seconds) and
//!   `X-Rate-Limit-Problem` (`concurrent`, `minute`, `day`);
//! - unique contact names and invoice numbers per organisation.
//!
//! It computes only what a client reads back: line and invoice totals from the amounts
//! sent, what is paid and due. Dates go out in Xero's `/Date(ms+0000)/` form. A test
//! plays the user and the organisation's bookkeeper through [`FakeXero::consent`],
//! [`FakeXero::pay_invoice`], [`FakeXero::void_invoice`] and [`FakeXero::send_webhook`],
//! and reads what happened in [`FakeXero::stats`].

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

/// Records per page of a paged list, as Xero.
const PAGE_SIZE: usize = 100;

/// Xero's longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The limits the fake keeps per organisation; Xero's by default.
#[derive(Clone, Copy, Debug)]
pub struct FakeLimits {
    /// Calls in progress at once.
    pub concurrent: usize,
    /// Calls accepted within any `minute`.
    pub per_minute: usize,
    /// Calls accepted within any `day`.
    pub per_day: usize,
    /// The length of the short window.
    pub minute: Duration,
    /// The length of the long window.
    pub day: Duration,
}

impl Default for FakeLimits {
    fn default() -> Self {
        Self {
            concurrent: 5,
            per_minute: 60,
            per_day: 5_000,
            minute: Duration::from_secs(60),
            day: Duration::from_secs(24 * 3600),
        }
    }
}

/// How the fake is set up.
#[derive(Clone, Debug)]
pub struct FakeXeroOptions {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The one redirect URI registered for the app.
    pub redirect_uri: String,
    /// How long an access token is accepted (Xero: 30 minutes).
    pub access_token_lifetime: Duration,
    /// The limits per organisation.
    pub limits: FakeLimits,
    /// How long each Accounting API call takes to answer once admitted.
    pub latency: Duration,
}

impl Default for FakeXeroOptions {
    fn default() -> Self {
        Self {
            client_id: "fake-client-id".into(),
            client_secret: "fake-client-secret".into(),
            redirect_uri: "https://fusion.test/xero/callback".into(),
            access_token_lifetime: Duration::from_secs(1800),
            limits: FakeLimits::default(),
            latency: Duration::ZERO,
        }
    }
}

/// What the fake saw, for tests and benchmarks to check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeXeroStats {
    /// Requests received at any endpoint.
    pub requests: u64,
    /// Accounting API calls admitted within the limits.
    pub admitted: u64,
    /// Answers `429`, whatever the limit.
    pub rate_limited: u64,
    /// Answers replayed for a known `Idempotency-Key`.
    pub replayed: u64,
    /// Refresh tokens exchanged for new tokens.
    pub tokens_refreshed: u64,
    /// Contacts created.
    pub contacts_created: u64,
    /// Invoices created.
    pub invoices_created: u64,
    /// The most calls one organisation had admitted within one rolling minute.
    pub peak_per_minute: usize,
    /// The most calls one organisation had in progress at once.
    pub peak_concurrent: usize,
}

/// What the user's consent sends back to the redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    /// The authorization code, for the token endpoint, once.
    pub code: String,
    /// The `state` of the authorize URL, echoed.
    pub state: String,
    /// The organisation connected.
    pub tenant_id: Uuid,
}

/// A fake Xero serving on `127.0.0.1`; it stops when dropped.
#[derive(Debug)]
pub struct FakeXero {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeXero {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug)]
struct Shared {
    options: FakeXeroOptions,
    url: String,
    state: Mutex<Xero>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Xero> {
        self.state
            .lock()
            .expect("the fake's lock is never poisoned")
    }
}

#[derive(Debug, Default)]
struct Xero {
    organisations: HashMap<Uuid, Organisation>,
    grants: HashMap<Uuid, Grant>,
    codes: HashMap<String, Code>,
    access_tokens: HashMap<String, AccessToken>,
    /// Refresh tokens, each `true` once used.
    refresh_tokens: HashMap<String, (Uuid, bool)>,
    stats: FakeXeroStats,
    event_sequence: i64,
    /// How long the access tokens issued from now on are accepted; the options' until a
    /// test changes it.
    access_token_lifetime: Option<Duration>,
}

/// One user's consent: the organisations it connected, by connection id.
#[derive(Debug, Default)]
struct Grant {
    connections: Vec<(Uuid, Uuid)>,
    offline_access: bool,
}

#[derive(Debug)]
struct Code {
    grant: Uuid,
    redirect_uri: String,
}

#[derive(Debug)]
struct AccessToken {
    grant: Uuid,
    expires: Instant,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Organisation {
    name: String,
    contacts: Vec<Value>,
    invoices: Vec<Value>,
    replies: HashMap<String, Reply>,
    in_progress: usize,
    minute: VecDeque<Instant>,
    day: VecDeque<Instant>,
}

impl Organisation {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            contacts: Vec::new(),
            invoices: Vec::new(),
            replies: HashMap::new(),
            in_progress: 0,
            minute: VecDeque::new(),
            day: VecDeque::new(),
        }
    }

    fn invoice_mut(&mut self, id: Uuid) -> Option<&mut Value> {
        self.invoices
            .iter_mut()
            .find(|i| i["InvoiceID"] == json!(id))
    }
}

/// An answer (JSON, and any headers beside), as kept for replay.
#[derive(Clone, Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Reply {
    fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            self.body.to_string(),
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

impl FakeXero {
    /// Starts a fake on a free loopback port.
    pub async fn start(options: FakeXeroOptions) -> Self {
        let listener = crate::bind_ephemeral().await;
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            options,
            url: format!("http://{addr}"),
            state: Mutex::new(Xero::default()),
        });
        let app = Router::new()
            .route("/connect/token", post(token))
            .route("/connections", get(connections))
            .route("/connections/{id}", delete(disconnect))
            .route("/api.xro/2.0/{*path}", any(accounting))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake Xero serves until dropped");
        });
        Self { shared, server }
    }

    /// The base URL of both the identity endpoints and the API.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Where a client should send users to consent (the fake serves no page there:
    /// [`FakeXero::consent`] plays the user).
    pub fn authorize_url(&self) -> String {
        format!("{}/identity/connect/authorize", self.shared.url)
    }

    /// The user opens `authorize_url`, signs in and connects `organisation` (created on
    /// first use): the code and state Xero would send back to the redirect URI. Refused
    /// as Xero's consent page refuses: a wrong client id, an unregistered redirect URI,
    /// another response type, no state.
    pub fn consent(&self, authorize_url: &str, organisation: &str) -> Result<Consent, String> {
        let url = reqwest::Url::parse(authorize_url).map_err(|e| e.to_string())?;
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
        let options = &self.shared.options;
        if param("response_type") != "code" {
            return Err("unsupported response_type".into());
        }
        if param("client_id") != options.client_id {
            return Err("unauthorized_client".into());
        }
        if param("redirect_uri") != options.redirect_uri {
            return Err("invalid redirect_uri".into());
        }
        if param("state").is_empty() {
            return Err("a state is expected".into());
        }
        let scopes: Vec<&str> = param("scope").split_whitespace().collect();
        if scopes.is_empty() {
            return Err("invalid_scope".into());
        }
        let mut xero = self.shared.lock();
        let tenant_id = xero.organisation_named(organisation);
        let grant = Uuid::new_v4();
        xero.grants.insert(
            grant,
            Grant {
                connections: vec![(Uuid::new_v4(), tenant_id)],
                offline_access: scopes.contains(&"offline_access"),
            },
        );
        let code = secret();
        xero.codes.insert(
            code.clone(),
            Code {
                grant,
                redirect_uri: options.redirect_uri.clone(),
            },
        );
        Ok(Consent {
            code,
            state: param("state").to_owned(),
            tenant_id,
        })
    }

    /// Invoice `invoice_id` of organisation `tenant_id` as the API shows it.
    pub fn invoice(&self, tenant_id: Uuid, invoice_id: Uuid) -> Option<Value> {
        let mut xero = self.shared.lock();
        xero.organisations
            .get_mut(&tenant_id)?
            .invoice_mut(invoice_id)
            .map(|i| i.clone())
    }

    /// The bookkeeper records a payment of `amount` against an authorised invoice:
    /// the invoice shows it, owes that much less, and is `PAID` once nothing is due.
    pub fn pay_invoice(
        &self,
        tenant_id: Uuid,
        invoice_id: Uuid,
        amount: Decimal,
    ) -> Result<Value, String> {
        let mut xero = self.shared.lock();
        let invoice = xero
            .organisations
            .get_mut(&tenant_id)
            .and_then(|o| o.invoice_mut(invoice_id))
            .ok_or("no such invoice")?;
        if invoice["Status"] != "AUTHORISED" {
            return Err(format!("a {} invoice takes no payment", invoice["Status"]));
        }
        let paid = decimal(&invoice["AmountPaid"]).unwrap_or_default() + amount;
        let total = decimal(&invoice["Total"]).unwrap_or_default();
        if paid > total {
            return Err("the payment exceeds what is due".into());
        }
        let now = Utc::now();
        let payments = invoice["Payments"]
            .as_array_mut()
            .ok_or("an invoice always has payments")?;
        payments.push(json!({
            "PaymentID": Uuid::new_v4(),
            "Date": xero_date(now),
            "Amount": number(amount),
            "Reference": "",
        }));
        invoice["AmountPaid"] = number(paid);
        invoice["AmountDue"] = number(total - paid);
        if paid == total {
            invoice["Status"] = json!("PAID");
            invoice["FullyPaidOnDate"] = xero_date(now);
        }
        invoice["UpdatedDateUTC"] = xero_date(now);
        Ok(invoice.clone())
    }

    /// The bookkeeper voids an authorised invoice with no payment in Xero.
    pub fn void_invoice(&self, tenant_id: Uuid, invoice_id: Uuid) -> Result<Value, String> {
        let mut xero = self.shared.lock();
        let invoice = xero
            .organisations
            .get_mut(&tenant_id)
            .and_then(|o| o.invoice_mut(invoice_id))
            .ok_or("no such invoice")?;
        if invoice["Status"] != "AUTHORISED" {
            return Err(format!("a {} invoice cannot be voided", invoice["Status"]));
        }
        if decimal(&invoice["AmountPaid"]).unwrap_or_default() > Decimal::ZERO {
            return Err("an invoice with payments cannot be voided".into());
        }
        invoice["Status"] = json!("VOIDED");
        invoice["AmountDue"] = json!(0.0);
        invoice["UpdatedDateUTC"] = xero_date(Utc::now());
        Ok(invoice.clone())
    }

    /// Access tokens issued from now on are accepted for `lifetime` (those issued
    /// before keep theirs).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().access_token_lifetime = Some(lifetime);
    }

    /// The webhook event Xero sends when invoice `invoice_id` changes.
    pub fn invoice_event(&self, tenant_id: Uuid, invoice_id: Uuid) -> Value {
        json!({
            "resourceUrl": format!("{}/api.xro/2.0/Invoices/{invoice_id}", self.shared.url),
            "resourceId": invoice_id,
            "eventDateUtc": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            "eventType": "UPDATE",
            "eventCategory": "INVOICE",
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
        })
    }

    /// Delivers `events` to `url` as Xero does, signed with `key` (an empty list is the
    /// intent-to-receive check): the status and body of the answer.
    pub async fn send_webhook(&self, url: &str, key: &str, events: Vec<Value>) -> (u16, String) {
        let first = {
            let mut xero = self.shared.lock();
            let first = xero.event_sequence + 1;
            xero.event_sequence += events.len() as i64;
            first
        };
        let (first, last) = if events.is_empty() {
            (0, 0)
        } else {
            (first, first + events.len() as i64 - 1)
        };
        let body = json!({
            "events": events,
            "firstEventSequence": first,
            "lastEventSequence": last,
            "entropy": secret(),
        })
        .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(body.as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let response = reqwest::Client::new()
            .post(url)
            .header("x-xero-signature", signature)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("the webhook endpoint answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// What the fake saw so far.
    pub fn stats(&self) -> FakeXeroStats {
        self.shared.lock().stats
    }
}

impl Xero {
    fn organisation_named(&mut self, name: &str) -> Uuid {
        if let Some((&id, _)) = self.organisations.iter().find(|(_, o)| o.name == name) {
            return id;
        }
        let id = Uuid::new_v4();
        self.organisations.insert(id, Organisation::new(name));
        id
    }

    fn issue_tokens(&mut self, grant: Uuid, lifetime: Duration) -> Value {
        let access_token = secret();
        let expires_at = Utc::now() + lifetime;
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                grant,
                expires: Instant::now() + lifetime,
                expires_at,
            },
        );
        let mut answer = json!({
            "access_token": access_token,
            "expires_in": lifetime.as_secs(),
            "token_type": "Bearer",
            "scope": "accounting.transactions accounting.contacts",
        });
        if self.grants.get(&grant).is_some_and(|g| g.offline_access) {
            let refresh_token = secret();
            self.refresh_tokens
                .insert(refresh_token.clone(), (grant, false));
            answer["refresh_token"] = json!(refresh_token);
        }
        answer
    }

    /// The grant behind the bearer token of `headers`, or the 401 Xero answers.
    fn bearer(&self, headers: &HeaderMap) -> Result<Uuid, Reply> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
        let token = self
            .access_tokens
            .get(token)
            .ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
        if Instant::now() >= token.expires {
            return Err(unauthorized(&format!(
                "TokenExpired: token expired at {}",
                token.expires_at.format("%m/%d/%Y %H:%M:%S")
            )));
        }
        Ok(token.grant)
    }
}

/// A random token or code.
fn secret() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Reply {
    Reply::new(
        status,
        json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": Uuid::new_v4(),
        }),
    )
}

fn unauthorized(detail: &str) -> Reply {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

fn validation(messages: &[String]) -> Reply {
    Reply::new(
        StatusCode::BAD_REQUEST,
        json!({
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [{
                "ValidationErrors": messages.iter().map(|m| json!({ "Message": m })).collect::<Vec<_>>(),
            }],
        }),
    )
}

fn token_error(error: &str) -> Reply {
    Reply::new(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

/// `/Date(ms+0000)/`, as the Accounting API writes dates.
fn xero_date(at: DateTime<Utc>) -> Value {
    json!(format!("/Date({}+0000)/", at.timestamp_millis()))
}

/// The instant a date the API wrote (or a client sent) names.
fn read_date(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
    {
        let millis = inner.split(['+', '-']).next()?;
        return DateTime::from_timestamp_millis(millis.parse().ok()?);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|at| at.and_utc())
}

fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

fn number(amount: Decimal) -> Value {
    json!(
        amount
            .to_string()
            .parse::<f64>()
            .expect("a decimal reads as a float")
    )
}

/// `POST /connect/token`.
async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let options = &shared.options;
    let mut xero = shared.lock();
    xero.stats.requests += 1;
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", options.client_id, options.client_secret))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return token_error("invalid_client").into_response();
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let grant = match field("grant_type") {
        "authorization_code" => match xero.codes.remove(field("code")) {
            Some(code) if code.redirect_uri == field("redirect_uri") => code.grant,
            _ => return token_error("invalid_grant").into_response(),
        },
        "refresh_token" => match xero.refresh_tokens.get_mut(field("refresh_token")) {
            Some((grant, used)) if !*used => {
                *used = true;
                let grant = *grant;
                xero.stats.tokens_refreshed += 1;
                grant
            }
            _ => return token_error("invalid_grant").into_response(),
        },
        _ => return token_error("unsupported_grant_type").into_response(),
    };
    let lifetime = xero
        .access_token_lifetime
        .unwrap_or(options.access_token_lifetime);
    Reply::new(StatusCode::OK, xero.issue_tokens(grant, lifetime)).into_response()
}

/// `GET /connections`.
async fn connections(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut xero = shared.lock();
    xero.stats.requests += 1;
    let grant = match xero.bearer(&headers) {
        Ok(grant) => grant,
        Err(refused) => return refused.into_response(),
    };
    let list: Vec<Value> = xero.grants[&grant]
        .connections
        .iter()
        .map(|(id, tenant_id)| {
            json!({
                "id": id,
                "authEventId": grant,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": xero.organisations[tenant_id].name,
                "createdDateUtc": Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                "updatedDateUtc": Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            })
        })
        .collect();
    Reply::new(StatusCode::OK, json!(list)).into_response()
}

/// `DELETE /connections/{id}`.
async fn disconnect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Response {
    let mut xero = shared.lock();
    xero.stats.requests += 1;
    let grant = match xero.bearer(&headers) {
        Ok(grant) => grant,
        Err(refused) => return refused.into_response(),
    };
    let connections = &mut xero
        .grants
        .get_mut(&grant)
        .expect("a token's grant exists")
        .connections;
    let before = connections.len();
    connections.retain(|(connection, _)| *connection != id);
    if connections.len() == before {
        return problem(StatusCode::NOT_FOUND, "Not Found", "no such connection").into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A call admitted within its organisation's limits; it is in progress until dropped.
struct Admitted {
    shared: Arc<Shared>,
    tenant_id: Uuid,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(org) = self.shared.lock().organisations.get_mut(&self.tenant_id) {
            org.in_progress -= 1;
        }
    }
}

/// The organisation a call is for, if its token may call it, within its limits.
fn admit(shared: &Arc<Shared>, headers: &HeaderMap) -> Result<Admitted, Reply> {
    let limits = shared.options.limits;
    let mut xero = shared.lock();
    xero.stats.requests += 1;
    let grant = xero.bearer(headers)?;
    let tenant_id = headers
        .get("xero-tenant-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .filter(|tenant| {
            xero.grants[&grant]
                .connections
                .iter()
                .any(|(_, t)| t == tenant)
        })
        .ok_or_else(|| {
            problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "AuthenticationUnsuccessful",
            )
        })?;
    let now = Instant::now();
    let org = xero
        .organisations
        .get_mut(&tenant_id)
        .expect("a connected organisation exists");
    for (window, length) in [(&mut org.minute, limits.minute), (&mut org.day, limits.day)] {
        while window.front().is_some_and(|&at| at + length <= now) {
            window.pop_front();
        }
    }
    let refusal = if org.in_progress >= limits.concurrent {
        Some(("concurrent", Duration::from_secs(1)))
    } else if org.minute.len() >= limits.per_minute {
        Some(("minute", org.minute[0] + limits.minute - now))
    } else if org.day.len() >= limits.per_day {
        Some(("day", org.day[0] + limits.day - now))
    } else {
        None
    };
    if let Some((problem, wait)) = refusal {
        xero.stats.rate_limited += 1;
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err(Reply::new(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "Title": "Too Many Requests", "Status": 429, "Detail": "Rate limit exceeded" }),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
        .with_header(
            header::HeaderName::from_static("x-rate-limit-problem"),
            HeaderValue::from_static(problem),
        ));
    }
    org.in_progress += 1;
    org.minute.push_back(now);
    org.day.push_back(now);
    let (in_progress, in_minute) = (org.in_progress, org.minute.len());
    let stats = &mut xero.stats;
    stats.admitted += 1;
    stats.peak_concurrent = stats.peak_concurrent.max(in_progress);
    stats.peak_per_minute = stats.peak_per_minute.max(in_minute);
    Ok(Admitted {
        shared: shared.clone(),
        tenant_id,
    })
}

/// Every Accounting API call: admitted (token, organisation, limits), then answered
/// after the fake's latency, or replayed for a known `Idempotency-Key`.
async fn accounting(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admitted = match admit(&shared, &headers) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    tokio::time::sleep(shared.options.latency).await;
    // Xero keeps keys for the calls that change something.
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|_| method != Method::GET)
        .map(str::to_owned);
    let mut xero = shared.lock();
    let Xero {
        organisations,
        stats,
        ..
    } = &mut *xero;
    let org = organisations
        .get_mut(&admitted.tenant_id)
        .expect("an admitted organisation exists");
    if let Some(key) = &key {
        if key.len() > MAX_IDEMPOTENCY_KEY {
            return validation(&[format!(
                "Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters"
            )])
            .into_response();
        }
        if let Some(reply) = org.replies.get(key) {
            stats.replayed += 1;
            return reply.clone().into_response();
        }
    }
    let segments: Vec<&str> = path.split('/').collect();
    let reply = match (&method, segments.as_slice()) {
        (&Method::GET, ["Contacts"]) => list_contacts(org, &query),
        (&Method::PUT, ["Contacts"]) => create_contacts(org, stats, &body),
        (&Method::GET, ["Invoices"]) => list_invoices(org, &query, &headers),
        (&Method::PUT, ["Invoices"]) => create_invoices(org, stats, &body),
        (&Method::GET, ["Invoices", id]) => get_invoice(org, id),
        (&Method::POST, ["Invoices", id]) => update_invoice(org, id, &body),
        _ => Err(problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no such endpoint",
        )),
    };
    // Whatever the answer, a retry with the key gets it again.
    let reply = reply.unwrap_or_else(|refused| refused);
    if let Some(key) = key {
        org.replies.insert(key, reply.clone());
    }
    reply.into_response()
}

/// A successful answer in the Accounting API's envelope.
fn ok(mut body: Value) -> Reply {
    body["Id"] = json!(Uuid::new_v4());
    body["Status"] = json!("OK");
    body["ProviderName"] = json!("Fusion CRM");
    body["DateTimeUTC"] = xero_date(Utc::now());
    Reply::new(StatusCode::OK, body)
}

fn page(query: &HashMap<String, String>) -> Result<Option<usize>, Reply> {
    match query.get("page") {
        None => Ok(None),
        Some(page) => match page.parse::<usize>() {
            Ok(page) if page >= 1 => Ok(Some(page)),
            _ => Err(validation(&["page must be a positive number".into()])),
        },
    }
}

fn paged<'a>(records: impl Iterator<Item = &'a Value>, page: Option<usize>) -> Vec<Value> {
    match page {
        Some(page) => records
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .cloned()
            .collect(),
        None => records.cloned().collect(),
    }
}

/// `GET Contacts?searchTerm=…`: contacts whose name or e-mail address contains the
/// term, ignoring case.
fn list_contacts(org: &Organisation, query: &HashMap<String, String>) -> Result<Reply, Reply> {
    let term = query
        .get("searchTerm")
        .map(|t| t.to_lowercase())
        .unwrap_or_default();
    let found = org.contacts.iter().filter(|c| {
        ["Name", "EmailAddress"].iter().any(|field| {
            c[*field]
                .as_str()
                .is_some_and(|v| v.to_lowercase().contains(&term))
        })
    });
    Ok(ok(json!({ "Contacts": paged(found, page(query)?) })))
}

/// The records of a `{"<Kind>": [...]}` body.
fn records(body: &[u8], kind: &str) -> Result<Vec<Value>, Reply> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| validation(&[format!("the body is not JSON: {e}")]))?;
    match body.get(kind).and_then(Value::as_array) {
        Some(records) if !records.is_empty() => Ok(records.clone()),
        _ => Err(validation(&[format!("{kind} are expected")])),
    }
}

/// `PUT Contacts`.
fn create_contacts(
    org: &mut Organisation,
    stats: &mut FakeXeroStats,
    body: &[u8],
) -> Result<Reply, Reply> {
    let mut created = Vec::new();
    for contact in records(body, "Contacts")? {
        let Some(name) = contact["Name"]
            .as_str()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            return Err(validation(&["The contact name must be given.".into()]));
        };
        let taken = org.contacts.iter().chain(&created).any(|c| {
            c["Name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        if taken {
            return Err(validation(&[format!(
                "The contact name {name} is already assigned to another contact. The contact \
                 name must be unique across all active contacts."
            )]));
        }
        created.push(json!({
            "ContactID": Uuid::new_v4(),
            "ContactStatus": "ACTIVE",
            "Name": name,
            "EmailAddress": contact["EmailAddress"].as_str().unwrap_or_default(),
            "UpdatedDateUTC": xero_date(Utc::now()),
        }));
    }
    stats.contacts_created += created.len() as u64;
    org.contacts.extend(created.iter().cloned());
    Ok(ok(json!({ "Contacts": created })))
}

/// `GET Invoices` (with `If-Modified-Since`): paged, each page with its lines; without
/// a page, every invoice without its lines, as Xero.
fn list_invoices(
    org: &Organisation,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Reply, Reply> {
    let since = match headers.get(header::IF_MODIFIED_SINCE) {
        None => None,
        Some(value) => {
            let since = value.to_str().ok().and_then(|v| {
                NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|at| at.and_utc())
                    .or_else(|| {
                        DateTime::parse_from_rfc3339(v.trim())
                            .ok()
                            .map(|at| at.to_utc())
                    })
                    .or_else(|| {
                        DateTime::parse_from_rfc2822(v.trim())
                            .ok()
                            .map(|at| at.to_utc())
                    })
            });
            Some(since.ok_or_else(|| validation(&["If-Modified-Since is not a date".into()]))?)
        }
    };
    let page = page(query)?;
    let modified = org.invoices.iter().filter(|i| {
        since.is_none_or(|since| read_date(&i["UpdatedDateUTC"]).is_some_and(|at| at >= since))
    });
    let mut invoices = paged(modified, page);
    if page.is_none() {
        for invoice in &mut invoices {
            invoice
                .as_object_mut()
                .expect("an invoice is an object")
                .remove("LineItems");
        }
    }
    Ok(ok(json!({ "Invoices": invoices })))
}

fn get_invoice(org: &mut Organisation, id: &str) -> Result<Reply, Reply> {
    let not_found = || {
        problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "The resource you're looking for cannot be found",
        )
    };
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let invoice = org.invoice_mut(id).ok_or_else(not_found)?;
    Ok(ok(json!({ "Invoices": [invoice.clone()] })))
}

/// What an invoice may be created in or moved to, from each status.
fn may_move(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("DRAFT", "SUBMITTED" | "AUTHORISED" | "DELETED")
                | ("SUBMITTED", "DRAFT" | "AUTHORISED" | "DELETED")
                | ("AUTHORISED", "VOIDED")
        )
}

/// `PUT Invoices`.
fn create_invoices(
    org: &mut Organisation,
    stats: &mut FakeXeroStats,
    body: &[u8],
) -> Result<Reply, Reply> {
    let mut created = Vec::new();
    for sent in records(body, "Invoices")? {
        let mut invoice = json!({
            "InvoiceID": Uuid::new_v4(),
            "Status": "DRAFT",
            "LineAmountTypes": "Exclusive",
            "CurrencyCode": "AUD",
            "AmountPaid": 0.0,
            "AmountCredited": 0.0,
            "Payments": [],
            "HasAttachments": false,
        });
        let status = sent["Status"].as_str().unwrap_or("DRAFT");
        if !may_move("DRAFT", status) || status == "DELETED" {
            return Err(validation(&[format!(
                "An invoice cannot be created as {status}."
            )]));
        }
        if !matches!(sent["Type"].as_str(), Some("ACCREC" | "ACCPAY")) {
            return Err(validation(&["Type must be ACCREC or ACCPAY.".into()]));
        }
        if let Err(messages) = apply(org, &created, &mut invoice, &sent) {
            return Err(validation(&messages));
        }
        if invoice["InvoiceNumber"].is_null() {
            invoice["InvoiceNumber"] =
                json!(format!("INV-{:04}", org.invoices.len() + created.len() + 1));
        }
        created.push(invoice);
    }
    stats.invoices_created += created.len() as u64;
    org.invoices.extend(created.iter().cloned());
    Ok(ok(json!({ "Invoices": created })))
}

/// `POST Invoices/{InvoiceID}`.
fn update_invoice(org: &mut Organisation, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let sent = records(body, "Invoices")?;
    let [sent] = sent.as_slice() else {
        return Err(validation(&["One invoice is expected.".into()]));
    };
    let not_found = || {
        problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "The resource you're looking for cannot be found",
        )
    };
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let mut invoice = org.invoice_mut(id).ok_or_else(not_found)?.clone();
    let from = invoice["Status"].as_str().unwrap_or_default().to_owned();
    if matches!(from.as_str(), "PAID" | "VOIDED" | "DELETED") {
        return Err(validation(&[
            "Invoice not of valid status for modification".into(),
        ]));
    }
    if let Some(to) = sent["Status"].as_str() {
        if !may_move(&from, to) {
            return Err(validation(&[format!(
                "An invoice cannot move from {from} to {to}."
            )]));
        }
        if to == "VOIDED" && decimal(&invoice["AmountPaid"]).unwrap_or_default() > Decimal::ZERO {
            return Err(validation(&[
                "An invoice with payments cannot be voided.".into()
            ]));
        }
    }
    if let Err(messages) = apply(org, &[], &mut invoice, sent) {
        return Err(validation(&messages));
    }
    *org.invoice_mut(id).expect("found above") = invoice.clone();
    Ok(ok(json!({ "Invoices": [invoice] })))
}

/// Applies the fields a client sent to `invoice` (new, or a copy of a stored one),
/// checking them and recomputing what Xero derives. `pending` are invoices created in
/// the same request.
fn apply(
    org: &Organisation,
    pending: &[Value],
    invoice: &mut Value,
    sent: &Value,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let id = invoice["InvoiceID"].clone();
    for field in [
        "Type",
        "Reference",
        "CurrencyCode",
        "Status",
        "LineAmountTypes",
    ] {
        if let Some(value) = sent.get(field).filter(|v| !v.is_null()) {
            invoice[field] = value.clone();
        }
    }
    if !matches!(
        invoice["LineAmountTypes"].as_str(),
        Some("Exclusive" | "Inclusive" | "NoTax")
    ) {
        errors.push("LineAmountTypes must be Exclusive, Inclusive or NoTax.".into());
    }
    if let Some(contact) = sent.get("Contact") {
        match org
            .contacts
            .iter()
            .find(|c| c["ContactID"] == contact["ContactID"])
        {
            Some(found) => {
                invoice["Contact"] =
                    json!({ "ContactID": found["ContactID"], "Name": found["Name"] });
            }
            None => errors.push("The contact could not be found.".into()),
        }
    } else if invoice["Contact"].is_null() {
        errors.push("A Contact must be specified for this type of transaction".into());
    }
    for (field, text) in [("Date", "DateString"), ("DueDate", "DueDateString")] {
        if let Some(value) = sent.get(field) {
            match read_date(value) {
                Some(at) => {
                    invoice[field] = xero_date(at);
                    invoice[text] = json!(at.format("%Y-%m-%dT%H:%M:%S").to_string());
                }
                None => errors.push(format!("{field} is not a date.")),
            }
        }
    }
    if let Some(number) = sent.get("InvoiceNumber").and_then(Value::as_str) {
        let taken = org
            .invoices
            .iter()
            .chain(pending)
            .any(|i| i["InvoiceID"] != id && i["InvoiceNumber"] == number);
        if taken {
            errors.push("Invoice # must be unique.".into());
        }
        invoice["InvoiceNumber"] = json!(number);
    }
    if let Some(lines) = sent.get("LineItems").and_then(Value::as_array) {
        let mut kept = Vec::new();
        for line in lines {
            if line["Description"].as_str().is_none_or(str::is_empty) {
                errors.push("Description must be given on every line.".into());
                continue;
            }
            let (Some(quantity), Some(unit)) =
                (decimal(&line["Quantity"]), decimal(&line["UnitAmount"]))
            else {
                errors.push("Quantity and UnitAmount must be numbers.".into());
                continue;
            };
            let line_amount =
                decimal(&line["LineAmount"]).unwrap_or_else(|| (quantity * unit).round_dp(2));
            let tax = decimal(&line["TaxAmount"]).unwrap_or_default();
            let known = invoice["LineItems"]
                .as_array()
                .is_some_and(|old| old.iter().any(|o| o["LineItemID"] == line["LineItemID"]));
            let mut stored = line.clone();
            stored["LineItemID"] = if known {
                line["LineItemID"].clone()
            } else {
                json!(Uuid::new_v4())
            };
            stored["LineAmount"] = number(line_amount);
            stored["TaxAmount"] = number(tax);
            kept.push(stored);
        }
        invoice["LineItems"] = json!(kept);
    }
    if invoice["Date"].is_null() {
        errors.push("Date must be given.".into());
    }
    let lines = invoice["LineItems"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        errors.push("An invoice needs at least one line.".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let sum = |field: &str| -> Decimal { lines.iter().filter_map(|l| decimal(&l[field])).sum() };
    let (amounts, tax) = (sum("LineAmount"), sum("TaxAmount"));
    let (sub_total, total_tax, total) = match invoice["LineAmountTypes"].as_str() {
        Some("Inclusive") => (amounts - tax, tax, amounts),
        Some("NoTax") => (amounts, Decimal::ZERO, amounts),
        _ => (amounts, tax, amounts + tax),
    };
    let paid = decimal(&invoice["AmountPaid"]).unwrap_or_default();
    invoice["SubTotal"] = number(sub_total);
    invoice["TotalTax"] = number(total_tax);
    invoice["Total"] = number(total);
    invoice["AmountDue"] = number(total - paid);
    invoice["UpdatedDateUTC"] = xero_date(Utc::now());
    Ok(())
}
