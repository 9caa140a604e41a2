//! The payment Lambda: configure, then serve Lattice requests.

use lattice_xray::{Telemetry, TelemetryConfig};
use payment::gateway::SimulatedGateway;
use payment::{PaymentConfig, PaymentEndpoint};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let config = PaymentConfig::from_env()?;
    let endpoint = PaymentEndpoint::new(SimulatedGateway::new(config.gateway, config.seed));
    lattice_xray::run(telemetry, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
