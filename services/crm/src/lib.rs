//! The CRM context (`fusion.crm.v1`): where sales teams live all day — leads, contacts,
//! deals, tasks and notes, moving through each tenant's own lead statuses and deal
//! stages.
//!
//! Shape: [`Application::build`] wires the database, the clients of identity and
//! property (for reference checks, see [`refs`]), the purge job and the gRPC services
//! into a [`fusion_service::Server`]; `main.rs` only reads configuration. Proto types
//! stop at [`grpc`]; [`domain`] holds the rules.

pub mod config;
pub mod domain;
pub mod grpc;
pub mod refs;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use fusion_db::{Db, DbConfig};
use fusion_service::{Background, Readiness, Server, ServerOptions};
use fusion_tenancy::{JwksCache, JwtVerifier, KeyProvider, TenantLayer};

pub use config::CrmConfig;
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
    server: Server,
    state: AppState,
    background: Background,
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
        if let (true, Some(owner_url)) = (
            config.migrate_on_start,
            &config.service.migration_database_url,
        ) {
            fusion_db::migrate(owner_url, SCHEMA, &MIGRATOR).await?;
        }
        let db = Db::connect(&DbConfig {
            url: config.service.database_url.clone(),
            max_connections: config.service.db_max_connections,
            acquire_timeout: Duration::from_secs(5),
        })
        .await
        .context("connecting to PostgreSQL as the application role")?;
        let mut background = Background::new();
        if let Some(owner_url) = &config.service.migration_database_url {
            let owner = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy(owner_url)
                .context("the migration database URL is not valid")?;
            background.push(fusion_db::soft_delete::spawn_purge_job(
                owner,
                PURGED_TABLES.to_vec(),
                config.purge_retention,
                Duration::from_secs(3600),
                background.stopped(),
            ));
        }
        let refs = refs::Refs::new(identity, property);
        let state = AppState::new(db.clone(), Arc::new(config.clone()), refs);
        let verifier = JwtVerifier::new(
            config.service.jwt.clone(),
            Arc::new(JwksCache::new(keys, Duration::from_secs(10))),
        );
        let tenancy = TenantLayer::new(Arc::new(verifier), grpc::policy());
        let readiness: Readiness = Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await })
        });
        let server = Server::start(
            grpc,
            admin,
            grpc::routes(&state),
            tenancy,
            readiness,
            ServerOptions {
                health_services: grpc::SERVICE_NAMES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                file_descriptor_sets: vec![fusion_proto::FILE_DESCRIPTOR_SET],
                drain: config.service.drain,
                shutdown_deadline: config.service.shutdown_deadline,
            },
        )
        .await?;
        Ok(Self {
            server,
            state,
            background,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Shared state, for tests and seeding.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then drains and stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self
            .server
            .run_until(fusion_service::shutdown_signal())
            .await;
        self.background.stop().await;
        result
    }

    /// Stops gracefully and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop();
        let result = self.server.wait().await;
        self.background.stop().await;
        result
    }
}
