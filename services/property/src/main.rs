//! `fusion-property [serve|migrate]`.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

use fusion_property::{Application, MIGRATOR, PropertyConfig, SCHEMA};
use fusion_tenancy::IdentityJwks;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init("property")?;
    let config = PropertyConfig::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            // Connects on first use, so property may start before identity answers.
            let identity = Endpoint::from_shared(config.identity_url.clone())
                .context("PROPERTY_IDENTITY_URL is not a valid URL")?
                .connect_lazy();
            // Likewise crm, which starts after property (it checks lots with property).
            let crm = Endpoint::from_shared(config.crm_url.clone())
                .context("PROPERTY_CRM_URL is not a valid URL")?
                .connect_lazy();
            let grpc = TcpListener::bind(config.service.grpc_addr)
                .await
                .context("binding the gRPC port")?;
            let admin = TcpListener::bind(config.service.admin_addr)
                .await
                .context("binding the admin port")?;
            let keys = Arc::new(IdentityJwks::new(identity));
            let app = Application::build(config, keys, crm, grpc, admin).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "property serving");
            app.run_until_stopped().await
        }
        Some("migrate") => {
            let owner_url = config
                .service
                .migration_database_url
                .as_deref()
                .context("PROPERTY_MIGRATION_DATABASE_URL (or MIGRATION_DATABASE_URL) must be set to migrate")?;
            fusion_db::migrate(owner_url, SCHEMA, &MIGRATOR).await?;
            tracing::info!("property migrations applied");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve or migrate"),
    }
}
