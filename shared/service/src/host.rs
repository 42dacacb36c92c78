//! What every context service does to start and stop, in one place: apply its
//! migrations (when it has the owner URL and may), connect its application-role pool,
//! then serve its routes behind the tenancy layer with health, reflection, readiness
//! and the admin port, beside its background tasks; and stop both in order.
//!
//! Every service with a `NATS_URL` follows identity's token revocations into its
//! verifier's deny list ([`follow_revocations`]).
//!
//! A service's `Application::build` keeps what is its own (state, key source, jobs) and
//! hands the rest to [`open_database`] and [`Host::start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::service::Routes;

use fusion_db::{Db, DbConfig};
use fusion_tenancy::{JwksCache, JwtVerifier, KeyProvider, MethodPolicy, Revocations, TenantLayer};

use crate::{Background, Readiness, Server, ServerOptions, ServiceConfig};

/// Applies `migrator` to `schema` as the owner role when `migrate_on_start` and the
/// migration URL is set, then connects the application-role pool.
pub async fn open_database(
    service: &ServiceConfig,
    migrate_on_start: bool,
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
) -> anyhow::Result<Db> {
    if let (true, Some(owner_url)) = (migrate_on_start, &service.migration_database_url) {
        fusion_db::migrate(owner_url, schema, migrator).await?;
    }
    Db::connect(&DbConfig {
        url: service.database_url.clone(),
        max_connections: service.db_max_connections,
        acquire_timeout: service.db_acquire_timeout,
        statement_timeout: service.db_statement_timeout,
        idle_in_transaction_timeout: service.db_idle_in_transaction_timeout,
    })
    .await
    .context("connecting to PostgreSQL as the application role")
}

/// Follows identity's token revocations from `nats_url` into `revocations` until
/// `stopped` turns true (the edge and every service do): NATS may be down at start, the
/// feed catches up when it comes.
pub async fn follow_revocations(
    nats_url: &str,
    who: &str,
    revocations: Arc<Revocations>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = fusion_events::connect(nats_url, &format!("{who}-revocations")).await?;
    Ok(fusion_events::revocations::follow(
        client,
        fusion_events::RevocationFeed::default(),
        revocations,
        stopped,
    ))
}

/// What a service serves.
pub struct Serving {
    /// Its gRPC services.
    pub routes: Routes,
    /// The permission each method needs.
    pub policy: MethodPolicy,
    /// Where token-verification keys come from.
    pub keys: Arc<dyn KeyProvider>,
    /// How long an unknown key id waits before the keys are asked again.
    pub key_refresh: Duration,
    /// Its proto package (`fusion.crm.v1`): every service the descriptor set lists in
    /// it is reported by health checks.
    pub package: &'static str,
}

/// A running service: its server and its background tasks.
#[derive(Debug)]
pub struct Host {
    server: Server,
    background: Background,
}

impl Host {
    /// Serves `serving` on the listeners, ready while `db` answers, beside `background`.
    pub async fn start(
        service: &ServiceConfig,
        db: &Db,
        serving: Serving,
        mut background: Background,
        grpc: TcpListener,
        admin: TcpListener,
    ) -> anyhow::Result<Host> {
        let mut verifier = JwtVerifier::new(
            service.jwt.clone(),
            Arc::new(JwksCache::new(serving.keys, serving.key_refresh)),
        );
        if let Some(nats_url) = &service.nats_url {
            let revocations = Arc::new(Revocations::new(service.jwt.leeway));
            background.push(
                follow_revocations(
                    nats_url,
                    &service.service_name,
                    revocations.clone(),
                    background.stopped(),
                )
                .await?,
            );
            verifier = verifier.with_revocations(revocations);
        }
        let tenancy = TenantLayer::new(Arc::new(verifier), serving.policy);
        let probe = db.clone();
        let readiness: Readiness = Arc::new(move || {
            let db = probe.clone();
            Box::pin(async move { db.ping().await })
        });
        let server = Server::start(
            grpc,
            admin,
            serving.routes,
            tenancy,
            readiness,
            ServerOptions {
                health_services: fusion_proto::descriptor::services_of(serving.package),
                file_descriptor_sets: vec![fusion_proto::FILE_DESCRIPTOR_SET],
                drain: service.drain,
                shutdown_deadline: service.shutdown_deadline,
                max_in_flight: Some(service.max_in_flight),
            },
        )
        .await?;
        Ok(Host { server, background })
    }

    /// The registry `/metrics` serves, for the service's own metrics.
    pub fn metrics(&self) -> &crate::GrpcMetrics {
        self.server.metrics()
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until Ctrl-C or SIGTERM, then drains, stops, and stops the tasks.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.run_until(crate::shutdown_signal()).await;
        self.background.stop().await;
        result
    }

    /// Stops gracefully, waits, and stops the tasks.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop();
        let result = self.server.wait().await;
        self.background.stop().await;
        result
    }
}
