//! The finance context (`fusion.finance.v1`): what the developer owes on each sale
//! (invoices whose totals the server computes exactly, numbered without gaps), who is
//! paid what commission and when (plans split between recipients and paid over lot
//! milestones), and the same invoices in Xero without typing them twice.
//!
//! Shape: [`Application::build`] wires the database, the clients of identity, crm and
//! property (reference checks as the caller, see [`refs`]), the purge job, the relay
//! of its outbox to NATS (finance publishes `finance.invoice.paid`), its consumers of
//! other contexts' events ([`deal_commissions`]: a won deal's commissions, taken back
//! when it is lost or reopened; [`lot_milestones`]: commissions payable as the deal's
//! lot is exchanged, unconditional or settled) and the gRPC services into a
//! [`fusion_service::Server`]; `main.rs` only reads configuration. Proto types stop at
//! [`grpc`]; [`domain`] holds the money rules; [`xero`] is the Xero client (with its
//! limiter, token sealing and webhook endpoint) that `xero_sync` uses to connect
//! tenants, push their invoices and reconcile what changed in Xero. With Xero
//! configured, `build` also serves the webhook endpoint (`FINANCE_WEBHOOK_ADDR`, when
//! `FINANCE_XERO_WEBHOOK_KEY` is set) and runs the reconciliation worker and the poll
//! (both need the jobs URL: they find the tenants of a Xero organisation across
//! tenants).

pub mod config;
pub mod deal_commissions;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod lot_milestones;
pub mod refs;
mod state;
mod store;
pub mod xero;
mod xero_sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use fusion_service::{Background, Host, Serving};
use fusion_tenancy::KeyProvider;

pub use config::FinanceConfig;
pub use error::FinanceError;
pub use state::AppState;

/// The finance schema's migrations, applied by `fusion-finance migrate` (the
/// Kubernetes Job) or at start-up when a migration URL is configured.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/finance");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "finance";

/// Error domain of this context.
pub const DOMAIN: &str = "finance.fusion";

/// Soft-deletable tables, purged children first.
pub const PURGED_TABLES: &[&str] = &[
    "finance.commissions",
    "finance.commission_plans",
    "finance.invoices",
];

/// The channels to the contexts finance refers to.
#[derive(Clone, Debug)]
pub struct Peers {
    /// Identity: users, and token keys.
    pub identity: Channel,
    /// Crm: deals and contacts.
    pub crm: Channel,
    /// Property: projects and lots.
    pub property: Channel,
}

/// What finance's event consumers share (`None` without NATS): with service
/// credentials configured, each acts in its event's tenant as finance's system account
/// there, with tokens from identity over `identity`.
pub async fn event_consumers(
    config: &FinanceConfig,
    db: &fusion_db::Db,
    identity: Channel,
    metrics: &fusion_events::EventMetrics,
) -> anyhow::Result<Option<fusion_events::Consumers>> {
    let Some(nats_url) = &config.service.nats_url else {
        return Ok(None);
    };
    let credentials = config
        .service_credentials
        .as_ref()
        .map(|c| fusion_events::ServiceCredentials::new(identity, &c.client_id, &c.client_secret));
    if credentials.is_none() {
        tracing::warn!(
            "no service credentials (FINANCE_SERVICE_CLIENT_SECRET): event consumers act as \
             nobody, and cannot ask property which project a won deal's lot is in"
        );
    }
    let consumers = fusion_events::Consumers::connect(
        db.clone(),
        nats_url,
        "finance",
        metrics.clone(),
        credentials,
    )
    .await?;
    Ok(Some(consumers))
}

/// A running finance service.
#[derive(Debug)]
pub struct Application {
    host: Host,
    state: AppState,
    webhook_addr: Option<SocketAddr>,
}

impl Application {
    /// Connects and serves on the given listeners (bind port 0 in tests and read the
    /// port back). Tokens are verified with the keys `keys` provides (identity's JWKS
    /// in production); references are checked over `peers`.
    pub async fn build(
        config: FinanceConfig,
        keys: Arc<dyn KeyProvider>,
        peers: Peers,
        grpc: TcpListener,
        admin: TcpListener,
    ) -> anyhow::Result<Self> {
        let db = fusion_service::open_database(
            &config.service,
            config.migrate_on_start,
            SCHEMA,
            &MIGRATOR,
        )
        .await?;
        let mut background = Background::new();
        let events = fusion_events::EventMetrics::new();
        let xero = xero_sync::XeroLink::from_config(&config.xero)?.map(Arc::new);
        let mut webhook_addr = None;
        // Purging, pruning, relaying and finding a Xero organisation's tenants cross
        // tenants: they run as finance's jobs role.
        if let Some(jobs_url) = config.service.jobs_url() {
            let jobs = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect_lazy(jobs_url)
                .context("the jobs database URL is not valid")?;
            if let Some(link) = &xero {
                webhook_addr = start_xero_jobs(
                    &config.xero,
                    xero_sync::pull::Reconciler::new(db.clone(), jobs.clone(), link.clone()),
                    &mut background,
                )
                .await?;
            }
            background.push(
                fusion_events::InboxPruner::new(
                    jobs.clone(),
                    fusion_events::InboxPruneConfig::new(SCHEMA),
                )
                .spawn(background.stopped()),
            );
            background.push(fusion_db::soft_delete::spawn_purge_job(
                jobs,
                PURGED_TABLES.to_vec(),
                "finance.idempotency_keys",
                config.purge_retention,
                Duration::from_secs(3600),
                background.stopped(),
            ));
            if let Some(nats_url) = &config.service.nats_url {
                let mut relay = fusion_events::RelayConfig::new(SCHEMA);
                relay.retention = config.service.relay_retention;
                background.push(
                    fusion_events::relay::start(
                        jobs_url,
                        nats_url,
                        relay,
                        events.clone(),
                        background.stopped(),
                    )
                    .await?,
                );
            }
        }
        if xero.is_some() && config.service.jobs_url().is_none() {
            tracing::warn!(
                "Xero webhooks and the Xero poll need the jobs database URL; they are off"
            );
        }
        let refs = refs::Refs::new(peers.identity.clone(), peers.crm, peers.property);
        // Crm's deal events on one consumer (so one deal's are applied in order),
        // property's lot events on another. They write as the application role, in
        // each event's tenant.
        if let Some(consumers) = event_consumers(&config, &db, peers.identity, &events).await? {
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(
                    deal_commissions::CONSUMER,
                    SCHEMA,
                    deal_commissions::EVENTS,
                ),
                deal_commissions::DealCommissions { refs: refs.clone() },
                background.stopped(),
            ));
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(
                    lot_milestones::CONSUMER,
                    SCHEMA,
                    lot_milestones::EVENTS,
                ),
                lot_milestones::LotMilestones,
                background.stopped(),
            ));
        }
        let state = AppState::new(db.clone(), Arc::new(config.clone()), refs, xero);
        let host = Host::start(
            &config.service,
            &db,
            Serving {
                routes: grpc::routes(&state),
                policy: grpc::policy(),
                keys,
                key_refresh: Duration::from_secs(10),
                package: fusion_proto::finance::v1::PACKAGE,
            },
            background,
            grpc,
            admin,
        )
        .await?;
        host.metrics()
            .register(|registry| events.register(registry));
        Ok(Self {
            host,
            state,
            webhook_addr,
        })
    }

    /// Where the Xero webhook endpoint listens, when it runs (Xero configured with a
    /// webhook key and the jobs URL).
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// Shared state, for tests and seeding.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then drains and stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.host.run_until_stopped().await
    }

    /// Stops gracefully and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.host.stop().await
    }
}

/// Starts Xero's reconciliation: the poll, and with a webhook key the worker and the
/// webhook endpoint on `FINANCE_WEBHOOK_ADDR`, whose bound address is returned. All stop
/// with the service.
async fn start_xero_jobs(
    config: &xero::XeroConfig,
    reconciler: xero_sync::pull::Reconciler,
    background: &mut Background,
) -> anyhow::Result<Option<SocketAddr>> {
    let reconciler = Arc::new(reconciler);
    background.push(
        reconciler
            .clone()
            .spawn_poll(config.poll_interval, background.stopped()),
    );
    let Some(key) = &config.webhook_key else {
        tracing::info!("FINANCE_XERO_WEBHOOK_KEY is not set: no Xero webhook endpoint");
        return Ok(None);
    };
    let (queue, worker) = reconciler.spawn_worker(background.stopped());
    background.push(worker);
    let listener = TcpListener::bind(config.webhook_addr)
        .await
        .with_context(|| format!("binding the Xero webhook address {}", config.webhook_addr))?;
    let addr = listener.local_addr()?;
    let router = xero::webhook::router(key.as_bytes(), Arc::new(queue));
    let mut stopped = background.stopped();
    background.push(tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|&stop| stop).await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the Xero webhook endpoint stopped");
        }
    }));
    tracing::info!(%addr, path = xero::webhook::PATH, "Xero webhook endpoint serving");
    Ok(Some(addr))
}
