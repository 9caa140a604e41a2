//! Inventory settings, read once at cold start.

use std::time::Duration;

use lattice_xray::dynamodb::{table_from, timeout_from};
use lattice_xray::simulation::{range_from, rate_from, seed_from, LatencyRange};
use lattice_xray::Error;

/// The variable naming the inventory table.
pub const TABLE_ENV: &str = "INVENTORY_TABLE";
/// Settings with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryConfig {
    /// `INVENTORY_TABLE` (required): the DynamoDB table of stock and reservations.
    pub table: String,
    /// `DYNAMODB_TIMEOUT_MS` (default 1000): each DynamoDB call's whole budget, retries included.
    pub dynamodb_timeout: Duration,
    /// `INVENTORY_LATENCY_MS` (default `50..300`; `0` for none): simulated extra work.
    pub latency: LatencyRange,
    /// `INVENTORY_FAULT_RATE` (default 0): share of requests answered 503 before any store call.
    pub fault_rate: f64,
    /// `SIMULATION_SEED` (default 2).
    pub seed: u64,
}

impl InventoryConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads any lookup (tests pass a closure).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let latency = range_from(
            &lookup,
            "INVENTORY_LATENCY_MS",
            LatencyRange {
                min_ms: 50,
                max_ms: 300,
            },
        )?;
        Ok(Self {
            table: table_from(&lookup, TABLE_ENV)?,
            dynamodb_timeout: timeout_from(&lookup)?,
            latency,
            fault_rate: rate_from(&lookup, "INVENTORY_FAULT_RATE", 0.0)?,
            seed: seed_from(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<InventoryConfig, Error> {
        InventoryConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_errors() {
        let config = parse(&[("INVENTORY_TABLE", "inventory")]).unwrap();
        assert_eq!(
            config,
            InventoryConfig {
                table: "inventory".into(),
                dynamodb_timeout: Duration::from_millis(1000),
                latency: LatencyRange {
                    min_ms: 50,
                    max_ms: 300
                },
                fault_rate: 0.0,
                seed: 2,
            }
        );
        assert!(parse(&[]).is_err(), "the table is required");
        assert!(parse(&[("INVENTORY_TABLE", "")]).is_err());
        let with =
            |k: &'static str, v: &'static str| parse(&[("INVENTORY_TABLE", "inventory"), (k, v)]);
        assert!(with("INVENTORY_FAULT_RATE", "x").is_err());
        assert!(with("INVENTORY_LATENCY_MS", "9..1").is_err());
        assert!(with("DYNAMODB_TIMEOUT_MS", "0").is_err());
        assert_eq!(
            with("DYNAMODB_TIMEOUT_MS", "250").unwrap().dynamodb_timeout,
            Duration::from_millis(250)
        );
    }
}
