//! Order settings, read once at cold start. The peers' URLs have no defaults: a missing one is a
//! deployment error and the function refuses to start.

use std::time::Duration;

use lattice_xray::{Error, Timeouts};

/// Settings with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderConfig {
    /// `INVENTORY_SERVICE_URL`: base URL of the inventory Lattice service.
    pub inventory_url: String,
    /// `PAYMENT_SERVICE_URL`: base URL of the payment Lattice service.
    pub payment_url: String,
    /// `ORDER_CURRENCY` (default `USD`): currency orders are charged in.
    pub currency: String,
    /// `DOWNSTREAM_CONNECT_TIMEOUT_MS` (default 1000) and `DOWNSTREAM_TIMEOUT_MS` (default 3000).
    pub timeouts: Timeouts,
}

fn base_url(variable: &'static str, raw: Option<String>) -> Result<String, Error> {
    let raw = raw.ok_or(Error::Config {
        variable,
        reason: "must be set to the service's Lattice URL".to_owned(),
    })?;
    let uri: http::Uri = raw.parse().map_err(|_| Error::Config {
        variable,
        reason: format!("{raw:?} is not a URL"),
    })?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(raw.trim_end_matches('/').to_owned()),
        _ => Err(Error::Config {
            variable,
            reason: format!("{raw:?} is not an http(s) URL with a host"),
        }),
    }
}

fn millis(variable: &'static str, raw: Option<String>, default: u64) -> Result<Duration, Error> {
    match raw {
        None => Ok(Duration::from_millis(default)),
        Some(raw) => match raw.parse::<u64>() {
            Ok(ms) if (1..=900_000).contains(&ms) => Ok(Duration::from_millis(ms)),
            _ => Err(Error::Config {
                variable,
                reason: format!("{raw:?} is not 1-900000 ms"),
            }),
        },
    }
}

impl OrderConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads any lookup (tests pass a closure).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let currency = lookup("ORDER_CURRENCY").unwrap_or_else(|| "USD".to_owned());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::Config {
                variable: "ORDER_CURRENCY",
                reason: format!("{currency:?} is not an ISO 4217 code"),
            });
        }
        Ok(Self {
            inventory_url: base_url("INVENTORY_SERVICE_URL", lookup("INVENTORY_SERVICE_URL"))?,
            payment_url: base_url("PAYMENT_SERVICE_URL", lookup("PAYMENT_SERVICE_URL"))?,
            currency,
            timeouts: Timeouts {
                connect: millis(
                    "DOWNSTREAM_CONNECT_TIMEOUT_MS",
                    lookup("DOWNSTREAM_CONNECT_TIMEOUT_MS"),
                    1000,
                )?,
                request: millis(
                    "DOWNSTREAM_TIMEOUT_MS",
                    lookup("DOWNSTREAM_TIMEOUT_MS"),
                    3000,
                )?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<OrderConfig, Error> {
        OrderConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    const URLS: [(&str, &str); 2] = [
        (
            "INVENTORY_SERVICE_URL",
            "https://inventory-0f1e.7d67968.vpc-lattice-svcs.eu-west-1.on.aws/",
        ),
        ("PAYMENT_SERVICE_URL", "http://127.0.0.1:9002"),
    ];

    #[test]
    fn reads_urls_and_defaults() {
        let config = parse(&URLS).unwrap();
        assert_eq!(
            config.inventory_url,
            "https://inventory-0f1e.7d67968.vpc-lattice-svcs.eu-west-1.on.aws"
        );
        assert_eq!(config.payment_url, "http://127.0.0.1:9002");
        assert_eq!(config.currency, "USD");
        assert_eq!(
            config.timeouts,
            Timeouts {
                connect: Duration::from_secs(1),
                request: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn refuses_missing_or_bad_values() {
        let table: &[&[(&str, &str)]] = &[
            &[URLS[0]],
            &[URLS[1]],
            &[URLS[0], ("PAYMENT_SERVICE_URL", "payment")],
            &[URLS[0], ("PAYMENT_SERVICE_URL", "ftp://x/")],
            &[URLS[0], URLS[1], ("DOWNSTREAM_TIMEOUT_MS", "0")],
            &[URLS[0], URLS[1], ("ORDER_CURRENCY", "euro")],
        ];
        for pairs in table {
            assert!(parse(pairs).is_err(), "{pairs:?}");
        }
    }
}
