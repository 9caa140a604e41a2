//! The inventory Lambda: configure, then serve Lattice requests.

use inventory::stock::Stock;
use inventory::{InventoryConfig, InventoryEndpoint};
use lattice_xray::simulation::Simulator;
use lattice_xray::{Telemetry, TelemetryConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let config = InventoryConfig::from_env()?;
    let stock = Stock::seeded(config.seed, config.stock_min, config.stock_max);
    let simulator = Simulator::seeded(config.seed.wrapping_add(1));
    let endpoint = InventoryEndpoint::new(stock, simulator, config.latency, config.fault_rate);
    lattice_xray::run(telemetry, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
