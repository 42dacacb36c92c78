//! The Xero client, limiter, token sealing and webhook endpoint against the test kit's
//! fake Xero, which refuses what Xero refuses (expired tokens, reused codes and refresh
//! tokens, foreign organisations, calls past the limits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{NaiveDate, Utc};
use fusion_finance::xero::model::{
    ContactRef, InvoiceStatus, InvoiceType, LineAmountTypes, LineItem, NewContact, NewInvoice,
};
use fusion_finance::xero::{
    CryptoError, RateLimitProblem, WebhookEvent, XeroClient, XeroConfig, XeroError, XeroEventSink,
    XeroLimits, XeroSession, XeroTokens, webhook,
};
use fusion_testkit::xero::{FakeLimits, FakeXero, FakeXeroOptions};
use rust_decimal::Decimal;
use uuid::Uuid;

pub const WEBHOOK_KEY: &str = "fake-webhook-signing-key";

/// The settings pointing at `fake`, with `extra` variables on top.
pub fn config(fake: &FakeXero, extra: &[(&str, &str)]) -> XeroConfig {
    let secret_key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let defaults = FakeXeroOptions::default();
    let mut vars: HashMap<String, String> = [
        ("FINANCE_XERO_API_URL", fake.url()),
        ("FINANCE_XERO_IDENTITY_URL", fake.url()),
        ("FINANCE_XERO_AUTHORIZE_URL", fake.authorize_url()),
        ("FINANCE_XERO_CLIENT_ID", defaults.client_id),
        ("FINANCE_XERO_CLIENT_SECRET", defaults.client_secret),
        ("FINANCE_XERO_REDIRECT_URI", defaults.redirect_uri),
        ("FINANCE_XERO_WEBHOOK_KEY", WEBHOOK_KEY.to_owned()),
        ("FINANCE_SECRET_KEY", secret_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    XeroConfig::from_lookup(|name| vars.get(name).cloned()).expect("valid settings")
}

/// Limits shrunk so that a test's "minute" passes in `minute`.
fn limits(concurrent: usize, per_minute: usize, minute: Duration) -> (FakeLimits, XeroLimits) {
    let fake = FakeLimits {
        concurrent,
        per_minute,
        minute,
        ..FakeLimits::default()
    };
    let ours = XeroLimits {
        concurrent,
        per_minute,
        minute,
        ..XeroLimits::default()
    };
    (fake, ours)
}

/// A fake Xero and a client of it with `limits` (both sides' limits set alike).
async fn rig(options: FakeXeroOptions, limits: XeroLimits) -> (FakeXero, XeroClient) {
    let fake = FakeXero::start(options).await;
    let mut config = config(&fake, &[]);
    config.limits = limits;
    let client = XeroClient::new(&config).expect("a configured client");
    (fake, client)
}

/// Limits that no test reaches unless it means to.
fn roomy() -> (FakeLimits, XeroLimits) {
    limits(5, 10_000, Duration::from_secs(60))
}

async fn roomy_rig() -> (FakeXero, XeroClient) {
    let (fake_limits, ours) = roomy();
    rig(
        FakeXeroOptions {
            limits: fake_limits,
            ..FakeXeroOptions::default()
        },
        ours,
    )
    .await
}

/// The user connects `organisation`: the tokens and a session for it.
async fn connect(
    fake: &FakeXero,
    client: &XeroClient,
    organisation: &str,
) -> (XeroTokens, XeroSession) {
    let consent = fake
        .consent(&client.authorize_url("state-1"), organisation)
        .expect("the consent page accepts our authorize URL");
    let tokens = client
        .exchange_code(&consent.code)
        .await
        .expect("the code exchange");
    let session = XeroSession {
        access_token: tokens.access_token.clone(),
        tenant_id: consent.tenant_id,
    };
    (tokens, session)
}

fn line(description: &str, quantity: i64, unit_cents: i64, tax_cents: i64) -> LineItem {
    let unit = Decimal::new(unit_cents, 2);
    LineItem {
        line_item_id: None,
        description: description.into(),
        quantity: Decimal::from(quantity),
        unit_amount: unit,
        line_amount: Some(unit * Decimal::from(quantity)),
        tax_amount: Some(Decimal::new(tax_cents, 2)),
        account_code: Some("200".into()),
        tax_type: None,
    }
}

fn invoice(contact_id: Uuid, number: &str, status: InvoiceStatus) -> NewInvoice {
    NewInvoice {
        kind: InvoiceType::Receivable,
        contact: ContactRef { contact_id },
        date: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        due_date: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        line_amount_types: LineAmountTypes::Exclusive,
        line_items: vec![
            line("Deposit, lot 12", 1, 1_000_000, 100_000),
            line("Admin fee", 2, 25_050, 5_010),
        ],
        invoice_number: Some(number.into()),
        reference: Some("Lot 12".into()),
        currency_code: Some("AUD".into()),
        status,
    }
}

async fn customer(client: &XeroClient, session: &XeroSession) -> Uuid {
    let contact = NewContact {
        name: "Ada Buyer".into(),
        email_address: Some("ada@example.com".into()),
    };
    client
        .ensure_contact(session, &contact, "fusion-contact-1")
        .await
        .expect("the contact")
        .contact_id
}

#[tokio::test]
async fn connecting_exchanges_the_code_once_and_lists_the_organisation() {
    let (fake, client) = roomy_rig().await;
    let url = client.authorize_url("a-single-use-state");
    assert!(url.starts_with(&fake.authorize_url()), "{url}");
    assert!(
        url.contains("response_type=code") && url.contains("state=a-single-use-state"),
        "{url}"
    );
    assert!(
        url.contains("offline_access"),
        "a refresh token is asked for: {url}"
    );

    let consent = fake.consent(&url, "Harbour Developments").unwrap();
    assert_eq!(consent.state, "a-single-use-state");
    let before = Utc::now();
    let tokens = client.exchange_code(&consent.code).await.unwrap();
    assert!(
        tokens.expires_at >= before + chrono::Duration::seconds(1799),
        "{tokens:?}"
    );
    let connections = client.connections(&tokens.access_token).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].tenant_id, consent.tenant_id);
    assert_eq!(connections[0].tenant_type, "ORGANISATION");
    assert_eq!(
        connections[0].tenant_name.as_deref(),
        Some("Harbour Developments")
    );

    let again = client.exchange_code(&consent.code).await;
    assert!(matches!(again, Err(XeroError::InvalidGrant)), "{again:?}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_at_the_token_endpoint() {
    let fake = FakeXero::start(FakeXeroOptions::default()).await;
    let config = config(&fake, &[("FINANCE_XERO_CLIENT_SECRET", "not-the-secret")]);
    let client = XeroClient::new(&config).unwrap();
    let consent = fake.consent(&client.authorize_url("s"), "Org").unwrap();
    let refused = client.exchange_code(&consent.code).await;
    assert!(
        matches!(&refused, Err(XeroError::Invalid(e)) if e == "invalid_client"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refused_until_refreshed() {
    let (fake_limits, ours) = roomy();
    let (fake, client) = rig(
        FakeXeroOptions {
            access_token_lifetime: Duration::from_secs(1),
            limits: fake_limits,
            ..FakeXeroOptions::default()
        },
        ours,
    )
    .await;
    let (tokens, mut session) = connect(&fake, &client, "Org").await;
    customer(&client, &session).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = client.get_invoice(&session, Uuid::new_v4()).await;
    assert!(
        matches!(&expired, Err(XeroError::Unauthorized(detail)) if detail.starts_with("TokenExpired")),
        "{expired:?}"
    );

    let fresh = client.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(fresh.access_token, tokens.access_token);
    assert_ne!(fresh.refresh_token, tokens.refresh_token);
    session.access_token = fresh.access_token;
    customer(&client, &session).await;
}

#[tokio::test]
async fn a_refresh_token_is_accepted_once() {
    let (fake, client) = roomy_rig().await;
    let (first, _) = connect(&fake, &client, "Org").await;
    let second = client.refresh(&first.refresh_token).await.unwrap();
    let reused = client.refresh(&first.refresh_token).await;
    assert!(matches!(reused, Err(XeroError::InvalidGrant)), "{reused:?}");
    let third = client.refresh(&second.refresh_token).await.unwrap();
    client.connections(&third.access_token).await.unwrap();
}

#[tokio::test]
async fn calls_without_or_with_a_foreign_xero_tenant_id_are_forbidden() {
    let (fake, client) = roomy_rig().await;
    let (tokens, session) = connect(&fake, &client, "Ours").await;
    let (_, theirs) = connect(&fake, &client, "Someone else's").await;

    let missing = reqwest::Client::new()
        .get(format!("{}/api.xro/2.0/Invoices", fake.url()))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::FORBIDDEN);

    for tenant_id in [theirs.tenant_id, Uuid::new_v4()] {
        let foreign = XeroSession {
            tenant_id,
            ..session.clone()
        };
        let refused = client.get_invoice(&foreign, Uuid::new_v4()).await;
        assert!(
            matches!(&refused, Err(XeroError::Forbidden(d)) if d == "AuthenticationUnsuccessful"),
            "{refused:?}"
        );
    }
    let not_found = client.get_invoice(&session, Uuid::new_v4()).await;
    assert!(
        matches!(not_found, Err(XeroError::NotFound(_))),
        "{not_found:?}"
    );
}

#[tokio::test]
async fn a_disconnected_organisation_is_refused() {
    let (fake, client) = roomy_rig().await;
    let (tokens, session) = connect(&fake, &client, "Org").await;
    let connection = client.connections(&tokens.access_token).await.unwrap()[0].id;
    client
        .disconnect(&tokens.access_token, connection)
        .await
        .unwrap();
    assert!(
        client
            .connections(&tokens.access_token)
            .await
            .unwrap()
            .is_empty()
    );
    let refused = client.get_invoice(&session, Uuid::new_v4()).await;
    assert!(
        matches!(refused, Err(XeroError::Forbidden(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_contact_is_created_once_and_found_afterwards() {
    let (fake, client) = roomy_rig().await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let first = customer(&client, &session).await;
    let contact = NewContact {
        name: "ada buyer".into(),
        email_address: None,
    };
    let found = client
        .ensure_contact(&session, &contact, "fusion-contact-2")
        .await
        .unwrap();
    assert_eq!(found.contact_id, first);
    assert_eq!(fake.stats().contacts_created, 1);
}

#[tokio::test]
async fn an_invoice_pushed_twice_with_one_idempotency_key_is_created_once() {
    let (fake, client) = roomy_rig().await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let contact_id = customer(&client, &session).await;
    let sent = invoice(contact_id, "INV-000041", InvoiceStatus::Authorised);

    let created = client
        .create_invoice(&session, &sent, "fusion-invoice-41-push-1")
        .await
        .unwrap();
    assert_eq!(created.status, InvoiceStatus::Authorised);
    assert_eq!(created.contact.contact_id, contact_id);
    assert_eq!(created.date, Some(sent.date));
    assert_eq!(created.due_date, Some(sent.due_date));
    assert_eq!(created.total, Some(Decimal::new(1_155_110, 2)));
    assert_eq!(created.amount_due, created.total);
    assert_eq!(created.line_items.len(), 2);
    assert!(created.line_items.iter().all(|l| l.line_item_id.is_some()));
    assert_eq!(created.line_items[1].unit_amount, Decimal::new(25_050, 2));

    let retried = client
        .create_invoice(&session, &sent, "fusion-invoice-41-push-1")
        .await
        .unwrap();
    assert_eq!(retried, created);
    let stats = fake.stats();
    assert_eq!((stats.invoices_created, stats.replayed), (1, 1));

    // Without the key, the same invoice is a second one, which Xero refuses by number.
    let duplicate = client
        .create_invoice(&session, &sent, "fusion-invoice-41-push-2")
        .await;
    assert!(
        matches!(&duplicate, Err(XeroError::Invalid(m)) if m.contains("must be unique")),
        "{duplicate:?}"
    );
    assert_eq!(fake.stats().invoices_created, 1);
}

#[tokio::test]
async fn an_updated_invoice_keeps_its_line_ids_and_a_paid_one_is_refused() {
    let (fake, client) = roomy_rig().await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let contact_id = customer(&client, &session).await;
    let mut sent = invoice(contact_id, "INV-000042", InvoiceStatus::Draft);
    let created = client
        .create_invoice(&session, &sent, "inv-42-create")
        .await
        .unwrap();

    sent.status = InvoiceStatus::Authorised;
    sent.line_items = created.line_items.clone();
    sent.line_items[0].description = "Deposit, lot 12 (amended)".into();
    sent.line_items.push(line("Survey", 1, 50_000, 5_000));
    let updated = client
        .update_invoice(&session, created.invoice_id, &sent, "inv-42-update-1")
        .await
        .unwrap();
    assert_eq!(updated.status, InvoiceStatus::Authorised);
    assert_eq!(updated.line_items.len(), 3);
    assert_eq!(
        updated.line_items[..2]
            .iter()
            .map(|l| l.line_item_id)
            .collect::<Vec<_>>(),
        created
            .line_items
            .iter()
            .map(|l| l.line_item_id)
            .collect::<Vec<_>>()
    );
    assert!(updated.line_items[2].line_item_id.is_some());
    let held = fake.invoice(session.tenant_id, created.invoice_id).unwrap();
    assert_eq!(
        held["LineItems"][0]["Description"],
        "Deposit, lot 12 (amended)"
    );
    assert_eq!(held["Status"], "AUTHORISED");
    assert!(updated.updated_date_utc >= created.updated_date_utc);

    let total = updated.total.unwrap();
    fake.pay_invoice(session.tenant_id, created.invoice_id, total)
        .unwrap();
    sent.status = InvoiceStatus::Voided;
    let refused = client
        .update_invoice(&session, created.invoice_id, &sent, "inv-42-update-2")
        .await;
    assert!(matches!(refused, Err(XeroError::Invalid(_))), "{refused:?}");
}

/// Creates invoices `numbers` at once, each with its own key, and returns how long
/// that took.
async fn push_at_once(
    client: &Arc<XeroClient>,
    session: &XeroSession,
    contact_id: Uuid,
    numbers: std::ops::Range<u32>,
) -> Result<Duration, XeroError> {
    let started = Instant::now();
    let pushes = numbers.map(|n| {
        let (client, session) = (client.clone(), session.clone());
        tokio::spawn(async move {
            let sent = invoice(
                contact_id,
                &format!("INV-{n:06}"),
                InvoiceStatus::Authorised,
            );
            client
                .create_invoice(&session, &sent, &format!("fusion-invoice-{n}"))
                .await
        })
    });
    for push in futures::future::join_all(pushes).await {
        push.expect("the push task ends")?;
    }
    Ok(started.elapsed())
}

#[tokio::test]
async fn a_burst_past_the_minute_limit_waits_its_turn_and_draws_no_429() {
    // 30 invoices against 10 calls per 2-second "minute", 5 at once: three windows.
    let (fake_limits, ours) = limits(5, 10, Duration::from_secs(2));
    let (fake, client) = rig(
        FakeXeroOptions {
            limits: fake_limits,
            latency: Duration::from_millis(50),
            ..FakeXeroOptions::default()
        },
        ours,
    )
    .await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let client = Arc::new(client);
    let contact_id = customer(&client, &session).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let took = push_at_once(&client, &session, contact_id, 0..30)
        .await
        .unwrap();
    let stats = fake.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(stats.invoices_created, 30);
    assert_eq!(stats.peak_per_minute, 10, "{stats:?}");
    assert!(stats.peak_concurrent <= 5, "{stats:?}");
    assert!(
        took >= Duration::from_secs(4),
        "three windows take two window lengths at least: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "and not much more: {took:?}");
}

#[tokio::test]
async fn a_429_is_honoured_by_waiting_its_retry_after() {
    // The fake allows 2 calls per 2 s; our limiter believes Xero's 60 per minute.
    let (fake_limits, _) = limits(5, 2, Duration::from_secs(2));
    let (fake, client) = rig(
        FakeXeroOptions {
            limits: fake_limits,
            ..FakeXeroOptions::default()
        },
        XeroLimits::default(),
    )
    .await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let started = Instant::now();
    for _ in 0..4 {
        client
            .invoices_modified_since(&session, Utc::now())
            .await
            .expect("each call succeeds, the third after waiting");
    }
    let stats = fake.stats();
    assert_eq!((stats.rate_limited, stats.admitted), (1, 4), "{stats:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_past_the_last_attempt_reaches_the_caller() {
    let (fake_limits, _) = limits(5, 1, Duration::from_secs(2));
    let (fake, client) = rig(
        FakeXeroOptions {
            limits: fake_limits,
            ..FakeXeroOptions::default()
        },
        XeroLimits {
            attempts: 1,
            ..XeroLimits::default()
        },
    )
    .await;
    let (_, session) = connect(&fake, &client, "Org").await;
    client
        .invoices_modified_since(&session, Utc::now())
        .await
        .unwrap();
    let refused = client.invoices_modified_since(&session, Utc::now()).await;
    match refused {
        Err(XeroError::RateLimited {
            retry_after,
            problem,
        }) => {
            assert_eq!(problem, RateLimitProblem::Minute);
            assert_eq!(retry_after, Duration::from_secs(2));
        }
        other => panic!("expected a 429, got {other:?}"),
    }
}

#[tokio::test]
async fn the_poll_returns_every_invoice_changed_since_across_pages() {
    let (fake, client) = roomy_rig().await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let client = Arc::new(client);
    let contact_id = customer(&client, &session).await;
    push_at_once(&client, &session, contact_id, 0..120)
        .await
        .unwrap();
    let all = client
        .invoices_modified_since(&session, chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(all.len(), 120);

    // The poll rounds down to the second: what changed a second and more ago is out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = Utc::now();
    let paid = [&all[3], &all[110]];
    for invoice in paid {
        fake.pay_invoice(session.tenant_id, invoice.invoice_id, Decimal::ONE)
            .unwrap();
    }
    let changed = client
        .invoices_modified_since(&session, since)
        .await
        .unwrap();
    let mut ids: Vec<Uuid> = changed.iter().map(|i| i.invoice_id).collect();
    ids.sort();
    let mut expected: Vec<Uuid> = paid.iter().map(|i| i.invoice_id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(changed.iter().all(|i| i.amount_paid == Some(Decimal::ONE)));
}

/// What the webhook endpoint handed on.
#[derive(Default)]
struct Collected(Mutex<Vec<WebhookEvent>>);

impl XeroEventSink for Collected {
    fn accept(&self, events: Vec<WebhookEvent>) {
        self.0.lock().unwrap().extend(events);
    }
}

/// The webhook endpoint on a loopback port: its URL and what it collects.
async fn webhook_endpoint() -> (String, Arc<Collected>) {
    let collected = Arc::new(Collected::default());
    let app = webhook::router(WEBHOOK_KEY, collected.clone());
    let listener = fusion_testkit::bind_ephemeral().await;
    let url = format!("http://{}{}", listener.local_addr().unwrap(), webhook::PATH);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, collected)
}

#[tokio::test]
async fn the_webhook_answers_the_intent_to_receive_check() {
    let fake = FakeXero::start(FakeXeroOptions::default()).await;
    let (url, collected) = webhook_endpoint().await;
    assert_eq!(
        fake.send_webhook(&url, WEBHOOK_KEY, vec![]).await,
        (200, String::new())
    );
    assert_eq!(
        fake.send_webhook(&url, "another key", vec![]).await,
        (401, String::new())
    );
    assert!(collected.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_signed_invoice_event_is_handed_on_and_the_invoice_shows_its_payment() {
    let (fake, client) = roomy_rig().await;
    let (_, session) = connect(&fake, &client, "Org").await;
    let contact_id = customer(&client, &session).await;
    let created = client
        .create_invoice(
            &session,
            &invoice(contact_id, "INV-7", InvoiceStatus::Authorised),
            "inv-7",
        )
        .await
        .unwrap();
    let total = created.total.unwrap();
    fake.pay_invoice(session.tenant_id, created.invoice_id, total)
        .unwrap();

    let (url, collected) = webhook_endpoint().await;
    let event = fake.invoice_event(session.tenant_id, created.invoice_id);
    let forged = fake
        .send_webhook(&url, "another key", vec![event.clone()])
        .await;
    assert_eq!(forged, (401, String::new()));
    assert!(collected.0.lock().unwrap().is_empty());
    assert_eq!(
        fake.send_webhook(&url, WEBHOOK_KEY, vec![event]).await,
        (200, String::new())
    );

    let events = collected.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert!(events[0].is_invoice());
    assert_eq!(
        (events[0].tenant_id, events[0].resource_id),
        (session.tenant_id, created.invoice_id)
    );
    let fetched = client
        .get_invoice(&session, events[0].resource_id)
        .await
        .unwrap();
    assert_eq!(fetched.status, InvoiceStatus::Paid);
    assert_eq!(fetched.amount_paid, Some(total));
    assert_eq!(fetched.amount_due, Some(Decimal::ZERO));
    assert_eq!(fetched.payments.len(), 1);
    assert_eq!(fetched.payments[0].amount, total);
    assert_eq!(fetched.payments[0].date, Utc::now().date_naive());
}

#[test]
fn a_signature_is_checked_against_the_raw_body() {
    use hmac::Mac as _;
    let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"x"}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
    mac.update(body);
    let good = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert!(webhook::signature_is_valid(b"key", body, &good));
    assert!(!webhook::signature_is_valid(b"other", body, &good));
    assert!(!webhook::signature_is_valid(b"key", &body[1..], &good));
    assert!(!webhook::signature_is_valid(b"key", body, &good[..20]));
    assert!(!webhook::signature_is_valid(b"key", body, "not base64!"));
}

#[tokio::test]
async fn tokens_sealed_at_rest_open_only_with_their_key_for_their_tenant() {
    let fake = FakeXero::start(FakeXeroOptions::default()).await;
    let cipher = config(&fake, &[]).token_cipher.unwrap();
    let sealed = cipher.seal(7, b"the refresh token");
    assert_eq!(cipher.open(7, &sealed).unwrap(), b"the refresh token");
    assert_ne!(
        cipher.seal(7, b"the refresh token"),
        sealed,
        "a fresh nonce each time"
    );

    let other_key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    let other = config(&fake, &[("FINANCE_SECRET_KEY", &other_key)])
        .token_cipher
        .unwrap();
    assert_eq!(other.open(7, &sealed), Err(CryptoError::Unopenable));
    assert_eq!(
        cipher.open(8, &sealed),
        Err(CryptoError::Unopenable),
        "another tenant's row"
    );
    let mut altered = sealed.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert_eq!(cipher.open(7, &altered), Err(CryptoError::Unopenable));
    assert_eq!(cipher.open(7, &sealed[..10]), Err(CryptoError::Unopenable));
}

#[test]
fn a_secret_key_that_is_not_32_bytes_of_base64_is_refused_saying_so() {
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
    for bad in ["not base64!", short.as_str()] {
        let error =
            XeroConfig::from_lookup(|name| (name == "FINANCE_SECRET_KEY").then(|| bad.to_owned()))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("FINANCE_SECRET_KEY") && error.contains("base64 of exactly 32"),
            "{error}"
        );
        assert!(!error.contains(bad), "the key is not echoed: {error}");
    }
}

#[test]
fn without_credentials_xero_is_off_naming_what_to_set() {
    let config =
        XeroConfig::from_lookup(|name| (name == "FINANCE_XERO_CLIENT_ID").then(|| "id".to_owned()))
            .unwrap();
    assert!(config.credentials.is_none());
    assert_eq!(
        config.missing_variables(),
        [
            "FINANCE_XERO_CLIENT_SECRET",
            "FINANCE_XERO_REDIRECT_URI",
            "FINANCE_SECRET_KEY"
        ]
    );
    let refused = XeroClient::new(&config).unwrap_err().to_string();
    assert!(
        refused.contains("FINANCE_XERO_CLIENT_SECRET, FINANCE_XERO_REDIRECT_URI"),
        "{refused}"
    );

    assert_eq!(config.api_url, "https://api.xero.com");
    assert_eq!(config.identity_url, "https://identity.xero.com");
    assert_eq!(config.webhook_addr.to_string(), "0.0.0.0:8054");
    assert_eq!(config.limits, XeroLimits::default());
    assert_eq!(
        (
            config.limits.concurrent,
            config.limits.per_minute,
            config.limits.per_day
        ),
        (5, 60, 5000)
    );
}

#[test]
fn the_limits_are_settings() {
    let vars: HashMap<&str, &str> = [
        ("FINANCE_XERO_LIMIT_CONCURRENT", "3"),
        ("FINANCE_XERO_LIMIT_PER_MINUTE", "600"),
        ("FINANCE_XERO_LIMIT_PER_DAY", "10000"),
    ]
    .into();
    let config = XeroConfig::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(
        (
            config.limits.concurrent,
            config.limits.per_minute,
            config.limits.per_day
        ),
        (3, 600, 10_000)
    );
    let zero = XeroConfig::from_lookup(|name| {
        (name == "FINANCE_XERO_LIMIT_PER_MINUTE").then(|| "0".to_owned())
    });
    assert!(zero.is_err());
}
