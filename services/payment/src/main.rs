//! The payment Lambda: configure, then serve Lattice requests.
// The async state machines of `lambda_http` over the SDK calls nest deeper than rustc's default.
#![recursion_limit = "256"]

use lattice_xray::{Telemetry, TelemetryConfig};
use payment::dynamo::DynamoLedger;
use payment::gateway::SimulatedGateway;
use payment::{PaymentConfig, PaymentEndpoint};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let config = PaymentConfig::from_env()?;
    let client = lattice_xray::dynamodb::traced_client(config.dynamodb_timeout).await?;
    let ledger = DynamoLedger::new(client, config.table);
    let endpoint = PaymentEndpoint::new(SimulatedGateway::new(config.gateway, config.seed), ledger);
    lattice_xray::run(telemetry, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
