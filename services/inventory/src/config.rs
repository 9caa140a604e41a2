//! Inventory settings, read once at cold start.

use lattice_xray::simulation::{parse_rate, LatencyRange, DEFAULT_SEED};
use lattice_xray::Error;

/// Settings with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryConfig {
    /// `INVENTORY_LATENCY_MS` (default `50..300`; `0` for none).
    pub latency: LatencyRange,
    /// `INVENTORY_FAULT_RATE` (default 0): share of requests answered 503.
    pub fault_rate: f64,
    /// `INVENTORY_STOCK_RANGE` (default `1000..5000`): units per SKU at cold start.
    pub stock_min: u32,
    /// Upper end of the stock range.
    pub stock_max: u32,
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
        let range = |key: &'static str, default: LatencyRange| match lookup(key) {
            Some(raw) => raw.parse::<LatencyRange>().map_err(|_| Error::Config {
                variable: key,
                reason: format!("{raw:?} is not N, MIN..MAX or 0"),
            }),
            None => Ok(default),
        };
        let latency = range(
            "INVENTORY_LATENCY_MS",
            LatencyRange {
                min_ms: 50,
                max_ms: 300,
            },
        )?;
        let stock = range(
            "INVENTORY_STOCK_RANGE",
            LatencyRange {
                min_ms: 1000,
                max_ms: 5000,
            },
        )?;
        let fault_rate = match lookup("INVENTORY_FAULT_RATE") {
            Some(raw) => parse_rate("INVENTORY_FAULT_RATE", &raw)?,
            None => 0.0,
        };
        let seed = match lookup("SIMULATION_SEED") {
            Some(raw) => raw.parse().map_err(|_| Error::Config {
                variable: "SIMULATION_SEED",
                reason: format!("{raw:?} is not an unsigned integer"),
            })?,
            None => DEFAULT_SEED,
        };
        Ok(Self {
            latency,
            fault_rate,
            stock_min: stock.min_ms as u32,
            stock_max: stock.max_ms as u32,
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let config = InventoryConfig::from_lookup(|_| None).unwrap();
        assert_eq!(
            config.latency,
            LatencyRange {
                min_ms: 50,
                max_ms: 300
            }
        );
        assert_eq!(
            (
                config.stock_min,
                config.stock_max,
                config.fault_rate,
                config.seed
            ),
            (1000, 5000, 0.0, 2)
        );
        assert!(
            InventoryConfig::from_lookup(|k| (k == "INVENTORY_FAULT_RATE").then(|| "x".into()))
                .is_err()
        );
        assert!(InventoryConfig::from_lookup(
            |k| (k == "INVENTORY_LATENCY_MS").then(|| "9..1".into())
        )
        .is_err());
    }
}
