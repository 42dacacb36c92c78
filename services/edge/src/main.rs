//! `fusion-edge`: the gateway process.

use anyhow::Context as _;
use tokio::net::TcpListener;

use fusion_edge::{Edge, EdgeConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init("edge")?;
    let config = EdgeConfig::from_env()?;
    let grpc = TcpListener::bind(config.grpc_addr)
        .await
        .context("binding the gRPC port")?;
    let admin = TcpListener::bind(config.admin_addr)
        .await
        .context("binding the admin port")?;
    let edge = Edge::build(config, grpc, admin).await?;
    tracing::info!(grpc = %edge.grpc_addr(), admin = %edge.admin_addr(), "edge serving");
    edge.run_until_stopped().await
}
