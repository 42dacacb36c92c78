//! The AI & marketing context (`fusion.aimarketing.v1`): prompt templates whose
//! variables are filled from crm and property as the caller, kept in versions, with
//! the platform's system prompts beside each tenant's own; campaigns with the crm
//! leads they target and their results measured, not typed in; conversations with any
//! OpenAI-compatible model ([`provider`]), the reply streamed as it arrives
//! ([`conversation`]), with each tenant's own provider, its usage per month and the
//! allowance of its plan ([`allowance`]); and lots matched to a lead from its custom
//! fields ([`domain::matching`]), read as the caller.
//!
//! Shape: [`Application::build`] wires the database, the clients of identity, crm and
//! property (reads as the caller, see [`refs`]), the purge job, the relay of its outbox
//! to NATS, its consumer of crm's lead and deal events ([`campaign_results`]: the
//! conversions and won deals campaigns' metrics count), and the gRPC services into a
//! [`fusion_service::Server`]; `main.rs` only reads configuration. Proto types stop at [`grpc`] (and the rendering and streaming
//! modules it calls); [`domain`] holds the template, model and campaign rules.

pub mod allowance;
mod campaign_leads;
pub mod campaign_results;
pub mod config;
pub mod conversation;
pub mod domain;
pub mod error;
pub mod grpc;
mod matching;
pub mod provider;
pub mod refs;
mod render;
pub mod settings;
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

pub use config::AiMarketingConfig;
pub use error::AiMarketingError;
pub use state::AppState;

/// The ai_marketing schema's migrations, applied by `fusion-aimarketing migrate` (the
/// Kubernetes Job) or at start-up when a migration URL is configured.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/ai_marketing");

/// The PostgreSQL schema this context owns.
pub const SCHEMA: &str = "ai_marketing";

/// Error domain of this context.
pub const DOMAIN: &str = "aimarketing.fusion";

/// Soft-deletable tables, purged with what hangs off them (versions, messages, a
/// campaign's leads and deals go by cascade).
pub const PURGED_TABLES: &[&str] = &[
    "ai_marketing.ai_conversations",
    "ai_marketing.ai_prompts",
    "ai_marketing.campaigns",
];

/// The channels to the contexts ai-marketing reads from.
#[derive(Clone, Debug)]
pub struct Peers {
    /// Identity: users, and token keys.
    pub identity: Channel,
    /// Crm: leads, contacts and deals.
    pub crm: Channel,
    /// Property: lots and projects.
    pub property: Channel,
}

/// What ai-marketing's event consumers share (`None` without NATS): with service
/// credentials configured, each acts in its event's tenant as ai-marketing's system
/// account there, with tokens from identity over `identity`.
pub async fn event_consumers(
    config: &AiMarketingConfig,
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
            "no service credentials (AIMARKETING_SERVICE_CLIENT_SECRET): the event consumer \
             acts as nobody, and cannot trace a won deal that names only its contact to a \
             campaign's lead"
        );
    }
    let consumers = fusion_events::Consumers::connect(
        db.clone(),
        nats_url,
        config::SERVICE,
        metrics.clone(),
        credentials,
    )
    .await?;
    Ok(Some(consumers))
}

/// A running ai-marketing service.
#[derive(Debug)]
pub struct Application {
    host: Host,
    state: AppState,
}

impl Application {
    /// Connects and serves on the given listeners (bind port 0 in tests and read the
    /// port back). Tokens are verified with the keys `keys` provides (identity's JWKS
    /// in production); other contexts are read over `peers`.
    pub async fn build(
        config: AiMarketingConfig,
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
        // Purging, pruning and relaying cross tenants: they run as the jobs role.
        if let Some(jobs_url) = config.service.jobs_url() {
            let jobs = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy(jobs_url)
                .context("the jobs database URL is not valid")?;
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
                "ai_marketing.idempotency_keys",
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
        let credentials = config.service_credentials.as_ref().map(|c| {
            fusion_events::ServiceCredentials::new(
                peers.identity.clone(),
                &c.client_id,
                &c.client_secret,
            )
        });
        if credentials.is_none() {
            tracing::warn!(
                "no service credentials (AIMARKETING_SERVICE_CLIENT_SECRET): tenants' monthly \
                 token allowances are not enforced"
            );
        }
        let allowances = allowance::Allowances::new(credentials, peers.identity.clone());
        let chat = provider::ChatClient::new(config.provider_timeouts)
            .context("the model provider's HTTP client")?;
        let refs = refs::Refs::new(peers.identity.clone(), peers.crm, peers.property);
        // Crm's lead and deal events on one consumer, so one deal's are applied in the
        // order crm committed them. It writes as the application role, in each event's
        // tenant.
        if let Some(consumers) = event_consumers(&config, &db, peers.identity, &events).await? {
            background.push(consumers.spawn(
                fusion_events::ConsumerConfig::new(
                    campaign_results::CONSUMER,
                    SCHEMA,
                    campaign_results::EVENTS,
                ),
                campaign_results::CampaignResults { refs: refs.clone() },
                background.stopped(),
            ));
        }
        let state = AppState::new(db.clone(), Arc::new(config.clone()), refs, chat, allowances);
        let host = Host::start(
            &config.service,
            &db,
            Serving {
                routes: grpc::routes(&state),
                policy: grpc::policy(),
                keys,
                key_refresh: Duration::from_secs(10),
                package: fusion_proto::aimarketing::v1::PACKAGE,
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
