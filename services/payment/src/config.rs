//! Payment settings, read once at cold start.

use std::time::Duration;

use lattice_xray::simulation::{range_from, rate_from, seed_from, LatencyRange};
use lattice_xray::Error;

use lattice_xray::dynamodb::{table_from, timeout_from};

use crate::gateway::GatewayBehaviour;

/// The variable naming the payments table.
pub const TABLE_ENV: &str = "PAYMENTS_TABLE";

/// Settings with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentConfig {
    /// `PAYMENTS_TABLE` (required): the DynamoDB table of charges.
    pub table: String,
    /// `DYNAMODB_TIMEOUT_MS` (default 1000): each DynamoDB call's whole budget, retries included.
    pub dynamodb_timeout: Duration,
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
            table: table_from(&lookup, TABLE_ENV)?,
            dynamodb_timeout: timeout_from(&lookup)?,
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
            if k == TABLE_ENV {
                return Some("payments".to_owned());
            }
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
        assert_eq!(config.table, "payments");
        assert_eq!(config.dynamodb_timeout, Duration::from_millis(1000));
        assert!(
            PaymentConfig::from_lookup(|_| None).is_err(),
            "the table is required"
        );
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
