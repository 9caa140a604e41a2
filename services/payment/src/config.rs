//! Payment settings, read once at cold start.

use lattice_xray::simulation::{range_from, rate_from, seed_from, LatencyRange};
use lattice_xray::Error;

use crate::gateway::GatewayBehaviour;

/// Settings with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentConfig {
    /// `PAYMENT_DECLINE_RATE` (default 0.05), `PAYMENT_FAULT_RATE` (default 0.05),
    /// `PAYMENT_LATENCY_MS` (default `100..500`; `0` for none).
    pub gateway: GatewayBehaviour,
    /// `SIMULATION_SEED` (default 2).
    pub seed: u64,
}

impl PaymentConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads any lookup (tests pass a closure).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let decline_rate = rate_from(&lookup, "PAYMENT_DECLINE_RATE", 0.05)?;
        let fault_rate = rate_from(&lookup, "PAYMENT_FAULT_RATE", 0.05)?;
        if decline_rate + fault_rate > 1.0 {
            return Err(Error::Config {
                variable: "PAYMENT_FAULT_RATE",
                reason: "decline and fault rates add up to more than 1".to_owned(),
            });
        }
        let latency = range_from(
            &lookup,
            "PAYMENT_LATENCY_MS",
            LatencyRange {
                min_ms: 100,
                max_ms: 500,
            },
        )?;
        let seed = seed_from(&lookup)?;
        Ok(Self {
            gateway: GatewayBehaviour {
                decline_rate,
                fault_rate,
                latency,
            },
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<PaymentConfig, Error> {
        PaymentConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_match_the_seed_service() {
        let config = parse(&[]).unwrap();
        assert_eq!(
            config.gateway.latency,
            LatencyRange {
                min_ms: 100,
                max_ms: 500
            }
        );
        assert!((config.gateway.decline_rate + config.gateway.fault_rate - 0.10).abs() < 1e-9);
        assert_eq!(config.seed, 2);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&[("PAYMENT_DECLINE_RATE", "2")]).is_err());
        assert!(parse(&[
            ("PAYMENT_DECLINE_RATE", "0.6"),
            ("PAYMENT_FAULT_RATE", "0.6")
        ])
        .is_err());
        assert!(parse(&[("PAYMENT_LATENCY_MS", "fast")]).is_err());
        assert!(parse(&[("SIMULATION_SEED", "-1")]).is_err());
        assert_eq!(
            parse(&[("PAYMENT_LATENCY_MS", "0")])
                .unwrap()
                .gateway
                .latency,
            LatencyRange::NONE
        );
    }
}
