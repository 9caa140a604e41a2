//! The price table: list prices with their unit, source and date, read from a JSON file
//! (`cost/prices/<region>.json`; the us-east-1 table is built in, `--prices FILE` replaces it).
//!
//! A table is validated when it is read, so a report never prices anything with a zero that
//! stands for "missing": every line the model uses must be present ([`REQUIRED`]), positive and
//! finite, with a source; tiers must rise and end open. A lookup of a line the table lacks is an
//! error naming the line and the file, never a silent zero.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in table.
pub const US_EAST_1: &str = include_str!("../prices/us-east-1.json");

/// The schema version this code reads.
pub const SCHEMA: u32 = 1;

/// Every line the cost model prices with.
pub const REQUIRED: &[&str] = &[
    LATTICE_SERVICE_HOUR,
    LATTICE_DATA,
    LATTICE_REQUESTS,
    LAMBDA_REQUESTS,
    LAMBDA_ARM64,
    LAMBDA_X86_64,
    XRAY_RECORDED,
    XRAY_RETRIEVED,
    LOGS_STANDARD,
    LOGS_VENDED,
    LOGS_INSIGHTS,
    CUSTOM_METRIC,
    DYNAMODB_WRITE,
    DYNAMODB_READ,
    COST_EXPLORER_REQUEST,
];

/// Cost Explorer's API, per request (what reconciling with the bill costs).
pub const COST_EXPLORER_REQUEST: &str = "costexplorer.request";
/// Lattice, per service per hour or partial hour.
pub const LATTICE_SERVICE_HOUR: &str = "lattice.service_hour";
/// Lattice, per GB of request plus response bytes.
pub const LATTICE_DATA: &str = "lattice.data_processed";
/// Lattice, per request above the free requests of each hour.
pub const LATTICE_REQUESTS: &str = "lattice.requests";
/// Lambda, per request.
pub const LAMBDA_REQUESTS: &str = "lambda.requests";
/// Lambda duration on arm64, per GB-second.
pub const LAMBDA_ARM64: &str = "lambda.duration.arm64";
/// Lambda duration on x86_64, per GB-second.
pub const LAMBDA_X86_64: &str = "lambda.duration.x86_64";
/// X-Ray, per trace recorded.
pub const XRAY_RECORDED: &str = "xray.traces_recorded";
/// X-Ray, per trace retrieved or scanned.
pub const XRAY_RETRIEVED: &str = "xray.traces_retrieved";
/// CloudWatch Logs standard ingestion, per GB.
pub const LOGS_STANDARD: &str = "logs.ingestion.standard";
/// Vended logs (Lattice access logs, Lambda logs), per GB, tiered.
pub const LOGS_VENDED: &str = "logs.ingestion.vended";
/// Logs Insights, per GB scanned.
pub const LOGS_INSIGHTS: &str = "logs.insights_scanned";
/// A custom metric, per metric-month.
pub const CUSTOM_METRIC: &str = "cloudwatch.custom_metric";
/// DynamoDB on-demand, per write request unit.
pub const DYNAMODB_WRITE: &str = "dynamodb.write_request_units";
/// DynamoDB on-demand, per read request unit.
pub const DYNAMODB_READ: &str = "dynamodb.read_request_units";

/// What can be wrong with a table.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PriceError {
    /// The file could not be read.
    #[error("cannot read the price table {file}: {reason}")]
    Unreadable { file: String, reason: String },
    /// The JSON does not parse as a table.
    #[error("the price table {file} is not valid: {reason}")]
    Invalid { file: String, reason: String },
    /// A schema this code does not know.
    #[error("the price table {file} has schema {found}; this build reads schema {SCHEMA}")]
    Schema { file: String, found: u32 },
    /// A line the model needs is not in the table.
    #[error("the price table {file} has no price for {line}: add it (unit, usd, source)")]
    Missing { file: String, line: String },
    /// A line is present but unusable.
    #[error("the price table {file}: {line} {reason}")]
    Bad {
        file: String,
        line: String,
        reason: String,
    },
}

/// One step of a tiered price: `usd` per unit up to `up_to` units a month (`None`: no end).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// The cumulative monthly quantity this tier ends at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<f64>,
    /// Price per unit within the tier.
    pub usd: f64,
}

/// An account-wide allowance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreeTier {
    /// Units free per period.
    pub quantity: f64,
    /// `hour` or `month`.
    pub per: String,
    /// Another line drawing on the same allowance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
}

/// One price line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// What one unit is.
    pub unit: String,
    /// The list (first-tier) price per unit: the marginal cost the model charges.
    pub usd: f64,
    /// Volume tiers, when the price falls with monthly volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// The free tier, shown as its own line and never netted into unit costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<FreeTier>,
    /// Where the price was read.
    pub source: String,
    /// `page` (the pricing page) or `secondary` (consistent secondary sources).
    pub checked: String,
}

impl Price {
    /// What `quantity` units in one month cost through the tiers (the list price when the line
    /// has none), before any free tier.
    pub fn monthly(&self, quantity: f64) -> f64 {
        if self.tiers.is_empty() {
            return quantity * self.usd;
        }
        let mut cost = 0.0;
        let mut start = 0.0;
        for tier in &self.tiers {
            let end = tier.up_to.unwrap_or(f64::INFINITY);
            if quantity <= start {
                break;
            }
            cost += (quantity.min(end) - start) * tier.usd;
            start = end;
        }
        cost
    }
}

/// A whole table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The Region the prices are for.
    pub region: String,
    /// `USD`.
    pub currency: String,
    /// The day the prices were read.
    pub as_of: String,
    /// What the table is and is not.
    #[serde(default)]
    pub note: String,
    /// The open assumptions, printed with every report.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// The lines by name.
    pub prices: BTreeMap<String, Price>,
    /// Where the table came from (the built-in table or a file), for messages.
    #[serde(skip)]
    pub origin: String,
}

impl PriceTable {
    /// The built-in us-east-1 table.
    pub fn built_in() -> Self {
        Self::parse(US_EAST_1, "built-in prices/us-east-1.json")
            .expect("the built-in price table is valid (tested)")
    }

    /// The table in `path`.
    pub fn load(path: &Path) -> Result<Self, PriceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| PriceError::Unreadable {
            file: file.clone(),
            reason: error.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    /// The table in `text`, read from `origin`, validated.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PriceError> {
        let mut table: PriceTable =
            serde_json::from_str(text).map_err(|error| PriceError::Invalid {
                file: origin.to_owned(),
                reason: error.to_string(),
            })?;
        table.origin = origin.to_owned();
        table.validate()?;
        Ok(table)
    }

    /// The line `name`.
    pub fn get(&self, name: &str) -> Result<&Price, PriceError> {
        self.prices.get(name).ok_or_else(|| PriceError::Missing {
            file: self.origin.clone(),
            line: name.to_owned(),
        })
    }

    /// The list price per unit of line `name`.
    pub fn usd(&self, name: &str) -> Result<f64, PriceError> {
        self.get(name).map(|price| price.usd)
    }

    fn validate(&self) -> Result<(), PriceError> {
        if self.schema != SCHEMA {
            return Err(PriceError::Schema {
                file: self.origin.clone(),
                found: self.schema,
            });
        }
        for name in REQUIRED {
            self.get(name)?;
        }
        for (name, price) in &self.prices {
            self.validate_line(name, price)?;
        }
        Ok(())
    }

    fn validate_line(&self, name: &str, price: &Price) -> Result<(), PriceError> {
        let bad = |reason: &str| PriceError::Bad {
            file: self.origin.clone(),
            line: name.to_owned(),
            reason: reason.to_owned(),
        };
        if !(price.usd.is_finite() && price.usd > 0.0) {
            return Err(bad("must have a positive usd"));
        }
        if price.source.trim().is_empty() {
            return Err(bad("must name its source"));
        }
        if let Some(first) = price.tiers.first() {
            if first.usd != price.usd {
                return Err(bad("must have usd equal to its first tier's"));
            }
        }
        let mut previous = 0.0;
        for (i, tier) in price.tiers.iter().enumerate() {
            let last = i + 1 == price.tiers.len();
            if !(tier.usd.is_finite() && tier.usd > 0.0) {
                return Err(bad("has a tier without a positive usd"));
            }
            match tier.up_to {
                Some(_) if last => return Err(bad("must end with an open tier (no up_to)")),
                Some(end) if end.partial_cmp(&previous) != Some(std::cmp::Ordering::Greater) => {
                    return Err(bad("has tiers whose up_to do not rise"));
                }
                Some(end) => previous = end,
                None if !last => return Err(bad("has an open tier before the last")),
                None => {}
            }
        }
        if let Some(free) = &price.free {
            if !(free.quantity.is_finite() && free.quantity > 0.0) {
                return Err(bad("has a free tier without a positive quantity"));
            }
            if free.per != "hour" && free.per != "month" {
                return Err(bad(
                    "has a free tier per something other than hour or month",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<PriceTable, PriceError> {
        let mut value: serde_json::Value = serde_json::from_str(US_EAST_1).unwrap();
        edit(&mut value);
        PriceTable::parse(&value.to_string(), "test.json")
    }

    #[test]
    fn the_built_in_table_has_every_line_with_the_facts_prices() {
        let table = PriceTable::built_in();
        assert_eq!(table.region, "us-east-1");
        assert_eq!(table.usd(LATTICE_SERVICE_HOUR), Ok(0.025));
        assert_eq!(table.usd(LAMBDA_ARM64), Ok(0.0000133334));
        assert_eq!(table.usd(XRAY_RECORDED), Ok(0.000005));
        assert_eq!(table.usd(DYNAMODB_WRITE), Ok(0.000000625));
        let free = table.get(LATTICE_REQUESTS).unwrap().free.clone().unwrap();
        assert_eq!((free.quantity, free.per.as_str()), (300_000.0, "hour"));
        assert!(table.assumptions.iter().any(|a| a.contains("10^9")));
    }

    #[test]
    fn a_missing_line_is_an_error_naming_it_and_the_file() {
        let error = with(|v| {
            v["prices"].as_object_mut().unwrap().remove(XRAY_RECORDED);
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the price table test.json has no price for xray.traces_recorded: add it (unit, usd, source)"
        );
    }

    #[test]
    fn zero_unsourced_or_disordered_prices_are_refused() {
        let zero = with(|v| v["prices"][LAMBDA_REQUESTS]["usd"] = 0.0.into()).unwrap_err();
        assert!(zero
            .to_string()
            .ends_with("lambda.requests must have a positive usd"));
        let unsourced = with(|v| v["prices"][LAMBDA_REQUESTS]["source"] = " ".into()).unwrap_err();
        assert!(unsourced.to_string().ends_with("must name its source"));
        let falling = with(|v| v["prices"][LAMBDA_ARM64]["tiers"][1]["up_to"] = 1.0.into());
        assert!(falling.unwrap_err().to_string().contains("do not rise"));
        let closed = with(|v| {
            v["prices"][LOGS_VENDED]["tiers"][3]["up_to"] = 1e9.into();
        });
        assert!(closed.unwrap_err().to_string().contains("open tier"));
        let schema = with(|v| v["schema"] = 2.into()).unwrap_err();
        assert_eq!(
            schema,
            PriceError::Schema {
                file: "test.json".into(),
                found: 2
            }
        );
    }

    #[test]
    fn tiers_charge_each_slice_at_its_own_price() {
        let table = PriceTable::built_in();
        let vended = table.get(LOGS_VENDED).unwrap();
        // 12 TB: 10,000 GB at 0.50, then 2,000 GB at 0.25.
        let expected = 10_000.0 * 0.5 + 2_000.0 * 0.25;
        assert!((vended.monthly(12_000.0) - expected).abs() < 1e-9);
        // 60 TB: every tier, the last open.
        let expected = 10_000.0 * 0.5 + 20_000.0 * 0.25 + 20_000.0 * 0.1 + 10_000.0 * 0.05;
        assert!((vended.monthly(60_000.0) - expected).abs() < 1e-9);
        let flat = table.get(LATTICE_DATA).unwrap();
        assert!((flat.monthly(4.0) - 0.1).abs() < 1e-12);
        assert_eq!(vended.monthly(0.0), 0.0);
    }
}
