//! `fusion-identity [serve|migrate|bootstrap-platform]`.

use anyhow::Context as _;
use tokio::net::TcpListener;

use fusion_identity::{Application, IdentityConfig, MIGRATOR, SCHEMA};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init("identity")?;
    let config = IdentityConfig::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let grpc = TcpListener::bind(config.service.grpc_addr)
                .await
                .context("binding the gRPC port")?;
            let admin = TcpListener::bind(config.service.admin_addr)
                .await
                .context("binding the admin port")?;
            let app = Application::build(config, grpc, admin).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "identity serving");
            app.run_until_stopped().await
        }
        Some("migrate") => {
            let owner_url = config
                .service
                .migration_database_url
                .as_deref()
                .context("IDENTITY_MIGRATION_DATABASE_URL (or MIGRATION_DATABASE_URL) must be set to migrate")?;
            fusion_db::migrate(owner_url, SCHEMA, &MIGRATOR).await?;
            // The data step of a release: built-in roles of existing tenants get the
            // permissions the catalogue has added since (each serve does it too).
            let db =
                fusion_db::Db::connect(&fusion_db::DbConfig::new(owner_url.to_owned())).await?;
            fusion_identity::bootstrap::reconcile_built_in_roles(&db).await?;
            tracing::info!("identity migrations applied");
            Ok(())
        }
        Some("bootstrap-platform") => {
            let email = std::env::var("IDENTITY_PLATFORM_ADMIN_EMAIL")
                .context("IDENTITY_PLATFORM_ADMIN_EMAIL must be set")?;
            let password = std::env::var("IDENTITY_PLATFORM_ADMIN_PASSWORD")
                .context("IDENTITY_PLATFORM_ADMIN_PASSWORD must be set")?;
            let db = fusion_db::Db::connect(&fusion_db::DbConfig::new(
                config.service.database_url.clone(),
            ))
            .await?;
            let id = fusion_identity::bootstrap::ensure_platform(&db, &email, &password).await?;
            fusion_identity::bootstrap::ensure_platform_services(
                &db,
                &config.platform_service_accounts,
            )
            .await?;
            tracing::info!(tenant.id = id, "platform tenant ready");
            Ok(())
        }
        Some(other) => {
            anyhow::bail!("unknown command {other:?}; use serve, migrate or bootstrap-platform")
        }
    }
}
