//! The CRM context (`fusion.crm.v1`): where sales teams live all day — leads, contacts,
//! deals, tasks and notes, moving through each tenant's own lead statuses and deal
//! stages.
//!
//! Shape: [`Application::build`] wires the database, the clients of identity and
//! property (for reference checks, see [`refs`]), the purge job, the relay of its
//! outbox to NATS (`fusion-events`; crm publishes `crm.deal.won`, `crm.deal.lost`,
//! `crm.deal.reopened` and `crm.lead.converted`), its consumers of property's lot events ([`lot_sales`]: a won
//! deal whose lot could not be sold is flagged; [`lot_notes`]: open deals are told
//! when their lot's status changes) and the gRPC services into a
//! [`fusion_service::Server`]; `main.rs` only reads configuration. Proto types stop at
//! [`grpc`]; [`domain`] holds the rules.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod lot_notes;
pub mod lot_sales;
pub mod refs;
mod state;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use fusion_service::{Background, Host, Serving};
use fusion_tenancy::KeyProvider;

pub use config::CrmConfig;
pub use error::CrmError;
pub use state::AppState;

/// The crm schema's migrations, applied by `fusion-crm migrate` (the Kubernetes Job)
/// or at start-up when a migration URL is configured.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "crm";

/// Error domain of this context.
pub const DOMAIN: &str = "crm.fusion";

/// Soft-deletable tables, purged children first.
pub const PURGED_TABLES: &[&str] = &[
    "crm.notes",
    "crm.tasks",
    "crm.deals",
    "crm.contacts",
    "crm.leads",
];

/// A running crm service.
#[derive(Debug)]
pub struct Application {
    host: Host,
    state: AppState,
}

/// What crm's event consumers share (`None` without NATS): with service credentials
/// configured, each acts in its event's tenant as crm's system account there, with
/// tokens from identity over `identity`. Starting a consumer from it is one line,
/// `background.push(consumers.spawn(ConsumerConfig::new(..), handler, background.stopped()))`.
pub async fn event_consumers(
    config: &CrmConfig,
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
            "no service credentials (CRM_SERVICE_CLIENT_SECRET): event consumers act as nobody"
        );
    }
    let consumers = fusion_events::Consumers::connect(
        db.clone(),
        nats_url,
        "crm",
        metrics.clone(),
        credentials,
    )
    .await?;
    Ok(Some(consumers))
}

impl Application {
    /// Connects and serves on the given listeners (bind port 0 in tests and read the
    /// port back). Tokens are verified with the keys `keys` provides (identity's JWKS
    /// in production); references are checked over `identity` and `property`.
    pub async fn build(
        config: CrmConfig,
        keys: Arc<dyn KeyProvider>,
        identity: Channel,
        property: Channel,
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
        // Purging crosses tenants, so it needs the owner role.
        if let Some(owner_url) = config.service.jobs_url() {
            let owner = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy(owner_url)
                .context("the migration database URL is not valid")?;
            // Consumers' inbox rows outlive what the stream can redeliver, then go.
            background.push(
                fusion_events::InboxPruner::new(
                    owner.clone(),
                    fusion_events::InboxPruneConfig::new(SCHEMA),
                )
                .spawn(background.stopped()),
            );
            background.push(fusion_db::soft_delete::spawn_purge_job(
                owner,
                PURGED_TABLES.to_vec(),
                "crm.idempotency_keys",
                config.purge_retention,
                Duration::from_secs(3600),
                background.stopped(),
            ));
            // So does relaying the outbox: the owner's `relay` policy shows it every
            // tenant's events and nothing else across tenants.
            if let Some(nats_url) = &config.service.nats_url {
                let mut relay = fusion_events::RelayConfig::new(SCHEMA);
                relay.retention = config.service.relay_retention;
                background.push(
                    fusion_events::relay::start(
                        owner_url,
                        nats_url,
                        relay,
                        events.clone(),
                        background.stopped(),
                    )
                    .await?,
                );
            }
        }
        // Property's lot events, each on a durable consumer of its own (one event type
        // each: nats-server 2.9 filters a consumer on one subject). They write as the
        // application role, in each event's tenant.
        // With service credentials they act, and write audit fields, as crm's system
        // account in each event's tenant.
        if let Some(consumers) = event_consumers(&config, &db, identity.clone(), &events).await? {
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(lot_sales::CONSUMER, SCHEMA, lot_sales::EVENTS),
                lot_sales::LotSales {
                    time_zone: config.events_time_zone,
                },
                background.stopped(),
            ));
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(lot_notes::CONSUMER, SCHEMA, lot_notes::EVENTS),
                lot_notes::LotNotes,
                background.stopped(),
            ));
        }
        let refs = refs::Refs::new(identity, property);
        let state = AppState::new(db.clone(), Arc::new(config.clone()), refs);
        let host = Host::start(
            &config.service,
            &db,
            Serving {
                routes: grpc::routes(&state),
                policy: grpc::policy(),
                keys,
                key_refresh: Duration::from_secs(10),
                package: fusion_proto::crm::v1::PACKAGE,
            },
            background,
            grpc,
            admin,
        )
        .await?;
        host.metrics()
            .register(|registry| events.register(registry));
        Ok(Self { host, state })
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
