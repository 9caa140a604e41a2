//! Simulated latency and failure for the demo services, behind an injected, seeded RNG.
//!
//! Payment and inventory stand in for real back ends; their delays and failures must be
//! reproducible (a seed), configurable (env), and free in tests (`tokio::time::pause` makes the
//! sleeps virtual). Latency ranges are written `100..500` (ms, inclusive), `150`, or `0` for none.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Error;

/// Seed used when `SIMULATION_SEED` is not set.
pub const DEFAULT_SEED: u64 = 2;

/// Number of SKUs in the simulated catalog (`SKU-0001` … `SKU-0100`), shared by inventory and
/// whoever generates orders.
pub const CATALOG_SIZE: usize = 100;

/// The catalog's `index`-th SKU (0-based).
pub fn catalog_sku(index: usize) -> String {
    format!("SKU-{:04}", index + 1)
}

/// An inclusive range of milliseconds; `0..0` means no delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyRange {
    /// Shortest delay.
    pub min_ms: u64,
    /// Longest delay.
    pub max_ms: u64,
}

impl LatencyRange {
    /// No delay at all.
    pub const NONE: Self = Self {
        min_ms: 0,
        max_ms: 0,
    };

    /// Whether this range never delays.
    pub fn is_none(self) -> bool {
        self.max_ms == 0
    }
}

impl FromStr for LatencyRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::Config {
            variable: "latency range",
            reason: format!("{s:?} is not MS, MIN..MAX or 0"),
        };
        let s = s.trim();
        let (min, max) = match s.split_once("..") {
            Some((min, max)) => (min.trim(), max.trim()),
            None => (s, s),
        };
        let min_ms = min.parse::<u64>().map_err(|_| bad())?;
        let max_ms = max.parse::<u64>().map_err(|_| bad())?;
        if min_ms > max_ms || max_ms > 60_000 {
            return Err(bad());
        }
        Ok(Self { min_ms, max_ms })
    }
}

impl fmt::Display for LatencyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min_ms == self.max_ms {
            write!(f, "{}", self.min_ms)
        } else {
            write!(f, "{}..{}", self.min_ms, self.max_ms)
        }
    }
}

/// Parses a rate in `[0, 1]` from the environment-style string `raw` for `variable`.
pub fn parse_rate(variable: &'static str, raw: &str) -> Result<f64, Error> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(Error::Config {
            variable,
            reason: format!("{raw:?} is not a number between 0 and 1"),
        }),
    }
}

/// Reads a rate variable through `lookup`, or `default` when it is absent.
pub fn rate_from(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: f64,
) -> Result<f64, Error> {
    lookup(variable).map_or(Ok(default), |raw| parse_rate(variable, &raw))
}

/// Reads a `N`, `MIN..MAX` or `0` range variable through `lookup`, or `default` when absent.
pub fn range_from(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: LatencyRange,
) -> Result<LatencyRange, Error> {
    match lookup(variable) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|_| Error::Config {
            variable,
            reason: format!("{raw:?} is not N, MIN..MAX or 0"),
        }),
    }
}

/// Reads `SIMULATION_SEED` through `lookup`, or [`DEFAULT_SEED`].
pub fn seed_from(lookup: &impl Fn(&str) -> Option<String>) -> Result<u64, Error> {
    match lookup("SIMULATION_SEED") {
        None => Ok(DEFAULT_SEED),
        Some(raw) => raw.parse().map_err(|_| Error::Config {
            variable: "SIMULATION_SEED",
            reason: format!("{raw:?} is not an unsigned integer"),
        }),
    }
}

/// A seeded source of delays and coin flips, safe to share between concurrent requests.
#[derive(Debug)]
pub struct Simulator {
    rng: Mutex<ChaCha8Rng>,
}

impl Simulator {
    /// A simulator whose sequence is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        let mut rng = match self.rng.lock() {
            Ok(rng) => rng,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut rng)
    }

    /// A delay drawn uniformly from `range`.
    pub fn latency(&self, range: LatencyRange) -> Duration {
        if range.is_none() {
            return Duration::ZERO;
        }
        Duration::from_millis(self.with_rng(|rng| rng.random_range(range.min_ms..=range.max_ms)))
    }

    /// Sleeps for a delay drawn from `range` (virtual under `tokio::time::pause`).
    pub async fn delay(&self, range: LatencyRange) {
        let delay = self.latency(range);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// A uniform integer in `min..=max`.
    pub fn between(&self, min: u64, max: u64) -> u64 {
        self.with_rng(|rng| rng.random_range(min..=max))
    }

    /// A uniform draw in `[0, 1)`, for choosing between outcomes with several rates.
    pub fn draw(&self) -> f64 {
        self.with_rng(|rng| rng.random::<f64>())
    }

    /// `n` random bytes rendered as lowercase hex (for ids).
    pub fn hex_id(&self, bytes: usize) -> String {
        self.with_rng(|rng| {
            (0..bytes)
                .map(|_| format!("{:02x}", rng.random::<u8>()))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_range_table() {
        let table: &[(&str, Option<(u64, u64)>)] = &[
            ("100..500", Some((100, 500))),
            ("0", Some((0, 0))),
            ("150", Some((150, 150))),
            (" 50 .. 300 ", Some((50, 300))),
            ("500..100", None),
            ("-1", None),
            ("a..b", None),
            ("", None),
            ("1..999999", None),
        ];
        for (input, expected) in table {
            let got = input
                .parse::<LatencyRange>()
                .ok()
                .map(|r| (r.min_ms, r.max_ms));
            assert_eq!(got, *expected, "input {input:?}");
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = Simulator::seeded(7);
        let b = Simulator::seeded(7);
        let range = LatencyRange {
            min_ms: 100,
            max_ms: 500,
        };
        for _ in 0..100 {
            let (da, db) = (a.latency(range), b.latency(range));
            assert_eq!(da, db);
            assert!((100..=500).contains(&(da.as_millis() as u64)));
        }
        assert_eq!(a.hex_id(8), b.hex_id(8));
        assert_eq!(
            Simulator::seeded(1).latency(LatencyRange::NONE),
            Duration::ZERO
        );
    }

    #[test]
    fn rates_are_checked() {
        assert_eq!(parse_rate("X", "0.1").unwrap(), 0.1);
        assert!(parse_rate("X", "1.5").is_err());
        assert!(parse_rate("X", "ten").is_err());
    }
}
