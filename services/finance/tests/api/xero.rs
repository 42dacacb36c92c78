//! Finance's Xero integration through gRPC against the test kit's fake Xero: the
//! connection (single-use states, sealed tokens, one refresher at a time), pushing
//! invoices (once, then updates; on approval; Xero's refusals recorded), and what
//! happens in Xero coming back by webhook and by the poll.

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use fusion_finance::xero::{TokenCipher, XeroClient, XeroConfig};
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::settings_service_client::SettingsServiceClient;
use fusion_proto::finance::v1::xero_service_client::XeroServiceClient;
use fusion_testkit::until;
use fusion_testkit::xero::{Consent, FakeXero, FakeXeroOptions};
use tonic::transport::Channel;

use crate::helpers::{TestApp, User, assert_invalid, expect_code, line, mask, reason};
use crate::xero_client::{WEBHOOK_KEY, config};

/// A finance service configured for a fake Xero.
struct Rig {
    app: TestApp,
    fake: FakeXero,
    /// The settings finance runs with.
    xero: XeroConfig,
}

impl Rig {
    /// A fake Xero set up by `options` and finance pointed at it, its webhook endpoint
    /// on a free port, its Xero settings then changed by `configure`.
    async fn start(options: FakeXeroOptions, configure: impl FnOnce(&mut XeroConfig)) -> Rig {
        let fake = FakeXero::start(options).await;
        let mut xero = config(&fake, &[("FINANCE_WEBHOOK_ADDR", "127.0.0.1:0")]);
        configure(&mut xero);
        let settings = xero.clone();
        let app = TestApp::spawn_configured(|c| c.xero = settings).await;
        Rig { app, fake, xero }
    }

    async fn default() -> Rig {
        Self::start(FakeXeroOptions::default(), |_| {}).await
    }

    fn connections(&self) -> XeroServiceClient<Channel> {
        XeroServiceClient::new(self.app.channel.clone())
    }

    /// `who` connects their tenant to `organisation`: start, the user's consent in
    /// Xero, complete.
    async fn connect(&self, who: &User, organisation: &str) -> (Consent, pb::XeroConnection) {
        let consent = self.consent(who, organisation).await;
        let connection = self
            .complete(who, &consent)
            .await
            .expect("the connection completes");
        (consent, connection)
    }

    /// Starts a connection for `who` and consents to `organisation` in Xero.
    async fn consent(&self, who: &User, organisation: &str) -> Consent {
        let started = self
            .connections()
            .start_xero_connection(who.req(pb::StartXeroConnectionRequest {}))
            .await
            .expect("the connection starts")
            .into_inner();
        let consent = self
            .fake
            .consent(&started.authorization_uri, organisation)
            .expect("Xero's consent page takes our authorization URL");
        assert_eq!(consent.state, started.state);
        consent
    }

    async fn complete(
        &self,
        who: &User,
        consent: &Consent,
    ) -> Result<pb::XeroConnection, tonic::Status> {
        self.connections()
            .complete_xero_connection(who.req(pb::CompleteXeroConnectionRequest {
                code: consent.code.clone(),
                state: consent.state.clone(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// An invoice of `who` for crm contact `contact_id` (0: none), taken to `status`
    /// (`draft`, `submitted` or `authorised`).
    async fn invoice(&self, who: &User, contact_id: i64, status: &str) -> pb::Invoice {
        let mut invoice = self
            .app
            .invoices()
            .create_invoice(who.req(pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    contact_id,
                    reference: "Lot 12".into(),
                    line_items: vec![
                        line("Deposit, lot 12", "1", "1000.00", "10"),
                        line("Admin fee", "2", "250.50", "10"),
                    ],
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("invoice created")
            .into_inner();
        if status != "draft" {
            invoice = self
                .app
                .invoices()
                .submit_invoice(who.req(pb::SubmitInvoiceRequest {
                    id: invoice.id,
                    ..Default::default()
                }))
                .await
                .expect("submitted")
                .into_inner();
        }
        if status == "authorised" {
            invoice = self.approve(who, invoice.id).await;
        }
        invoice
    }

    async fn approve(&self, who: &User, id: i64) -> pb::Invoice {
        self.app
            .invoices()
            .approve_invoice(who.req(pb::ApproveInvoiceRequest {
                id,
                ..Default::default()
            }))
            .await
            .expect("approved")
            .into_inner()
    }

    async fn sync(
        &self,
        who: &User,
        id: i64,
        request_id: &str,
    ) -> Result<pb::Invoice, tonic::Status> {
        self.app
            .invoices()
            .sync_invoice_to_xero(who.req(pb::SyncInvoiceToXeroRequest {
                id,
                request_id: request_id.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&self, who: &User, id: i64) -> pb::Invoice {
        self.app
            .invoices()
            .get_invoice(who.req(pb::GetInvoiceRequest { id }))
            .await
            .expect("the invoice")
            .into_inner()
    }

    async fn sync_on_approval(&self, who: &User) {
        SettingsServiceClient::new(self.app.channel.clone())
            .update_finance_settings(who.req(pb::UpdateFinanceSettingsRequest {
                settings: Some(pb::FinanceSettings {
                    sync_on_approval: true,
                    ..Default::default()
                }),
                update_mask: mask(&["sync_on_approval"]),
            }))
            .await
            .expect("settings updated");
    }

    fn webhook_url(&self) -> String {
        let addr = self
            .app
            .finance
            .webhook_addr()
            .expect("the webhook endpoint runs");
        format!("http://{addr}/webhooks/xero")
    }

    /// The database as its administrator, past row-level security.
    async fn admin(&self) -> PgPool {
        PgPool::connect(&self.app.db.admin_url)
            .await
            .expect("the administrator connects")
    }

    /// The invoice in Xero.
    fn in_xero(&self, organisation: Uuid, invoice: &pb::Invoice) -> Value {
        let id = Uuid::parse_str(&invoice.xero_invoice_id).expect("pushed");
        self.fake.invoice(organisation, id).expect("in Xero")
    }
}

/// When the invoice was last pushed or reconciled, as (seconds, nanoseconds).
fn at(invoice: &pb::Invoice) -> (i64, i32) {
    let t = invoice.last_sync_time.expect("pushed or reconciled");
    (t.seconds, t.nanos)
}

fn request_id() -> String {
    Uuid::new_v4().to_string()
}

/// `finance.invoice.paid` events of `invoice` in the outbox.
async fn paid_events(admin: &PgPool, invoice: &pb::Invoice) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM finance.outbox_events
          WHERE tenant_id = $1 AND event_type = 'finance.invoice.paid' AND aggregate_id = $2",
    )
    .bind(invoice.tenant_id)
    .bind(invoice.id)
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn without_client_credentials_the_xero_methods_name_the_variables_and_the_rest_works() {
    let app = TestApp::spawn().await;
    assert_eq!(app.finance.webhook_addr(), None);
    let who = &app.acme;
    let xero = XeroServiceClient::new(app.channel.clone());
    let variables = [
        "FINANCE_XERO_CLIENT_ID",
        "FINANCE_XERO_CLIENT_SECRET",
        "FINANCE_XERO_REDIRECT_URI",
        "FINANCE_SECRET_KEY",
    ];
    let check = |status: tonic::Status| {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), "XERO_NOT_CONFIGURED");
        for variable in variables {
            assert!(status.message().contains(variable), "{status:?}");
        }
    };
    check(
        xero.clone()
            .start_xero_connection(who.req(pb::StartXeroConnectionRequest {}))
            .await
            .unwrap_err(),
    );
    check(
        xero.clone()
            .complete_xero_connection(who.req(pb::CompleteXeroConnectionRequest {
                code: "c".into(),
                state: "s".into(),
            }))
            .await
            .unwrap_err(),
    );
    check(
        xero.clone()
            .get_xero_connection(who.req(pb::GetXeroConnectionRequest {}))
            .await
            .unwrap_err(),
    );
    check(
        xero.clone()
            .disconnect_xero(who.req(pb::DisconnectXeroRequest {}))
            .await
            .unwrap_err(),
    );
    // Invoices work, approval included even when it asks for a push.
    SettingsServiceClient::new(app.channel.clone())
        .update_finance_settings(who.req(pb::UpdateFinanceSettingsRequest {
            settings: Some(pb::FinanceSettings {
                sync_on_approval: true,
                ..Default::default()
            }),
            update_mask: mask(&["sync_on_approval"]),
        }))
        .await
        .unwrap();
    let invoice = app.invoice(who, &[("1", "100.00", "10")]).await;
    app.invoices()
        .submit_invoice(who.req(pb::SubmitInvoiceRequest {
            id: invoice.id,
            ..Default::default()
        }))
        .await
        .unwrap();
    let approved = app
        .invoices()
        .approve_invoice(who.req(pb::ApproveInvoiceRequest {
            id: invoice.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (approved.status.as_str(), approved.xero_sync_status.as_str()),
        ("authorised", "not_synced")
    );
    check(
        app.invoices()
            .sync_invoice_to_xero(who.req(pb::SyncInvoiceToXeroRequest {
                id: invoice.id,
                request_id: String::new(),
            }))
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
async fn a_tenant_connects_with_a_single_use_state_and_other_states_are_refused() {
    let rig = Rig::default().await;
    let (acme, globex) = (&rig.app.acme, &rig.app.globex);
    let not_connected = rig
        .connections()
        .get_xero_connection(acme.req(pb::GetXeroConnectionRequest {}))
        .await;
    assert_eq!(
        reason(&expect_code(not_connected, Code::FailedPrecondition)),
        "XERO_NOT_CONNECTED"
    );
    let invoice = rig.invoice(acme, 0, "authorised").await;
    let refused = rig.sync(acme, invoice.id, "").await;
    assert_eq!(
        reason(&expect_code(refused, Code::FailedPrecondition)),
        "XERO_NOT_CONNECTED"
    );

    let before = chrono::Utc::now().timestamp();
    let (consent, connection) = rig.connect(acme, "Acme Books").await;
    assert_eq!(connection.status, "connected");
    assert_eq!(connection.xero_tenant_id, consent.tenant_id.to_string());
    assert_eq!(connection.organisation_name, "Acme Books");
    assert_eq!(connection.connected_by_user_id, acme.user_id);
    assert!(connection.access_token_expire_time.unwrap().seconds >= before + 1799);
    assert_eq!(connection.last_poll_time, None);
    let got = rig
        .connections()
        .get_xero_connection(acme.req(pb::GetXeroConnectionRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, connection);

    // The same state again (with a new code from a new consent) is refused, as is a
    // forged one.
    let mut reused = rig.consent(acme, "Acme Books").await;
    reused.state = consent.state.clone();
    assert_invalid(rig.complete(acme, &reused).await, &["state"]);
    let mut forged = rig.consent(acme, "Acme Books").await;
    forged.state = "a-state-we-never-issued".into();
    assert_invalid(rig.complete(acme, &forged).await, &["state"]);
    // Another tenant's state is refused, and stays good for that tenant.
    let theirs = rig.consent(globex, "Globex Books").await;
    assert_invalid(rig.complete(acme, &theirs).await, &["state"]);
    let globex_connection = rig.complete(globex, &theirs).await.unwrap();
    assert_eq!(globex_connection.organisation_name, "Globex Books");
    // An expired state is refused.
    let late = rig.consent(acme, "Acme Books").await;
    sqlx::query(
        "UPDATE finance.xero_states SET expires_at = now() - interval '1 second' WHERE state = $1",
    )
    .bind(&late.state)
    .execute(&rig.admin().await)
    .await
    .unwrap();
    assert_invalid(rig.complete(acme, &late).await, &["state"]);
    // Nor is a code Xero did not issue taken.
    let mut bad_code = rig.consent(acme, "Acme Books").await;
    bad_code.code = "not-a-code".into();
    assert_invalid(rig.complete(acme, &bad_code).await, &["code"]);
    // Acme is still connected as it was.
    let still = rig
        .connections()
        .get_xero_connection(acme.req(pb::GetXeroConnectionRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.xero_tenant_id, consent.tenant_id.to_string());

    // Disconnecting removes the connection at Xero and forgets the tokens here.
    let admin = rig.admin().await;
    let sealed: Vec<u8> = sqlx::query_scalar(
        "SELECT access_token FROM finance.xero_connections WHERE tenant_id = $1",
    )
    .bind(acme.tenant_id)
    .fetch_one(&admin)
    .await
    .unwrap();
    let cipher = rig.xero.token_cipher.clone().unwrap();
    let access_token = String::from_utf8(cipher.open(acme.tenant_id, &sealed).unwrap()).unwrap();
    let client = XeroClient::new(&rig.xero).unwrap();
    assert_eq!(client.connections(&access_token).await.unwrap().len(), 1);
    let disconnected = rig
        .connections()
        .disconnect_xero(acme.req(pb::DisconnectXeroRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disconnected.status, "disconnected");
    assert_eq!(disconnected.access_token_expire_time, None);
    assert!(client.connections(&access_token).await.unwrap().is_empty());
    let tokens: (Option<Vec<u8>>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT access_token, refresh_token FROM finance.xero_connections WHERE tenant_id = $1",
    )
    .bind(acme.tenant_id)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(tokens, (None, None));
    let refused = rig.sync(acme, invoice.id, "").await;
    assert_eq!(
        reason(&expect_code(refused, Code::FailedPrecondition)),
        "XERO_NOT_CONNECTED"
    );
    // Globex's connection is its own.
    let theirs = rig
        .connections()
        .get_xero_connection(globex.req(pb::GetXeroConnectionRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.status, "connected");
}

#[tokio::test]
async fn tokens_are_sealed_in_the_database_and_open_only_for_their_tenant() {
    let rig = Rig::default().await;
    let acme = &rig.app.acme;
    rig.connect(acme, "Acme Books").await;
    let (access, refresh): (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT access_token, refresh_token FROM finance.xero_connections WHERE tenant_id = $1",
    )
    .bind(acme.tenant_id)
    .fetch_one(&rig.admin().await)
    .await
    .unwrap();
    let cipher: TokenCipher = rig.xero.token_cipher.clone().unwrap();
    for sealed in [&access, &refresh] {
        let token = cipher.open(acme.tenant_id, sealed).expect("opens for acme");
        assert!(token.len() >= 20, "a real token");
        assert!(
            !sealed.windows(token.len()).any(|w| w == token.as_slice()),
            "the token is not stored in plaintext"
        );
        assert!(
            cipher.open(rig.app.globex.tenant_id, sealed).is_err(),
            "a sealed token does not open for another tenant"
        );
    }
    // The token works at Xero.
    let token = String::from_utf8(cipher.open(acme.tenant_id, &access).unwrap()).unwrap();
    let client = XeroClient::new(&rig.xero).unwrap();
    assert_eq!(client.connections(&token).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_push_creates_the_contact_and_invoice_once_then_updates_it() {
    let rig = Rig::default().await;
    let acme = &rig.app.acme;
    let (consent, _) = rig.connect(acme, "Acme Books").await;
    let organisation = consent.tenant_id;
    let buyer = rig.app.contact(acme, "Buyer").await;

    // Only submitted, authorised or paid invoices, with a contact, are pushed.
    let draft = rig.invoice(acme, buyer, "draft").await;
    let refused = rig.sync(acme, draft.id, "").await;
    assert_eq!(
        reason(&expect_code(refused, Code::FailedPrecondition)),
        "INVOICE_STATUS"
    );
    let nobody = rig.invoice(acme, 0, "authorised").await;
    assert_invalid(rig.sync(acme, nobody.id, "").await, &["id"]);
    assert_eq!(rig.fake.stats().invoices_created, 0);

    let invoice = rig.invoice(acme, buyer, "authorised").await;
    let first_request = request_id();
    let pushed = rig.sync(acme, invoice.id, &first_request).await.unwrap();
    assert_eq!(pushed.xero_sync_status, "synced");
    assert_eq!(pushed.xero_sync_error, "");
    assert!(pushed.last_sync_time.is_some());
    assert_ne!(pushed.etag, invoice.etag);
    let in_xero = rig.in_xero(organisation, &pushed);
    assert_eq!(in_xero["InvoiceNumber"], pushed.invoice_number.as_str());
    assert_eq!(in_xero["Status"], "AUTHORISED");
    assert_eq!(in_xero["Reference"], "Lot 12");
    assert_eq!(
        in_xero["Contact"]["ContactID"],
        pushed.xero_contact_id.as_str()
    );
    assert_eq!(in_xero["Contact"]["Name"], "Jo Buyer");
    assert_eq!(in_xero["Total"].to_string(), "1651.1");
    assert_eq!(pushed.amount, "1651.10");
    let xero_lines = in_xero["LineItems"].as_array().unwrap();
    assert_eq!(xero_lines.len(), 2);
    for (ours, theirs) in pushed.line_items.iter().zip(xero_lines) {
        assert!(!ours.xero_line_item_id.is_empty());
        assert_eq!(theirs["LineItemID"], ours.xero_line_item_id.as_str());
        assert_eq!(theirs["Description"], ours.description.as_str());
        assert_eq!(theirs["AccountCode"], "200");
    }
    let stats = rig.fake.stats();
    assert_eq!((stats.contacts_created, stats.invoices_created), (1, 1));

    // A retry with the same request id answers the same, without calling Xero.
    let retried = rig.sync(acme, invoice.id, &first_request).await.unwrap();
    assert_eq!(retried, pushed);
    assert_eq!(rig.fake.stats().requests, stats.requests);

    // A second push updates the same invoice, lines kept in place.
    let updated = rig.sync(acme, invoice.id, &request_id()).await.unwrap();
    assert_eq!(updated.xero_invoice_id, pushed.xero_invoice_id);
    assert_eq!(updated.xero_contact_id, pushed.xero_contact_id);
    let ids = |i: &pb::Invoice| -> Vec<String> {
        i.line_items
            .iter()
            .map(|l| l.xero_line_item_id.clone())
            .collect()
    };
    assert_eq!(ids(&updated), ids(&pushed));
    assert!(at(&updated) > at(&pushed));
    let stats = rig.fake.stats();
    assert_eq!((stats.contacts_created, stats.invoices_created), (1, 1));
    assert_eq!(
        rig.in_xero(organisation, &updated)["LineItems"],
        in_xero["LineItems"]
    );

    // Another invoice of the same buyer reuses the contact, a submitted one goes as
    // submitted.
    let second = rig.invoice(acme, buyer, "submitted").await;
    let second = rig.sync(acme, second.id, "").await.unwrap();
    assert_eq!(second.xero_contact_id, pushed.xero_contact_id);
    assert_eq!(rig.in_xero(organisation, &second)["Status"], "SUBMITTED");
    let stats = rig.fake.stats();
    assert_eq!((stats.contacts_created, stats.invoices_created), (1, 2));
    assert_eq!(stats.rate_limited, 0);
}

#[tokio::test]
async fn an_approval_pushes_when_the_tenant_asks_for_it_and_xero_is_connected() {
    let rig = Rig::default().await;
    let acme = &rig.app.acme;
    let buyer = rig.app.contact(acme, "Buyer").await;
    // Not asked for: an approval stays here.
    let (consent, _) = rig.connect(acme, "Acme Books").await;
    let quiet = rig.invoice(acme, buyer, "authorised").await;
    assert_eq!(quiet.xero_sync_status, "not_synced");

    rig.sync_on_approval(acme).await;
    let submitted = rig.invoice(acme, buyer, "submitted").await;
    let approved = rig.approve(acme, submitted.id).await;
    assert_eq!(approved.status, "authorised");
    assert_eq!(approved.xero_sync_status, "synced");
    assert_eq!(
        rig.in_xero(consent.tenant_id, &approved)["Status"],
        "AUTHORISED"
    );
    assert_eq!(rig.get(acme, approved.id).await, approved);
    assert_eq!(rig.fake.stats().invoices_created, 1);

    // A retried approval is answered as the first, without a second push.
    let request = request_id();
    let id = rig.invoice(acme, buyer, "submitted").await.id;
    let approve = |request: String| {
        let mut invoices = rig.app.invoices();
        async move {
            invoices
                .approve_invoice(acme.req(pb::ApproveInvoiceRequest {
                    id,
                    request_id: request,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = approve(request.clone()).await;
    assert_eq!(first.xero_sync_status, "synced");
    let requests = rig.fake.stats().requests;
    approve(request).await;
    assert_eq!(rig.fake.stats().requests, requests);

    // An invoice that cannot go is approved all the same, the reason on it.
    let nobody = rig.invoice(acme, 0, "submitted").await;
    let approved = rig.approve(acme, nobody.id).await;
    assert_eq!(
        (approved.status.as_str(), approved.xero_sync_status.as_str()),
        ("authorised", "failed")
    );
    assert!(
        approved.xero_sync_error.contains("has no contact_id"),
        "{approved:?}"
    );

    // Disconnected: the approval stays here.
    rig.connections()
        .disconnect_xero(acme.req(pb::DisconnectXeroRequest {}))
        .await
        .unwrap();
    let submitted = rig.invoice(acme, buyer, "submitted").await;
    let approved = rig.approve(acme, submitted.id).await;
    assert_eq!(
        (approved.status.as_str(), approved.xero_sync_status.as_str()),
        ("authorised", "not_synced")
    );
}

#[tokio::test]
async fn xeros_refusal_is_recorded_on_the_invoice_and_the_approval_stands() {
    let rig = Rig::default().await;
    let (acme, globex) = (&rig.app.acme, &rig.app.globex);
    // Both tenants keep their books in one organisation; both number from INV-1.
    rig.connect(acme, "Shared Books").await;
    rig.connect(globex, "Shared Books").await;
    let acme_buyer = rig.app.contact(acme, "Buyer").await;
    let ours = rig.invoice(acme, acme_buyer, "authorised").await;
    rig.sync(acme, ours.id, "").await.unwrap();

    rig.sync_on_approval(globex).await;
    let globex_buyer = rig.app.contact(globex, "Buyer").await;
    let theirs = rig.invoice(globex, globex_buyer, "submitted").await;
    assert_eq!(theirs.invoice_number, ours.invoice_number);
    let approved = rig.approve(globex, theirs.id).await;
    assert_eq!(approved.status, "authorised");
    assert_eq!(approved.xero_sync_status, "failed");
    assert!(
        approved
            .xero_sync_error
            .contains("Invoice # must be unique"),
        "{approved:?}"
    );
    assert_eq!(approved.xero_invoice_id, "");

    let refused = rig.sync(globex, theirs.id, &request_id()).await;
    let status = expect_code(refused, Code::FailedPrecondition);
    assert_eq!(reason(&status), "XERO_REJECTED");
    assert!(
        status.message().contains("Invoice # must be unique"),
        "{status:?}"
    );
    let recorded = rig.get(globex, theirs.id).await;
    assert_eq!(recorded.xero_sync_status, "failed");
    assert!(
        recorded
            .xero_sync_error
            .contains("Invoice # must be unique")
    );
    assert_eq!(rig.fake.stats().invoices_created, 1);
}

#[tokio::test]
async fn xero_out_of_reach_is_unavailable_and_recorded() {
    // Nothing listens where the API is said to be.
    let closed = format!("http://127.0.0.1:{}", fusion_testkit::free_port());
    let rig = Rig::start(FakeXeroOptions::default(), |xero| xero.api_url = closed).await;
    let acme = &rig.app.acme;
    // A connection as CompleteXeroConnection leaves it (it cannot complete: /connections
    // is on the API).
    let cipher = rig.xero.token_cipher.clone().unwrap();
    sqlx::query(
        "INSERT INTO finance.xero_connections
             (tenant_id, xero_tenant_id, organisation_name, access_token, refresh_token,
              access_expires_at)
         VALUES ($1, $2, 'Acme Books', $3, $4, now() + interval '30 minutes')",
    )
    .bind(acme.tenant_id)
    .bind(Uuid::new_v4().to_string())
    .bind(cipher.seal(acme.tenant_id, b"an-access-token"))
    .bind(cipher.seal(acme.tenant_id, b"a-refresh-token"))
    .execute(&rig.admin().await)
    .await
    .unwrap();
    let buyer = rig.app.contact(acme, "Buyer").await;
    let invoice = rig.invoice(acme, buyer, "authorised").await;
    let refused = rig.sync(acme, invoice.id, "").await;
    let status = expect_code(refused, Code::Unavailable);
    assert_eq!(reason(&status), "XERO_UNAVAILABLE");
    let recorded = rig.get(acme, invoice.id).await;
    assert_eq!(recorded.xero_sync_status, "failed");
    assert!(
        recorded.xero_sync_error.contains("not available"),
        "{recorded:?}"
    );
}

#[tokio::test]
async fn concurrent_pushes_with_an_expired_token_refresh_it_once() {
    let rig = Rig::start(
        FakeXeroOptions {
            access_token_lifetime: Duration::from_secs(1),
            ..FakeXeroOptions::default()
        },
        |_| {},
    )
    .await;
    let acme = &rig.app.acme;
    let connected_at = Instant::now();
    rig.connect(acme, "Acme Books").await;
    let buyer = rig.app.contact(acme, "Buyer").await;
    let mut invoices = Vec::new();
    for _ in 0..8 {
        invoices.push(rig.invoice(acme, buyer, "authorised").await);
    }
    // The token is expired at Xero; the next one lasts.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(connected_at.elapsed())).await;
    rig.fake
        .set_access_token_lifetime(Duration::from_secs(1800));
    let pushes = invoices.iter().map(|i| rig.sync(acme, i.id, ""));
    let pushed = futures::future::join_all(pushes).await;
    for result in &pushed {
        let invoice = result.as_ref().expect("every push succeeds");
        assert_eq!(invoice.xero_sync_status, "synced");
    }
    let stats = rig.fake.stats();
    assert_eq!(stats.tokens_refreshed, 1, "{stats:?}");
    assert_eq!((stats.contacts_created, stats.invoices_created), (1, 8));
    // The new tokens were stored: a later push needs no refresh.
    let later = rig.invoice(acme, buyer, "authorised").await;
    rig.sync(acme, later.id, "").await.unwrap();
    assert_eq!(rig.fake.stats().tokens_refreshed, 1);
}

#[tokio::test]
async fn a_payment_in_xero_arrives_by_webhook_once_and_a_void_too() {
    let rig = Rig::default().await;
    let acme = &rig.app.acme;
    let (consent, _) = rig.connect(acme, "Acme Books").await;
    let organisation = consent.tenant_id;
    let buyer = rig.app.contact(acme, "Buyer").await;
    let invoice = rig.invoice(acme, buyer, "authorised").await;
    let invoice = rig.sync(acme, invoice.id, "").await.unwrap();
    let url = rig.webhook_url();

    // Xero's intent-to-receive check: a good signature 200, a bad one 401, both empty.
    assert_eq!(
        rig.fake.send_webhook(&url, WEBHOOK_KEY, vec![]).await,
        (200, String::new())
    );
    assert_eq!(
        rig.fake.send_webhook(&url, "not-the-key", vec![]).await,
        (401, String::new())
    );

    let xero_id = Uuid::parse_str(&invoice.xero_invoice_id).unwrap();
    let paid = rig
        .fake
        .pay_invoice(organisation, xero_id, Decimal::new(165_110, 2))
        .unwrap();
    let payment_id = paid["Payments"][0]["PaymentID"]
        .as_str()
        .unwrap()
        .to_owned();
    // A badly signed delivery changes nothing.
    let event = rig.fake.invoice_event(organisation, xero_id);
    assert_eq!(
        rig.fake
            .send_webhook(&url, "not-the-key", vec![event.clone()])
            .await
            .0,
        401
    );
    assert_eq!(
        rig.fake
            .send_webhook(&url, WEBHOOK_KEY, vec![event.clone()])
            .await,
        (200, String::new())
    );
    let reconciled = until(
        Duration::from_secs(10),
        "the payment reconciled",
        || async {
            let now = rig.get(acme, invoice.id).await;
            (now.status == "paid").then_some(now)
        },
    )
    .await;
    assert_eq!(reconciled.amount_due, "0.00");
    assert_eq!(reconciled.payments.len(), 1);
    assert_eq!(reconciled.payments[0].xero_payment_id, payment_id);
    assert_eq!(reconciled.payments[0].amount, "1651.10");
    assert!(at(&reconciled) > at(&invoice));
    let admin = rig.admin().await;
    assert_eq!(paid_events(&admin, &invoice).await, 1);

    // Delivered again, then a void of another invoice: once the void is here, the
    // repeat was taken too (one worker, in order), and changed nothing.
    let other = rig.invoice(acme, buyer, "authorised").await;
    let other = rig.sync(acme, other.id, "").await.unwrap();
    let other_id = Uuid::parse_str(&other.xero_invoice_id).unwrap();
    rig.fake.void_invoice(organisation, other_id).unwrap();
    let void = rig.fake.invoice_event(organisation, other_id);
    assert_eq!(
        rig.fake
            .send_webhook(&url, WEBHOOK_KEY, vec![event, void])
            .await
            .0,
        200
    );
    until(Duration::from_secs(10), "the void reconciled", || async {
        (rig.get(acme, other.id).await.status == "voided").then_some(())
    })
    .await;
    let again = rig.get(acme, invoice.id).await;
    assert_eq!(again.payments.len(), 1);
    assert_eq!(again.etag, reconciled.etag);
    assert_eq!(paid_events(&admin, &invoice).await, 1);
}

#[tokio::test]
async fn the_poll_catches_a_payment_no_webhook_announced() {
    let rig = Rig::start(FakeXeroOptions::default(), |xero| {
        xero.poll_interval = Duration::from_secs(1);
    })
    .await;
    let acme = &rig.app.acme;
    let (consent, _) = rig.connect(acme, "Acme Books").await;
    let buyer = rig.app.contact(acme, "Buyer").await;
    let invoice = rig.invoice(acme, buyer, "authorised").await;
    let invoice = rig.sync(acme, invoice.id, "").await.unwrap();
    let xero_id = Uuid::parse_str(&invoice.xero_invoice_id).unwrap();
    rig.fake
        .pay_invoice(consent.tenant_id, xero_id, Decimal::new(50_000, 2))
        .unwrap();
    let partly = until(Duration::from_secs(15), "the payment polled", || async {
        let now = rig.get(acme, invoice.id).await;
        (!now.payments.is_empty()).then_some(now)
    })
    .await;
    assert_eq!(
        (
            partly.status.as_str(),
            partly.amount_paid.as_str(),
            partly.amount_due.as_str()
        ),
        ("authorised", "500.00", "1151.10")
    );
    let connection = rig
        .connections()
        .get_xero_connection(acme.req(pb::GetXeroConnectionRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(connection.last_poll_time.is_some());
    // The rest, paid later, is caught by a later poll; nothing is recorded twice.
    rig.fake
        .pay_invoice(consent.tenant_id, xero_id, Decimal::new(115_110, 2))
        .unwrap();
    let paid = until(Duration::from_secs(15), "the rest polled", || async {
        let now = rig.get(acme, invoice.id).await;
        (now.status == "paid").then_some(now)
    })
    .await;
    assert_eq!(paid.payments.len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.get(acme, invoice.id).await.payments.len(), 2);
    assert_eq!(paid_events(&rig.admin().await, &invoice).await, 1);
}
