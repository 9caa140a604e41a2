//! Inventory settings, read once at cold start.

use lattice_xray::simulation::{range_from, rate_from, seed_from, LatencyRange};
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
        let latency = range_from(
            &lookup,
            "INVENTORY_LATENCY_MS",
            LatencyRange {
                min_ms: 50,
                max_ms: 300,
            },
        )?;
        // Same `MIN..MAX` syntax, counted in units instead of milliseconds.
        let stock = range_from(
            &lookup,
            "INVENTORY_STOCK_RANGE",
            LatencyRange {
                min_ms: 1000,
                max_ms: 5000,
            },
        )?;
        let fault_rate = rate_from(&lookup, "INVENTORY_FAULT_RATE", 0.0)?;
        let seed = seed_from(&lookup)?;
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
