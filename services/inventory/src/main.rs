//! The inventory Lambda: configure, then serve Lattice requests.
// The async state machines of `lambda_http` over the SDK calls nest deeper than rustc's default.
#![recursion_limit = "256"]

use inventory::dynamo::DynamoStockStore;
use inventory::{InventoryConfig, InventoryEndpoint};
use lattice_xray::simulation::Simulator;
use lattice_xray::{Telemetry, TelemetryConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let config = InventoryConfig::from_env()?;
    let client = lattice_xray::dynamodb::traced_client(config.dynamodb_timeout).await?;
    let store = DynamoStockStore::new(client, config.table);
    let simulator = Simulator::seeded(config.seed.wrapping_add(1));
    let endpoint = InventoryEndpoint::new(store, simulator, config.latency, config.fault_rate);
    lattice_xray::run(telemetry, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
