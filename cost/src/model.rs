//! The attribution formulas: measured usage of each service over a window into dollars, line by
//! line, each line tracing to one billing unit of the [price table](crate::prices).
//!
//! - Lambda requests: invocations × `lambda.requests`.
//! - Lambda compute: Σ `billedDurationMs/1000 × memorySizeMB/1024` GB-s × the architecture's rate
//!   (billed duration already includes init on `provided.al2023`).
//! - Lattice requests: per service and clock hour, only the requests above the hour's free
//!   300,000, × `lattice.requests`.
//! - Lattice data: (bytes received + bytes sent) / 10^9 × `lattice.data_processed`.
//! - Lattice service-hours: **fixed**, the service's hourly charge, shared by the requests of the
//!   hour: a window of `s` seconds carries `s/3600` of each service's hour (the bill rounds each
//!   partial hour up; the projection shows what a steady rate pays).
//! - X-Ray: traces recorded × `xray.traces_recorded` (unsampled requests cost nothing).
//! - Access logs and Lambda logs: bytes / 10^9 × `logs.ingestion.vended` (both are vended logs).
//! - DynamoDB: write and read request units × their on-demand prices.
//!
//! Marginal list prices throughout: free tiers are account-wide monthly allowances, shown by the
//! report as their own line, never netted into a unit cost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prices::{self, PriceError, PriceTable};

/// Bytes in a GB, for Lattice data and log ingestion (an assumption the table prints).
pub const BYTES_PER_GB: f64 = 1e9;
/// MB in a GB of Lambda memory.
pub const MB_PER_GB: f64 = 1024.0;

/// A Lambda architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Graviton.
    Arm64,
    /// Intel/AMD.
    X86_64,
}

impl Arch {
    /// The price line of its duration.
    pub fn duration_line(self) -> &'static str {
        match self {
            Arch::Arm64 => prices::LAMBDA_ARM64,
            Arch::X86_64 => prices::LAMBDA_X86_64,
        }
    }
}

/// What one service used over the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceUsage {
    /// Lattice requests to the service, by clock hour (epoch seconds / 3600).
    pub requests_by_hour: BTreeMap<u64, u64>,
    /// Request plus response bytes through Lattice.
    pub lattice_bytes: u64,
    /// Lambda invocations.
    pub invocations: u64,
    /// Billed GB-seconds on arm64.
    pub gb_seconds_arm64: f64,
    /// Billed GB-seconds on x86_64.
    pub gb_seconds_x86_64: f64,
    /// Bytes of Lattice access log written for the service.
    pub access_log_bytes: u64,
    /// Bytes the service's function logged.
    pub lambda_log_bytes: u64,
    /// DynamoDB write request units consumed.
    pub dynamodb_write_units: f64,
    /// DynamoDB read request units consumed.
    pub dynamodb_read_units: f64,
    /// Traces X-Ray recorded of this service's invocations on their own: Lambda's sampled
    /// traces (Active tracing) that are not one of the counted traces.
    pub lambda_traces: u64,
}

impl ServiceUsage {
    /// Adds one invocation billed `billed_ms` at `memory_mb` on `arch`.
    pub fn add_invocation(&mut self, billed_ms: u64, memory_mb: u32, arch: Arch) {
        self.invocations += 1;
        let gb_seconds = billed_ms as f64 / 1000.0 * f64::from(memory_mb) / MB_PER_GB;
        match arch {
            Arch::Arm64 => self.gb_seconds_arm64 += gb_seconds,
            Arch::X86_64 => self.gb_seconds_x86_64 += gb_seconds,
        }
    }

    /// Lattice requests in the window.
    pub fn requests(&self) -> u64 {
        self.requests_by_hour.values().sum()
    }
}

/// Dollars, by billing line. Serialized with their [`total`](Self::total) beside them (read back,
/// the total is recomputed from the lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct CostLines {
    /// Lambda requests.
    pub lambda_requests: f64,
    /// Lambda compute (GB-s).
    pub lambda_compute: f64,
    /// Lattice requests above the free hourly allowance.
    pub lattice_requests: f64,
    /// Lattice data processed.
    pub lattice_data: f64,
    /// Lattice service-hours: fixed.
    pub lattice_service_hours: f64,
    /// X-Ray traces recorded.
    pub xray: f64,
    /// Lattice access logs.
    pub access_logs: f64,
    /// Lambda logs.
    pub lambda_logs: f64,
    /// DynamoDB request units.
    pub dynamodb: f64,
}

/// The lines' field names in [`CostLines::values`]' order.
const LINE_FIELDS: [&str; 9] = [
    "lambda_requests",
    "lambda_compute",
    "lattice_requests",
    "lattice_data",
    "lattice_service_hours",
    "xray",
    "access_logs",
    "lambda_logs",
    "dynamodb",
];

impl Serialize for CostLines {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("CostLines", LINE_FIELDS.len() + 1)?;
        for (field, value) in LINE_FIELDS.iter().zip(self.values()) {
            out.serialize_field(field, &value)?;
        }
        out.serialize_field("total", &self.total())?;
        out.end()
    }
}

impl CostLines {
    /// Every line.
    pub fn total(&self) -> f64 {
        self.variable() + self.lattice_service_hours
    }

    /// Every line that grows with traffic.
    pub fn variable(&self) -> f64 {
        self.lambda_requests
            + self.lambda_compute
            + self.lattice_requests
            + self.lattice_data
            + self.xray
            + self.access_logs
            + self.lambda_logs
            + self.dynamodb
    }

    /// Each line times `factor` (per request, per 1M, …).
    pub fn scaled(&self, factor: f64) -> Self {
        Self::from_values(self.values().map(|value| value * factor))
    }

    /// The line-by-line sum.
    pub fn plus(&self, other: &Self) -> Self {
        let (mine, theirs) = (self.values(), other.values());
        Self::from_values(std::array::from_fn(|i| mine[i] + theirs[i]))
    }

    /// The lines in print order: Lambda requests, Lambda compute, Lattice requests, Lattice GB,
    /// Lattice service-hours, X-Ray, access logs, Lambda logs, DynamoDB.
    pub fn values(&self) -> [f64; 9] {
        [
            self.lambda_requests,
            self.lambda_compute,
            self.lattice_requests,
            self.lattice_data,
            self.lattice_service_hours,
            self.xray,
            self.access_logs,
            self.lambda_logs,
            self.dynamodb,
        ]
    }

    /// The lines from [`values`](Self::values)' order.
    pub fn from_values(values: [f64; 9]) -> Self {
        let [lambda_requests, lambda_compute, lattice_requests, lattice_data, lattice_service_hours, xray, access_logs, lambda_logs, dynamodb] =
            values;
        Self {
            lambda_requests,
            lambda_compute,
            lattice_requests,
            lattice_data,
            lattice_service_hours,
            xray,
            access_logs,
            lambda_logs,
            dynamodb,
        }
    }
}

/// The prices the formulas use, looked up once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    lattice_hour: f64,
    lattice_gb: f64,
    lattice_request: f64,
    lattice_free_per_hour: f64,
    lambda_request: f64,
    arm64_gb_s: f64,
    x86_64_gb_s: f64,
    trace: f64,
    vended_gb: f64,
    write_unit: f64,
    read_unit: f64,
}

impl Rates {
    /// The rates of `table`; a missing line is an error.
    pub fn from(table: &PriceTable) -> Result<Self, PriceError> {
        let requests = table.get(prices::LATTICE_REQUESTS)?;
        Ok(Self {
            lattice_hour: table.usd(prices::LATTICE_SERVICE_HOUR)?,
            lattice_gb: table.usd(prices::LATTICE_DATA)?,
            lattice_request: requests.usd,
            lattice_free_per_hour: requests
                .free
                .as_ref()
                .filter(|free| free.per == "hour")
                .map_or(0.0, |free| free.quantity),
            lambda_request: table.usd(prices::LAMBDA_REQUESTS)?,
            arm64_gb_s: table.usd(prices::LAMBDA_ARM64)?,
            x86_64_gb_s: table.usd(prices::LAMBDA_X86_64)?,
            trace: table.usd(prices::XRAY_RECORDED)?,
            vended_gb: table.usd(prices::LOGS_VENDED)?,
            write_unit: table.usd(prices::DYNAMODB_WRITE)?,
            read_unit: table.usd(prices::DYNAMODB_READ)?,
        })
    }

    /// What `usage` cost over a window of `window_seconds`, with `traces` X-Ray traces recorded
    /// for it (traces are attributed to the service that starts them: the caller decides).
    pub fn cost(&self, usage: &ServiceUsage, window_seconds: f64, traces: u64) -> CostLines {
        let billable_requests: f64 = usage
            .requests_by_hour
            .values()
            .map(|&n| (n as f64 - self.lattice_free_per_hour).max(0.0))
            .sum();
        CostLines {
            lambda_requests: usage.invocations as f64 * self.lambda_request,
            lambda_compute: usage.gb_seconds_arm64 * self.arm64_gb_s
                + usage.gb_seconds_x86_64 * self.x86_64_gb_s,
            lattice_requests: billable_requests * self.lattice_request,
            lattice_data: usage.lattice_bytes as f64 / BYTES_PER_GB * self.lattice_gb,
            lattice_service_hours: window_seconds / 3600.0 * self.lattice_hour,
            xray: traces as f64 * self.trace,
            access_logs: usage.access_log_bytes as f64 / BYTES_PER_GB * self.vended_gb,
            lambda_logs: usage.lambda_log_bytes as f64 / BYTES_PER_GB * self.vended_gb,
            dynamodb: usage.dynamodb_write_units * self.write_unit
                + usage.dynamodb_read_units * self.read_unit,
        }
    }

    /// Cost per 1M orders at a steady `orders_per_second`, from one order's variable cost
    /// `per_order` (service-hours excluded), `lattice_requests_per_order` requests to each of
    /// `services` Lattice services: the fixed service-hours spread over the hour's orders, and
    /// each service's request fee above its free hourly requests.
    pub fn per_million_orders_at(
        &self,
        per_order: &CostLines,
        lattice_requests_per_order: &[f64],
        orders_per_second: f64,
    ) -> CostLines {
        let orders_per_hour = orders_per_second * 3600.0;
        let services = lattice_requests_per_order.len() as f64;
        let fee_per_order: f64 = lattice_requests_per_order
            .iter()
            .map(|&per_order| {
                let per_hour = per_order * orders_per_hour;
                (per_hour - self.lattice_free_per_hour).max(0.0) * self.lattice_request
                    / orders_per_hour
            })
            .sum();
        let mut lines = *per_order;
        lines.lattice_requests = fee_per_order;
        lines.lattice_service_hours = services * self.lattice_hour / orders_per_hour;
        lines.scaled(1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> Rates {
        Rates::from(&PriceTable::built_in()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn lines_serialize_with_their_total_and_read_back_from_the_lines() {
        let lines = CostLines::from_values([0.5, 0.25, 0.0, 0.125, 1.0, 0.0625, 0.0, 0.0, 2.0]);
        let json = serde_json::to_value(lines).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "lambda_requests": 0.5, "lambda_compute": 0.25, "lattice_requests": 0.0,
                "lattice_data": 0.125, "lattice_service_hours": 1.0, "xray": 0.0625,
                "access_logs": 0.0, "lambda_logs": 0.0, "dynamodb": 2.0, "total": 3.9375
            })
        );
        let back: CostLines = serde_json::from_value(json).unwrap();
        assert_eq!(back, lines);
    }

    /// The facts file's worked example: 3 arm64 128 MB invocations billed 40/8/8 ms, 2 Lattice
    /// calls of about 1 KB (two services), 2 access records of 1,560 B, 750 B of Lambda log per
    /// invocation, one trace per order; $ per 1M orders.
    #[test]
    fn the_worked_example_of_the_facts_file() {
        let rates = rates();
        let mut usage = ServiceUsage::default();
        for billed in [40, 8, 8] {
            usage.add_invocation(billed, 128, Arch::Arm64);
        }
        usage.requests_by_hour.insert(0, 2);
        usage.lattice_bytes = 2 * 1000;
        usage.access_log_bytes = 2 * 1560;
        usage.lambda_log_bytes = 3 * 750;
        let per_order = rates.cost(&usage, 0.0, 1);
        let at_10 = rates.per_million_orders_at(&per_order, &[1.0, 1.0], 10.0);
        assert!(close(at_10.lambda_requests, 0.60), "{at_10:?}");
        // 56 ms × 0.125 GB × 0.0000133334 $/GB-s × 1e6.
        assert!(close(
            at_10.lambda_compute,
            0.056 * 0.125 * 0.0000133334 * 1e6
        ));
        assert!(close(at_10.lattice_data, 0.05));
        assert!(close(at_10.access_logs, 1.56));
        assert!(close(at_10.lambda_logs, 1.125));
        assert!(close(at_10.xray, 5.0));
        assert_eq!(at_10.lattice_requests, 0.0, "10/s is far below 300,000/h");
        // 2 services × $0.025 / 36,000 orders an hour × 1e6.
        assert!(close(
            at_10.lattice_service_hours,
            2.0 * 0.025 / 36_000.0 * 1e6
        ));
        assert_eq!(format!("{:.2}", at_10.lattice_service_hours), "1.39");
        let at_1 = rates.per_million_orders_at(&per_order, &[1.0, 1.0], 1.0);
        let at_tenth = rates.per_million_orders_at(&per_order, &[1.0, 1.0], 0.1);
        assert_eq!(format!("{:.1}", at_1.lattice_service_hours), "13.9");
        assert_eq!(format!("{:.0}", at_tenth.lattice_service_hours), "139");
        assert!(
            at_10.lattice_service_hours + at_10.xray + at_10.access_logs + at_10.lambda_logs
                > 50.0 * at_10.lambda_compute,
            "observability and the fixed hour dominate compute"
        );
    }

    #[test]
    fn the_lattice_request_fee_starts_above_300k_an_hour_per_service() {
        let rates = rates();
        let mut usage = ServiceUsage::default();
        usage.requests_by_hour.insert(10, 300_000);
        usage.requests_by_hour.insert(11, 300_250);
        let lines = rates.cost(&usage, 7200.0, 0);
        assert!(close(lines.lattice_requests, 250.0 * 0.0000001));
        assert!(close(lines.lattice_service_hours, 2.0 * 0.025));
        // At 100 orders/s with one request each: 360,000 an hour, 60,000 of them billed.
        let per_order = CostLines::default();
        let at_100 = rates.per_million_orders_at(&per_order, &[1.0], 100.0);
        assert!(close(
            at_100.lattice_requests,
            60_000.0 * 0.0000001 / 360_000.0 * 1e6
        ));
    }

    #[test]
    fn compute_uses_the_architecture_rate_and_1024_mb_per_gb() {
        let rates = rates();
        let mut usage = ServiceUsage::default();
        usage.add_invocation(1698, 1024, Arch::X86_64);
        usage.add_invocation(100, 512, Arch::Arm64);
        let lines = rates.cost(&usage, 0.0, 0);
        let expected = 1.698 * 0.0000166667 + 0.1 * 0.5 * 0.0000133334;
        assert!(close(lines.lambda_compute, expected));
        assert!(close(lines.lambda_requests, 2.0 * 0.0000002));
        assert_eq!(usage.invocations, 2);
    }

    #[test]
    fn totals_split_fixed_from_variable() {
        let lines = CostLines {
            lambda_requests: 1.0,
            lattice_service_hours: 10.0,
            dynamodb: 2.0,
            ..CostLines::default()
        };
        assert_eq!(lines.variable(), 3.0);
        assert_eq!(lines.total(), 13.0);
        assert_eq!(lines.plus(&lines).scaled(0.5), lines);
    }
}
