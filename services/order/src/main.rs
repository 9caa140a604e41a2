//! The order Lambda: configure, connect to the peers through Lattice, serve.

use lattice_xray::{LatticeClient, Telemetry, TelemetryConfig};
use order::handler::RandomOrderIds;
use order::lattice_ports::{LatticeInventory, LatticePayment};
use order::{OrderConfig, OrderEndpoint};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let config = OrderConfig::from_env()?;
    let lattice =
        LatticeClient::from_aws_config(telemetry.tracer().clone(), config.timeouts).await?;
    let endpoint = OrderEndpoint::new(
        LatticeInventory::new(lattice.clone(), &config.inventory_url),
        LatticePayment::new(lattice, &config.payment_url),
        RandomOrderIds,
        &config.currency,
        config.timeouts.request,
    );
    lattice_xray::run(telemetry, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
