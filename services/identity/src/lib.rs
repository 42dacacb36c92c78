//! The identity context (`fusion.identity.v1`): tenants, plans, users, roles, and
//! authentication (login, rotating refresh tokens, signing keys and their JWKS).
//!
//! Shape: [`Application::build`] wires the database, the signing keys, the relay of
//! its outbox to NATS (`fusion-events`; identity publishes `identity.access.revoked`,
//! see [`auth::revocation`]) and the gRPC services into a [`fusion_service::Server`]; `main.rs` only reads configuration.
//! Proto types stop at [`grpc`]; [`domain`] holds the rules; `store` owns the SQL,
//! run through the shared `fusion-db` unit of work. Modules depend downward only:
//! `grpc` → `auth`, `store`, `domain`; `store` → `domain`.

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
mod state;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use fusion_db::Db;
use fusion_service::{Background, Host, Serving};

pub use config::IdentityConfig;
pub use error::IdentityError;
pub use state::AppState;
pub use store::service_accounts::prune_revoked as prune_revoked_secrets;

/// The identity schema's migrations, applied by `fusion-identity migrate` (the
/// Kubernetes Job) or at start-up when a migration URL is configured.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/identity");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "identity";

/// Error domain of this context.
pub const DOMAIN: &str = "identity.fusion";

/// A running identity service.
#[derive(Debug)]
pub struct Application {
    host: Host,
    state: AppState,
}

/// Forgets login-throttle counters quiet for their window (failed logins for made-up
/// emails and from passing sources would otherwise pile up), hourly.
fn spawn_throttle_cleanup(
    db: Db,
    window: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = auth::throttle::purge_stale(&db, window).await {
                        tracing::warn!(error = %e, "cleaning login-throttle counters failed");
                    }
                }
                _ = stopped.changed() => break,
            }
        }
    })
}

/// Tables whose soft-deleted rows the purge job removes. Tenants and plans are kept:
/// removing a tenant must first remove its data in every context.
const PURGED_TABLES: &[&str] = &["identity.users", "identity.roles"];

/// The purge job, and the hourly removal of client secrets revoked, and of refresh
/// tokens expired or revoked, longer than `retention` ago (revoking secrets, and every
/// login and refresh, must not grow a table for ever).
fn spawn_purge(
    owner_url: &str,
    retention: Duration,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<[tokio::task::JoinHandle<()>; 2]> {
    let owner = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(owner_url)
        .context("the migration database URL is not valid")?;
    let purge = fusion_db::soft_delete::spawn_purge_job(
        owner.clone(),
        PURGED_TABLES.to_vec(),
        "identity.idempotency_keys",
        retention,
        Duration::from_secs(3600),
        stopped.clone(),
    );
    let prune = tokio::spawn(async move {
        let mut stopped = stopped;
        let mut ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    match store::service_accounts::prune_revoked(&owner, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "pruned revoked client secrets"),
                        Err(e) => tracing::warn!(error = %e, "pruning revoked client secrets failed; will retry"),
                    }
                    match auth::tokens::prune_dead(&owner, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, "pruned dead refresh tokens"),
                        Err(e) => tracing::warn!(error = %e, "pruning dead refresh tokens failed; will retry"),
                    }
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Ok([purge, prune])
}

impl Application {
    /// Connects, loads (or creates) the signing keys and starts serving on the given
    /// listeners (bind port 0 in tests and read the port back).
    pub async fn build(
        config: IdentityConfig,
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
        // Platform service accounts from configuration; on a first start the platform
        // tenant does not exist yet and `bootstrap-platform` provisions them.
        if !config.platform_service_accounts.is_empty()
            && bootstrap::ensure_platform_services(&db, &config.platform_service_accounts)
                .await?
                .is_none()
        {
            tracing::warn!(
                "no platform tenant yet: platform service accounts are provisioned by bootstrap-platform"
            );
        }
        // Tenants created before a permission joined a built-in role get it now.
        bootstrap::reconcile_built_in_roles(&db).await?;
        let keys = Arc::new(auth::keys::KeyRing::load_or_create(&db).await?);
        let state = AppState::new(db.clone(), Arc::new(config.clone()), keys.clone());
        let mut background = Background::new();
        background.push(spawn_throttle_cleanup(
            db.clone(),
            config.throttle.window,
            background.stopped(),
        ));
        // Purging crosses tenants, so it needs the owner role; without that URL the job
        // is left to a deployment that has it.
        let jobs_url = config.service.jobs_url();
        if let Some(owner_url) = jobs_url {
            for job in spawn_purge(owner_url, config.purge_retention, background.stopped())? {
                background.push(job);
            }
        }
        // Token revocations (identity.access.revoked) reach the edge and the services
        // through the outbox, relayed as the owner role (its `relay` policy shows it
        // every tenant's events). Without NATS or the owner URL they wait in the
        // outbox, and revoked access tokens live until they expire.
        let events = fusion_events::EventMetrics::new();
        match (jobs_url, &config.service.nats_url) {
            (Some(owner_url), Some(nats_url)) => {
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
            _ => tracing::warn!(
                "no NATS_URL or migration database URL: token revocations are not relayed"
            ),
        }
        let host = Host::start(
            &config.service,
            &db,
            Serving {
                routes: grpc::routes(&state),
                policy: grpc::policy(),
                keys,
                // Identity verifies with its own key table: an unknown kid costs one
                // indexed read, so refreshes need no rate limit (a key rotated a moment
                // ago, here or on another replica, must verify at once).
                key_refresh: Duration::ZERO,
                package: fusion_proto::identity::v1::PACKAGE,
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

    /// Shared state (database, keys), for tests and the bootstrap command.
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
