//! `fusion-crm [serve|migrate]`.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

use fusion_crm::{Application, CrmConfig, MIGRATOR, SCHEMA};
use fusion_tenancy::IdentityJwks;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init("crm")?;
    let config = CrmConfig::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            // Both connect on first use, so crm may start before identity and property.
            let identity = Endpoint::from_shared(config.identity_url.clone())
                .context("CRM_IDENTITY_URL is not a valid URL")?
                .connect_lazy();
            let property = Endpoint::from_shared(config.property_url.clone())
                .context("CRM_PROPERTY_URL is not a valid URL")?
                .connect_lazy();
            let grpc = TcpListener::bind(config.service.grpc_addr)
                .await
                .context("binding the gRPC port")?;
            let admin = TcpListener::bind(config.service.admin_addr)
                .await
                .context("binding the admin port")?;
            let keys = Arc::new(IdentityJwks::new(identity.clone()));
            let app = Application::build(config, keys, identity, property, grpc, admin).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "crm serving");
            app.run_until_stopped().await
        }
        Some("migrate") => {
            let owner_url = config.service.migration_database_url.as_deref().context(
                "CRM_MIGRATION_DATABASE_URL (or MIGRATION_DATABASE_URL) must be set to migrate",
            )?;
            fusion_db::migrate(owner_url, SCHEMA, &MIGRATOR).await?;
            tracing::info!("crm migrations applied");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve or migrate"),
    }
}
