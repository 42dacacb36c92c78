//! Pushing 300 invoices to Xero through `InvoiceService/SyncInvoiceToXero`, against the
//! test kit's fake Xero with its limits and finance's limiter set alike: does the
//! limiter keep every call within the limits (no 429) while losing no more than 10 %
//! on the best time those limits allow?
//!
//! ```text
//! cargo run --release -p fusion-e2e --bin fusion-bench-xero
//! ```
//!
//! Two runs, each on a fresh database with identity, property, crm and finance in this
//! process and the fake answering every Accounting API call after 50 ms:
//!
//! - 600 calls per minute, 5 at once (`FINANCE_XERO_LIMIT_PER_MINUTE=600`): the minute
//!   never fills, so the 5 calls in progress bind;
//! - Xero's own 60 per minute, the minute scaled down to 6 s so the run takes seconds:
//!   the rolling window binds.
//!
//! Each run connects a tenant, makes 300 authorised invoices for 10 crm buyers, then
//! 20 callers push them all (`SyncInvoiceToXero` each). The Xero calls are the 300
//! invoice creations plus the contact calls (a search and a creation the first time a
//! buyer is pushed, repeated by pushes of the same buyer that start before the first
//! finished; Xero's Idempotency-Key makes those repeats replays). With `n` calls
//! admitted, `c` at once, latency `l` and `p` calls per window `w`, no client can
//! finish sooner than
//!
//! - `⌈n / c⌉ × l` (every call holds one of the `c` places for `l`), nor
//! - `⌊(n − 1) / p⌋ × w + ⌈r / c⌉ × l`, where `r = n − ⌊(n − 1) / p⌋ × p` are the
//!   calls of the last window (the `k`-th call cannot start before `⌊k / p⌋ × w`);
//!
//! the best time is the larger. The run fails unless it saw no 429 and took at most
//! 110 % of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tonic::transport::{Channel, Endpoint};

use fusion_finance::xero::XeroConfig;
use fusion_finance::{FinanceConfig, Peers};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::contact_service_client::ContactServiceClient;
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::invoice_service_client::InvoiceServiceClient;
use fusion_proto::finance::v1::xero_service_client::XeroServiceClient;
use fusion_service::ServiceConfig;
use fusion_tenancy::IdentityJwks;
use fusion_testkit::people::User;
use fusion_testkit::xero::{FakeLimits, FakeXero, FakeXeroOptions};
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

const INVOICES: usize = 300;
const BUYERS: usize = 10;
/// Concurrent `SyncInvoiceToXero` callers: more than the 5 places, so that the limiter
/// always has a call waiting.
const CALLERS: usize = 20;
/// Calls in progress at once, Xero's limit.
const CONCURRENT: usize = 5;
/// How long the fake takes to answer each admitted call.
const LATENCY: Duration = Duration::from_millis(50);
const PASSWORD: &str = "bench password 1";
/// `FINANCE_SECRET_KEY` for the run: the base64 of 32 bytes.
const SECRET_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// The limits of one run, the fake's and the limiter's alike.
struct Limits {
    label: &'static str,
    per_window: usize,
    window: Duration,
}

const RUNS: [Limits; 2] = [
    Limits {
        label: "600/min",
        per_window: 600,
        window: Duration::from_secs(60),
    },
    Limits {
        label: "60/min scaled to 60/6 s",
        per_window: 60,
        window: Duration::from_secs(6),
    },
];

/// What one run measured.
struct Outcome {
    calls: usize,
    contacts: u64,
    elapsed: Duration,
    best: Duration,
    rate_limited: u64,
    peak_concurrent: usize,
    peak_per_window: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "| limits | invoices | Xero calls | contacts created | elapsed s | best s | elapsed / best | 429s | peak in progress | peak per window |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = Vec::new();
    for limits in &RUNS {
        let o = run(limits).await?;
        let ratio = o.elapsed.as_secs_f64() / o.best.as_secs_f64();
        println!(
            "| {} | {INVOICES} | {} | {} | {:.2} | {:.2} | {ratio:.3} | {} | {} | {} |",
            limits.label,
            o.calls,
            o.contacts,
            o.elapsed.as_secs_f64(),
            o.best.as_secs_f64(),
            o.rate_limited,
            o.peak_concurrent,
            o.peak_per_window,
        );
        if o.rate_limited > 0 || ratio > 1.10 {
            failed.push(limits.label);
        }
    }
    if !failed.is_empty() {
        bail!("past the goal (no 429, within 10 % of the best time): {failed:?}");
    }
    Ok(())
}

/// The best time `calls` calls allow (see the module docs).
fn best_time(calls: usize, limits: &Limits) -> Duration {
    let rounds = |n: usize| u32::try_from(n.div_ceil(CONCURRENT)).unwrap_or(u32::MAX);
    let by_concurrency = LATENCY * rounds(calls);
    let full_windows = calls.saturating_sub(1) / limits.per_window;
    let last = calls - full_windows * limits.per_window;
    let by_window =
        limits.window * u32::try_from(full_windows).unwrap_or(u32::MAX) + LATENCY * rounds(last);
    by_concurrency.max(by_window)
}

async fn run(limits: &Limits) -> anyhow::Result<Outcome> {
    let fake = FakeXero::start(FakeXeroOptions {
        latency: LATENCY,
        limits: FakeLimits {
            concurrent: CONCURRENT,
            per_minute: limits.per_window,
            minute: limits.window,
            ..FakeLimits::default()
        },
        ..FakeXeroOptions::default()
    })
    .await;
    let app = App::start(xero_config(&fake, limits)?).await?;
    let who = &app.admin;

    let mut buyers = Vec::new();
    for n in 0..BUYERS {
        let contact = ContactServiceClient::new(app.crm.clone())
            .create_contact(who.req(crm::CreateContactRequest {
                contact: Some(crm::Contact {
                    first_name: "Buyer".into(),
                    last_name: format!("Number {n}"),
                    email: format!("buyer{n}@example.com"),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await?
            .into_inner();
        buyers.push(contact.id);
    }

    let mut xero = XeroServiceClient::new(app.finance.clone());
    let started = xero
        .start_xero_connection(who.req(pb::StartXeroConnectionRequest {}))
        .await?
        .into_inner();
    let consent = fake
        .consent(&started.authorization_uri, "Bench Books")
        .map_err(anyhow::Error::msg)?;
    xero.complete_xero_connection(who.req(pb::CompleteXeroConnectionRequest {
        code: consent.code,
        state: consent.state,
    }))
    .await?;

    let ids = authorised_invoices(&app, &buyers).await?;
    let before = fake.stats();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let t0 = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (next, ids) = (next.clone(), ids.clone());
            let mut invoices = InvoiceServiceClient::new(app.finance.clone());
            let who = who.clone();
            tokio::spawn(async move {
                while let Some(&id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let pushed = invoices
                        .sync_invoice_to_xero(who.req(pb::SyncInvoiceToXeroRequest {
                            id,
                            request_id: String::new(),
                        }))
                        .await?
                        .into_inner();
                    anyhow::ensure!(pushed.xero_sync_status == "synced", "{pushed:?}");
                }
                Ok(())
            })
        })
        .collect();
    for caller in callers {
        caller.await??;
    }
    let elapsed = t0.elapsed();
    let after = fake.stats();
    anyhow::ensure!(
        after.invoices_created - before.invoices_created == INVOICES as u64,
        "every invoice created once in Xero"
    );
    let calls = usize::try_from(after.admitted - before.admitted)?;
    Ok(Outcome {
        calls,
        contacts: after.contacts_created - before.contacts_created,
        elapsed,
        best: best_time(calls, limits),
        rate_limited: after.rate_limited - before.rate_limited,
        peak_concurrent: after.peak_concurrent,
        peak_per_window: after.peak_per_minute,
    })
}

/// Finance's Xero settings for `fake`, the limits set as an operator would
/// (`FINANCE_XERO_LIMIT_*`); only the scaled window is set in code.
fn xero_config(fake: &FakeXero, limits: &Limits) -> anyhow::Result<XeroConfig> {
    let app = FakeXeroOptions::default();
    let vars: HashMap<&str, String> = HashMap::from([
        ("FINANCE_XERO_API_URL", fake.url()),
        ("FINANCE_XERO_IDENTITY_URL", fake.url()),
        ("FINANCE_XERO_AUTHORIZE_URL", fake.authorize_url()),
        ("FINANCE_XERO_CLIENT_ID", app.client_id),
        ("FINANCE_XERO_CLIENT_SECRET", app.client_secret),
        ("FINANCE_XERO_REDIRECT_URI", app.redirect_uri),
        ("FINANCE_SECRET_KEY", SECRET_KEY.to_owned()),
        ("FINANCE_XERO_LIMIT_CONCURRENT", CONCURRENT.to_string()),
        (
            "FINANCE_XERO_LIMIT_PER_MINUTE",
            limits.per_window.to_string(),
        ),
    ]);
    let mut config = XeroConfig::from_lookup(|name| vars.get(name).cloned())?;
    config.limits.minute = limits.window;
    Ok(config)
}

/// `INVOICES` invoices, created, submitted and approved (8 at a time), round-robin over
/// `buyers`.
async fn authorised_invoices(app: &App, buyers: &[i64]) -> anyhow::Result<Vec<i64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let buyers = Arc::new(buyers.to_vec());
    let makers: Vec<_> = (0..8)
        .map(|_| {
            let (next, buyers) = (next.clone(), buyers.clone());
            let mut invoices = InvoiceServiceClient::new(app.finance.clone());
            let who = app.admin.clone();
            tokio::spawn(async move {
                let mut made = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= INVOICES {
                        return Ok::<_, anyhow::Error>(made);
                    }
                    let invoice = invoices
                        .create_invoice(who.req(pb::CreateInvoiceRequest {
                            invoice: Some(pb::Invoice {
                                contact_id: buyers[n % buyers.len()],
                                reference: format!("Lot {n}"),
                                line_items: vec![pb::InvoiceLineItem {
                                    description: "Deposit".into(),
                                    quantity: "1".into(),
                                    unit_price: "1000.00".into(),
                                    tax_rate: "10".into(),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        }))
                        .await?
                        .into_inner();
                    invoices
                        .submit_invoice(who.req(pb::SubmitInvoiceRequest {
                            id: invoice.id,
                            ..Default::default()
                        }))
                        .await?;
                    invoices
                        .approve_invoice(who.req(pb::ApproveInvoiceRequest {
                            id: invoice.id,
                            ..Default::default()
                        }))
                        .await?;
                    made.push(invoice.id);
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for maker in makers {
        ids.extend(maker.await??);
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Identity, property, crm and finance on one fresh database, and acme's admin.
struct App {
    // Held for the run's life: dropping them stops the services.
    _db: TestDatabase,
    _identity: fusion_identity::Application,
    _property: fusion_property::Application,
    _crm: fusion_crm::Application,
    _finance: fusion_finance::Application,
    crm: Channel,
    finance: Channel,
    admin: User,
}

fn lazy(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy()
}

impl App {
    async fn start(xero: XeroConfig) -> anyhow::Result<App> {
        let db = TestDatabase::create(&[
            (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
            (fusion_finance::SCHEMA, &fusion_finance::MIGRATOR),
        ])
        .await;
        let identity = fusion_identity::Application::build(
            fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
                "identity",
                db.app_url("identity"),
            )),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await?;
        fusion_identity::bootstrap::ensure_tenant(
            &identity.state().db,
            "acme",
            "acme homes",
            "admin@acme.test",
            PASSWORD,
        )
        .await?;
        let identity_channel = lazy(identity.grpc_addr());
        let keys = || Arc::new(IdentityJwks::new(identity_channel.clone()));

        let mut property_config = fusion_property::PropertyConfig::with_defaults(
            ServiceConfig::local("property", db.app_url("property")),
        );
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::env::temp_dir()
                .join("fusion-bench-xero-media")
                .join(&db.name),
        };
        let crm_listener = bind_ephemeral().await;
        let crm_channel = lazy(crm_listener.local_addr()?);
        let property = fusion_property::Application::build(
            property_config,
            keys(),
            crm_channel.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await?;
        let property_channel = lazy(property.grpc_addr());
        let crm = fusion_crm::Application::build(
            fusion_crm::CrmConfig::with_defaults(ServiceConfig::local("crm", db.app_url("crm"))),
            keys(),
            identity_channel.clone(),
            property_channel.clone(),
            crm_listener,
            bind_ephemeral().await,
        )
        .await?;

        let mut service = ServiceConfig::local("finance", db.app_url("finance"));
        service.jobs_database_url = Some(db.jobs_url(fusion_finance::SCHEMA));
        let mut config = FinanceConfig::with_defaults(service);
        config.xero = xero;
        let finance = fusion_finance::Application::build(
            config,
            keys(),
            Peers {
                identity: identity_channel.clone(),
                crm: crm_channel.clone(),
                property: property_channel,
            },
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .context("finance starts")?;
        let finance_channel = connect_channel(finance.grpc_addr()).await;
        let admin = fusion_testkit::people::login(
            &connect_channel(identity.grpc_addr()).await,
            "admin@acme.test",
            PASSWORD,
        )
        .await;
        Ok(App {
            _db: db,
            _identity: identity,
            _property: property,
            _crm: crm,
            _finance: finance,
            crm: crm_channel,
            finance: finance_channel,
            admin,
        })
    }
}
