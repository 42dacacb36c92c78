//! The property context (`fusion.property.v1`): the stock a tenant sells — developers,
//! projects, stages, lots, features and media — and a lot lifecycle that never sells a
//! lot twice.
//!
//! Shape: [`Application::build`] wires the database, the lot event listener, the
//! housekeeping job, the relay of its outbox and the consumer of crm's deal events
//! (`fusion-events`), the client of crm ([`deals`]) and the gRPC services into a
//! [`fusion_service::Server`]; `main.rs` only reads configuration. Proto types stop at
//! [`grpc`]; [`domain`] holds the rules; [`store`] owns every other SQL statement
//! and [`stock`] the SQL that keeps a project's figures exact; [`events`] carries lot
//! status changes to live watchers on every replica; [`media_store`] is where media
//! bytes live.
//!
//! Integration events: property publishes `property.lot.status_changed` for every
//! lot transition and `property.lot.sale_refused` when a won deal's lot cannot be sold
//! to it; it consumes `crm.deal.won` (the lot is sold to the deal), `crm.deal.lost` and
//! `crm.deal.reopened` (the lot taken for the deal is released) in [`sales`].

mod api;
pub mod config;
pub mod deals;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod media_store;
pub mod sales;
mod state;
mod stock;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use fusion_service::{Background, Host, Serving};
use fusion_tenancy::KeyProvider;

pub use config::PropertyConfig;
pub use error::PropertyError;
pub use events::LotEvents;
pub use state::AppState;

/// The property schema's migrations, applied by `fusion-property migrate` (the
/// Kubernetes Job) or at start-up when a migration URL is configured.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/property");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "property";

/// Error domain of this context.
pub const DOMAIN: &str = "property.fusion";

/// What property's event consumers share (`None` without NATS): with service
/// credentials configured, each acts in its event's tenant as property's system account
/// there, asking identity (`identity_url`) for its tokens. Adding a consumer is one
/// `consumers.spawn(..)`.
async fn event_consumers(
    config: &PropertyConfig,
    db: &fusion_db::Db,
    metrics: &fusion_events::EventMetrics,
) -> anyhow::Result<Option<fusion_events::Consumers>> {
    let Some(nats_url) = &config.service.nats_url else {
        return Ok(None);
    };
    let credentials = match &config.service_credentials {
        Some(c) => {
            // Connects on first use, so property may start before identity answers.
            let identity = tonic::transport::Endpoint::from_shared(config.identity_url.clone())
                .context("PROPERTY_IDENTITY_URL is not a valid URL")?
                .connect_lazy();
            Some(fusion_events::ServiceCredentials::new(
                identity,
                &c.client_id,
                &c.client_secret,
            ))
        }
        None => {
            tracing::warn!(
                "no service credentials (PROPERTY_SERVICE_CLIENT_SECRET): event consumers act as nobody"
            );
            None
        }
    };
    let consumers = fusion_events::Consumers::connect(
        db.clone(),
        nats_url,
        "property",
        metrics.clone(),
        credentials,
    )
    .await?;
    Ok(Some(consumers))
}

/// A running property service.
#[derive(Debug)]
pub struct Application {
    host: Host,
    state: AppState,
}

impl Application {
    /// Connects, starts listening for lot events and serves on the given listeners
    /// (bind port 0 in tests and read the port back). Tokens are verified with the
    /// keys `keys` provides (identity's JWKS in production); the deals holds and
    /// reservations are for are checked over `crm` (a lazy channel: crm starts after
    /// property).
    pub async fn build(
        config: PropertyConfig,
        keys: Arc<dyn KeyProvider>,
        crm: Channel,
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
        let media = media_store::MediaStore::open(&config.media_store)?;
        let mut background = Background::new();
        let events = LotEvents::new();
        background.push(
            events::spawn_listener(
                &config.service.database_url,
                events.clone(),
                background.stopped(),
            )
            .await
            .context("listening for lot events")?,
        );
        let event_metrics = fusion_events::EventMetrics::new();
        // Housekeeping finds work across tenants, so it needs the owner role; without
        // that URL it is left to a deployment that has it (a lapsed hold is still
        // released by the next transition on its lot).
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
            background.push(jobs::spawn(
                owner,
                db.clone(),
                media.clone(),
                config.housekeeping_interval,
                config.purge_retention,
                background.stopped(),
            ));
            // So does relaying the outbox (lot.status_changed, lot.sale_refused): the
            // owner's `relay` policy shows it every tenant's events and nothing else
            // across tenants.
            if let Some(nats_url) = &config.service.nats_url {
                let mut relay = fusion_events::RelayConfig::new(SCHEMA);
                relay.retention = config.service.relay_retention;
                background.push(
                    fusion_events::relay::start(
                        owner_url,
                        nats_url,
                        relay,
                        event_metrics.clone(),
                        background.stopped(),
                    )
                    .await?,
                );
            }
        }
        // Integration events: crm's won deals sell their lots, lost and reopened deals
        // release them (`sales`), all through one consumer so that one deal's events
        // apply in the order crm committed them.
        if let Some(consumers) = event_consumers(&config, &db, &event_metrics).await? {
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(sales::CONSUMER, SCHEMA, sales::EVENTS),
                sales::LotSales,
                background.stopped(),
            ));
        }
        let deals = deals::Deals::new(crm);
        let state = AppState::new(db.clone(), Arc::new(config.clone()), events, media, deals);
        let host = Host::start(
            &config.service,
            &db,
            Serving {
                routes: grpc::routes(&state),
                policy: grpc::policy(),
                keys,
                key_refresh: Duration::from_secs(10),
                package: fusion_proto::property::v1::PACKAGE,
            },
            background,
            grpc,
            admin,
        )
        .await?;
        host.metrics()
            .register(|registry| event_metrics.register(registry));
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

    /// Shared state (database, event feed), for tests and seeding.
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
