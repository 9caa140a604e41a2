//! The performance × cost report's figures, from measured usage and a price table: one row per
//! service (performance beside cost per 1M requests, line by line), the cost per order end to
//! end, the projection of cost per 1M orders by request rate (fixed vs variable), and the free
//! tiers as their own lines. Every figure is a formula of [`model`](crate::model) over the raw
//! counts; nothing is estimated here.
//!
//! Attribution rules, printed with the report:
//! - an X-Ray trace is one billing unit whatever services it crosses; it is charged to the entry
//!   service (the one the client calls);
//! - a service's Lattice service-hour is its own, the window's share of it (`seconds/3600`);
//! - Lambda cost joins the service whose function it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{CostLines, Rates};
use crate::prices::{PriceError, PriceTable};
use crate::usage::Measured;

/// The request rates the projection is drawn at, orders per second.
pub const PROJECTION_RATES: &[f64] = &[0.1, 1.0, 10.0, 100.0, 1000.0];

/// Hours in a month, for hourly free tiers (AWS's 730).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What the report is asked about.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The window's length.
    pub window_seconds: f64,
    /// Orders completed in it.
    pub orders: u64,
    /// X-Ray traces recorded in it.
    pub traces: u64,
    /// The service the client calls.
    pub entry_service: String,
}

/// One service's row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceRow {
    /// The service.
    pub service: String,
    /// Lattice requests.
    pub requests: u64,
    /// Access-log latency, ms.
    pub p50_ms: Option<f64>,
    /// 〃
    pub p90_ms: Option<f64>,
    /// 〃
    pub p99_ms: Option<f64>,
    /// Status classes in percent.
    pub status_2xx_percent: f64,
    /// 〃
    pub status_4xx_percent: f64,
    /// 〃
    pub status_5xx_percent: f64,
    /// `bytesReceived` summed.
    pub bytes_in: u64,
    /// `bytesSent` summed.
    pub bytes_out: u64,
    /// Lambda invocations.
    pub invocations: u64,
    /// Billed GB-seconds.
    pub billed_gb_seconds: f64,
    /// Cold starts among the reports, percent.
    pub cold_start_percent: f64,
    /// Peak memory used.
    pub max_memory_used_mb: u32,
    /// Configured memory.
    pub memory_mb: u32,
    /// DynamoDB write request units.
    pub dynamodb_write_units: f64,
    /// DynamoDB read request units.
    pub dynamodb_read_units: f64,
    /// X-Ray traces charged to it: the counted traces on the entry service, and Lambda's own
    /// sampled traces of its invocations.
    pub xray_traces: u64,
    /// The window's cost, by line.
    pub cost: CostLines,
    /// Cost per 1M of its requests, by line; `None` with no requests.
    pub cost_per_million_requests: Option<CostLines>,
}

/// One point of the projection.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProjectionPoint {
    /// Orders per second, steady.
    pub orders_per_second: f64,
    /// Cost per 1M orders at that rate, by line.
    pub per_million_orders: CostLines,
    /// The fixed part (service-hours).
    pub fixed: f64,
    /// The variable part.
    pub variable: f64,
}

/// A free tier, shown apart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FreeTierLine {
    /// The price line.
    pub line: String,
    /// Units free per month.
    pub units_per_month: f64,
    /// What they would cost at list price, per month.
    pub worth_usd_per_month: f64,
}

/// The report's figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CostReport {
    /// The price table's Region.
    pub region: String,
    /// Its date.
    pub prices_as_of: String,
    /// Its open assumptions and the attribution rules.
    pub assumptions: Vec<String>,
    /// The window, seconds.
    pub window_seconds: f64,
    /// Orders in it.
    pub orders: u64,
    /// The rows, by service name.
    pub services: Vec<ServiceRow>,
    /// The window's total, by line.
    pub total: CostLines,
    /// Cost per order end to end, by line.
    pub per_order: CostLines,
    /// Cost per 1M orders by steady rate.
    pub projection: Vec<ProjectionPoint>,
    /// The free tiers, not netted into any figure above.
    pub free_tiers: Vec<FreeTierLine>,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    /// The price table lacks a line.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// No order completed: nothing to divide by.
    #[error("no order completed in the window: there is no cost per order to report")]
    NoOrders,
    /// The entry service is not among the measured.
    #[error("the entry service {0} has no measurements (measured: {1})")]
    UnknownEntry(String, String),
}

/// The rules this module attributes by, printed with the table's assumptions.
pub const ATTRIBUTION_RULES: &[&str] = &[
    "An X-Ray trace is one billing unit whatever it crosses: it is charged to the entry service; Lambda's own sampled trace of an invocation, outside those, to the invoked function's service.",
    "Each Lattice service pays its own service-hour; a window carries seconds/3600 of it (the bill rounds partial hours up).",
    "Marginal list prices: free tiers are account-wide monthly allowances, listed apart and never netted.",
];

/// The report over `measured` within `scope`, priced by `table`.
pub fn build(
    measured: &BTreeMap<String, Measured>,
    scope: &Scope,
    table: &PriceTable,
) -> Result<CostReport, ReportError> {
    let rates = Rates::from(table)?;
    if scope.orders == 0 {
        return Err(ReportError::NoOrders);
    }
    if !measured.contains_key(&scope.entry_service) {
        let names: Vec<&str> = measured.keys().map(String::as_str).collect();
        return Err(ReportError::UnknownEntry(
            scope.entry_service.clone(),
            names.join(", "),
        ));
    }
    let services: Vec<ServiceRow> = measured
        .iter()
        .map(|(name, m)| {
            let entry_traces = if *name == scope.entry_service {
                scope.traces
            } else {
                0
            };
            let traces = entry_traces + m.usage.lambda_traces;
            row(
                name,
                m,
                traces,
                rates.cost(&m.usage, scope.window_seconds, traces),
            )
        })
        .collect();
    let total = services
        .iter()
        .fold(CostLines::default(), |sum, row| sum.plus(&row.cost));
    let per_order = total.scaled(1.0 / scope.orders as f64);
    let requests_per_order: Vec<f64> = services
        .iter()
        .map(|row| row.requests as f64 / scope.orders as f64)
        .collect();
    let projection = PROJECTION_RATES
        .iter()
        .map(|&rate| {
            let lines = rates.per_million_orders_at(&per_order, &requests_per_order, rate);
            ProjectionPoint {
                orders_per_second: rate,
                fixed: lines.lattice_service_hours,
                variable: lines.variable(),
                per_million_orders: lines,
            }
        })
        .collect();
    let mut assumptions = table.assumptions.clone();
    assumptions.extend(ATTRIBUTION_RULES.iter().map(|rule| (*rule).to_owned()));
    Ok(CostReport {
        region: table.region.clone(),
        prices_as_of: table.as_of.clone(),
        assumptions,
        window_seconds: scope.window_seconds,
        orders: scope.orders,
        services,
        total,
        per_order,
        projection,
        free_tiers: free_tiers(table),
    })
}

fn row(name: &str, measured: &Measured, xray_traces: u64, cost: CostLines) -> ServiceRow {
    let (usage, traffic) = (&measured.usage, &measured.traffic);
    let requests = usage.requests();
    ServiceRow {
        service: name.to_owned(),
        requests,
        p50_ms: traffic.latency_at(0.50),
        p90_ms: traffic.latency_at(0.90),
        p99_ms: traffic.latency_at(0.99),
        status_2xx_percent: traffic.status_percent(2),
        status_4xx_percent: traffic.status_percent(4),
        status_5xx_percent: traffic.status_percent(5),
        bytes_in: traffic.bytes_in,
        bytes_out: traffic.bytes_out,
        invocations: usage.invocations,
        billed_gb_seconds: usage.gb_seconds_arm64 + usage.gb_seconds_x86_64,
        cold_start_percent: traffic.cold_start_percent(),
        max_memory_used_mb: traffic.max_memory_used_mb,
        memory_mb: traffic.memory_mb,
        dynamodb_write_units: usage.dynamodb_write_units,
        dynamodb_read_units: usage.dynamodb_read_units,
        xray_traces,
        cost,
        cost_per_million_requests: (requests > 0).then(|| cost.scaled(1e6 / requests as f64)),
    }
}

/// Each line's free tier, as units and list-price worth per month.
pub fn free_tiers(table: &PriceTable) -> Vec<FreeTierLine> {
    table
        .prices
        .iter()
        .filter_map(|(name, price)| {
            let free = price.free.as_ref()?;
            let units_per_month = match free.per.as_str() {
                "hour" => free.quantity * HOURS_PER_MONTH,
                _ => free.quantity,
            };
            Some(FreeTierLine {
                line: name.clone(),
                units_per_month,
                worth_usd_per_month: price.monthly(units_per_month),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;
    use crate::usage::{parse_report_line, UsageBuilder};

    const ORDER: &str = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-order";
    const PAYMENT: &str = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-payment";

    fn entry(arn: &str, second: u32, status: u16, duration: u64) -> String {
        format!(
            "{{\"serviceArn\":\"{arn}\",\"startTime\":\"2026-12-01T10:00:{second:02}Z\",\"responseCode\":{status},\"bytesReceived\":300,\"bytesSent\":700,\"duration\":{duration}}}"
        )
    }

    fn report(id: u32, billed: u64, cold: bool) -> String {
        let init = if cold {
            "Init Duration: 20.00 ms\t"
        } else {
            ""
        };
        format!("REPORT RequestId: r{id}\tDuration: 1.00 ms\tBilled Duration: {billed} ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t{init}")
    }

    /// Two orders: order called twice (one 201, one 503), payment once; each figure recomputed
    /// here from the formulas and the raw records.
    fn measured() -> (BTreeMap<String, Measured>, Vec<String>) {
        let mut builder = UsageBuilder::new(BTreeMap::from([
            (ORDER.to_owned(), "order".to_owned()),
            (PAYMENT.to_owned(), "payment".to_owned()),
        ]));
        let lines = vec![
            entry(ORDER, 1, 201, 40),
            entry(ORDER, 2, 503, 90),
            entry(PAYMENT, 1, 201, 10),
        ];
        for line in &lines {
            builder.add_access_entry(line).unwrap();
        }
        for (service, id, billed, cold) in [
            ("order", 1, 60, true),
            ("order", 2, 30, false),
            ("payment", 3, 8, false),
        ] {
            let parsed = parse_report_line(&report(id, billed, cold)).unwrap();
            builder.add_report(service, &parsed, Arch::Arm64).unwrap();
        }
        builder.add_lambda_log_bytes("order", 2_000).unwrap();
        (builder.finish("test").unwrap(), lines)
    }

    #[test]
    fn every_figure_follows_from_the_records_and_the_prices() {
        let (measured, lines) = measured();
        let scope = Scope {
            window_seconds: 60.0,
            orders: 2,
            traces: 2,
            entry_service: "order".into(),
        };
        let report = build(&measured, &scope, &PriceTable::built_in()).unwrap();
        let order = &report.services[0];
        assert_eq!(order.service, "order");
        assert_eq!(order.requests, 2);
        assert_eq!(
            (order.status_2xx_percent, order.status_5xx_percent),
            (50.0, 50.0)
        );
        assert_eq!((order.p50_ms, order.p99_ms), (Some(40.0), Some(90.0)));
        assert_eq!((order.bytes_in, order.bytes_out), (600, 1400));
        assert_eq!(order.cold_start_percent, 50.0);
        let gb_s = (0.060 + 0.030) * 128.0 / 1024.0;
        assert!((order.billed_gb_seconds - gb_s).abs() < 1e-12);
        let access_bytes = (lines[0].len() + lines[1].len()) as f64;
        let expected = CostLines {
            lambda_requests: 2.0 * 0.0000002,
            lambda_compute: gb_s * 0.0000133334,
            lattice_requests: 0.0,
            lattice_data: 2000.0 / 1e9 * 0.025,
            lattice_service_hours: 60.0 / 3600.0 * 0.025,
            xray: 2.0 * 0.000005,
            access_logs: access_bytes / 1e9 * 0.5,
            lambda_logs: 2000.0 / 1e9 * 0.5,
            dynamodb: 0.0,
        };
        assert_lines_eq(&order.cost, &expected);
        assert_lines_eq(
            order.cost_per_million_requests.as_ref().unwrap(),
            &expected.scaled(1e6 / 2.0),
        );
        let payment = &report.services[1];
        assert_eq!(payment.cost.xray, 0.0, "traces go to the entry service");
        let total = expected.total() + payment.cost.total();
        assert!((report.total.total() - total).abs() < 1e-15);
        assert!((report.per_order.total() - total / 2.0).abs() < 1e-15);
        // At 10 orders/s: each service's hour over 36,000 orders, per 1M.
        let at_10 = &report.projection[2];
        assert_eq!(at_10.orders_per_second, 10.0);
        assert!((at_10.fixed - 2.0 * 0.025 / 36_000.0 * 1e6).abs() < 1e-9);
        let variable = (total - 2.0 * 60.0 / 3600.0 * 0.025) / 2.0 * 1e6;
        assert!((at_10.variable - variable).abs() < 1e-9);
        // The fixed part falls with the rate; the variable part does not.
        assert!((report.projection[0].fixed - 100.0 * at_10.fixed).abs() < 1e-6);
        assert!((report.projection[0].variable - at_10.variable).abs() < 1e-9);
    }

    #[test]
    fn no_orders_no_prices_or_an_unknown_entry_are_clear_errors() {
        let (measured, _) = measured();
        let mut scope = Scope {
            window_seconds: 60.0,
            orders: 0,
            traces: 0,
            entry_service: "order".into(),
        };
        let table = PriceTable::built_in();
        assert_eq!(build(&measured, &scope, &table), Err(ReportError::NoOrders));
        scope.orders = 1;
        scope.entry_service = "checkout".into();
        assert_eq!(
            build(&measured, &scope, &table).unwrap_err().to_string(),
            "the entry service checkout has no measurements (measured: order, payment)"
        );
        let mut partial = table.clone();
        partial.prices.remove(crate::prices::DYNAMODB_READ);
        scope.entry_service = "order".into();
        assert!(build(&measured, &scope, &partial)
            .unwrap_err()
            .to_string()
            .contains("no price for dynamodb.read_request_units"));
    }

    #[test]
    fn free_tiers_are_listed_at_their_monthly_worth() {
        let tiers = free_tiers(&PriceTable::built_in());
        let lambda = tiers.iter().find(|t| t.line == "lambda.requests").unwrap();
        assert!((lambda.worth_usd_per_month - 0.20).abs() < 1e-12);
        let lattice = tiers.iter().find(|t| t.line == "lattice.requests").unwrap();
        assert_eq!(lattice.units_per_month, 300_000.0 * 730.0);
        let arm64 = tiers
            .iter()
            .find(|t| t.line == "lambda.duration.arm64")
            .unwrap();
        assert!((arm64.worth_usd_per_month - 400_000.0 * 0.0000133334).abs() < 1e-9);
    }

    fn assert_lines_eq(actual: &CostLines, expected: &CostLines) {
        let pairs = actual.values().into_iter().zip(expected.values());
        for (i, (a, e)) in pairs.enumerate() {
            assert!(
                (a - e).abs() <= 1e-12 * e.abs().max(1e-9),
                "line {i}: {a} vs {e}"
            );
        }
    }
}
