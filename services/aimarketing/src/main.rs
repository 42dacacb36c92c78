//! `fusion-aimarketing [serve|migrate]`.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

use fusion_aimarketing::{AiMarketingConfig, Application, MIGRATOR, Peers, SCHEMA};
use fusion_tenancy::IdentityJwks;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init("ai-marketing")?;
    let config = AiMarketingConfig::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            // Each connects on first use, so ai-marketing may start before its peers.
            let lazy = |url: &str, name: &str| {
                Endpoint::from_shared(url.to_owned())
                    .with_context(|| format!("{name} is not a valid URL"))
                    .map(|e| e.connect_lazy())
            };
            let peers = Peers {
                identity: lazy(&config.identity_url, "AIMARKETING_IDENTITY_URL")?,
                crm: lazy(&config.crm_url, "AIMARKETING_CRM_URL")?,
                property: lazy(&config.property_url, "AIMARKETING_PROPERTY_URL")?,
            };
            if config.provider.is_none() {
                tracing::warn!(
                    "AI_OPENAI_BASE_URL is not set: only tenants with a provider of their own \
                     reach a model"
                );
            }
            let grpc = TcpListener::bind(config.service.grpc_addr)
                .await
                .context("binding the gRPC port")?;
            let admin = TcpListener::bind(config.service.admin_addr)
                .await
                .context("binding the admin port")?;
            let keys = Arc::new(IdentityJwks::new(peers.identity.clone()));
            let app = Application::build(config, keys, peers, grpc, admin).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "ai-marketing serving");
            app.run_until_stopped().await
        }
        Some("migrate") => {
            let owner_url = config.service.migration_database_url.as_deref().context(
                "AIMARKETING_MIGRATION_DATABASE_URL (or MIGRATION_DATABASE_URL) must be set to migrate",
            )?;
            fusion_db::migrate(owner_url, SCHEMA, &MIGRATOR).await?;
            tracing::info!("ai-marketing migrations applied");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve or migrate"),
    }
}
