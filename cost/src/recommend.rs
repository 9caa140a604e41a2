//! Recommendations from explicit rules, each with the monthly saving it is worth at the window's
//! order rate sustained for a month (730 hours). No score: a rule fires or it does not, and says
//! why, with its source.
//!
//! - **Memory right-sizing** (AWS Compute Optimizer's eligibility for Lambda: memory at most
//!   1,792 MB and at least 50 invocations, here counted in the window instead of 14 days): when the
//!   peak memory used is under half the configured size, the next 64 MB step at or above 1.5× the
//!   peak (at least 128 MB). Lambda's CPU share scales with memory, so the duration may grow: the
//!   saving is a range from zero to the compute cost in proportion, and the advice is to measure
//!   with AWS Lambda Power Tuning before changing.
//! - **X-Ray sampling**: above 5 % of orders traced (X-Ray's default rule: 1 request per second,
//!   then 5 %), what tracing 5 % would save.
//! - **Log bytes per request**: when the functions' logs cost more than their compute, what each
//!   100 bytes less per invocation saves.
//! - **arm64**: x86_64 compute priced at the arm64 rate.
//! - **Service consolidation**: a service whose fixed service-hour costs more than all its
//!   variable cost at the window's rate; merging it into its caller saves its 730 hours a month.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::BYTES_PER_GB;
use crate::prices::{self, PriceError, PriceTable};
use crate::report::{CostReport, HOURS_PER_MONTH};

/// Compute Optimizer's largest memory it recommends for.
pub const RIGHT_SIZING_MAX_MB: u32 = 1792;
/// Compute Optimizer's fewest invocations.
pub const RIGHT_SIZING_MIN_INVOCATIONS: u64 = 50;
/// X-Ray's default sampling rate beyond the first request each second.
pub const XRAY_DEFAULT_RATE: f64 = 0.05;

/// One recommendation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Recommendation {
    /// Which rule.
    pub rule: Cow<'static, str>,
    /// The service it is about, if one.
    pub service: Option<String>,
    /// What to do, and why, in a sentence.
    pub advice: String,
    /// The least it saves a month (USD).
    pub saving_low_usd_per_month: f64,
    /// The most it saves a month (USD).
    pub saving_high_usd_per_month: f64,
    /// The rule's source.
    pub source: Cow<'static, str>,
}

/// The recommendations for `report`, priced by `table`, with `traced_fraction` of orders traced
/// and `x86_64_gb_seconds` of the window's compute on x86_64, per service name.
pub fn recommend(
    report: &CostReport,
    table: &PriceTable,
    traced_fraction: f64,
    x86_64_gb_seconds: &[(String, f64)],
) -> Result<Vec<Recommendation>, PriceError> {
    let months = month_factor(report);
    let mut found = right_sizing(report, months);
    found.extend(sampling(report, traced_fraction, months));
    found.extend(log_bytes(report, table, months)?);
    found.extend(arm64(table, x86_64_gb_seconds, months)?);
    found.extend(consolidation(report, table)?);
    Ok(found)
}

/// How many windows make a month at the window's rate.
fn month_factor(report: &CostReport) -> f64 {
    if report.window_seconds <= 0.0 {
        return 0.0;
    }
    HOURS_PER_MONTH * 3600.0 / report.window_seconds
}

fn right_sizing(report: &CostReport, months: f64) -> Vec<Recommendation> {
    report
        .services
        .iter()
        .filter(|row| {
            row.invocations >= RIGHT_SIZING_MIN_INVOCATIONS
                && row.memory_mb <= RIGHT_SIZING_MAX_MB
                && row.memory_mb > 128
                && row.max_memory_used_mb * 2 < row.memory_mb
        })
        .filter_map(|row| {
            let target = (f64::from(row.max_memory_used_mb) * 1.5 / 64.0).ceil() as u32 * 64;
            let target = target.max(128);
            (target < row.memory_mb).then(|| {
                let share = 1.0 - f64::from(target) / f64::from(row.memory_mb);
                Recommendation {
                    rule: Cow::Borrowed("memory right-sizing"),
                    service: Some(row.service.clone()),
                    advice: format!(
                        "{}: peak {} MB of {} MB; try {} MB, and measure with AWS Lambda Power Tuning before changing (less memory is less CPU, so duration may grow)",
                        row.service, row.max_memory_used_mb, row.memory_mb, target
                    ),
                    saving_low_usd_per_month: 0.0,
                    saving_high_usd_per_month: row.cost.lambda_compute * share * months,
                    source: Cow::Borrowed("AWS Compute Optimizer, Lambda function recommendations (eligibility: memory <= 1,792 MB, >= 50 invocations)"),
                }
            })
        })
        .collect()
}

fn sampling(report: &CostReport, traced_fraction: f64, months: f64) -> Option<Recommendation> {
    if traced_fraction <= XRAY_DEFAULT_RATE {
        return None;
    }
    let saving = report.total.xray * (1.0 - XRAY_DEFAULT_RATE / traced_fraction) * months;
    Some(Recommendation {
        rule: Cow::Borrowed("X-Ray sampling"),
        service: None,
        advice: format!(
            "{:.0} % of orders are traced; X-Ray's default 5 % keeps the service map and the latency distribution at a twentieth of the trace cost",
            traced_fraction * 100.0
        ),
        saving_low_usd_per_month: saving,
        saving_high_usd_per_month: saving,
        source: Cow::Borrowed("AWS X-Ray developer guide, sampling rules (default: 1 request per second, then 5 %)"),
    })
}

fn log_bytes(
    report: &CostReport,
    table: &PriceTable,
    months: f64,
) -> Result<Option<Recommendation>, PriceError> {
    let invocations: u64 = report.services.iter().map(|row| row.invocations).sum();
    let (logs, compute) = (report.total.lambda_logs, report.total.lambda_compute);
    if invocations == 0 || logs <= compute {
        return Ok(None);
    }
    let per_byte = table.usd(prices::LOGS_VENDED)? / BYTES_PER_GB;
    let saving = invocations as f64 * 100.0 * per_byte * months;
    Ok(Some(Recommendation {
        rule: Cow::Borrowed("log bytes per request"),
        service: None,
        advice: format!(
            "the functions' logs cost {:.1}x their compute; every 100 bytes less per invocation saves the amount shown",
            logs / compute.max(f64::MIN_POSITIVE)
        ),
        saving_low_usd_per_month: saving,
        saving_high_usd_per_month: saving,
        source: Cow::Borrowed("Amazon CloudWatch pricing, vended logs per GB ingested"),
    }))
}

fn arm64(
    table: &PriceTable,
    x86_64_gb_seconds: &[(String, f64)],
    months: f64,
) -> Result<Vec<Recommendation>, PriceError> {
    let (arm, x86) = (
        table.usd(prices::LAMBDA_ARM64)?,
        table.usd(prices::LAMBDA_X86_64)?,
    );
    Ok(x86_64_gb_seconds
        .iter()
        .filter(|(_, gb_seconds)| *gb_seconds > 0.0)
        .map(|(service, gb_seconds)| {
            let saving = gb_seconds * (x86 - arm) * months;
            Recommendation {
                rule: Cow::Borrowed("arm64"),
                service: Some(service.clone()),
                advice: format!(
                    "{service} runs on x86_64; arm64 is {:.0} % cheaper per GB-second (rebuild with cargo lambda --arm64)",
                    (1.0 - arm / x86) * 100.0
                ),
                saving_low_usd_per_month: saving,
                saving_high_usd_per_month: saving,
                source: Cow::Borrowed("AWS Lambda pricing, duration per GB-second by architecture"),
            }
        })
        .collect())
}

fn consolidation(
    report: &CostReport,
    table: &PriceTable,
) -> Result<Vec<Recommendation>, PriceError> {
    let hour = table.usd(prices::LATTICE_SERVICE_HOUR)?;
    Ok(report
        .services
        .iter()
        .filter(|row| row.cost.lattice_service_hours > row.cost.variable())
        .map(|row| {
            let saving = hour * HOURS_PER_MONTH;
            Recommendation {
                rule: Cow::Borrowed("service consolidation"),
                service: Some(row.service.clone()),
                advice: format!(
                    "{}'s Lattice service-hour costs more than all its traffic at this rate ({:.2}x); calling it in-process from its caller removes the hour",
                    row.service,
                    row.cost.lattice_service_hours / row.cost.variable().max(f64::MIN_POSITIVE)
                ),
                saving_low_usd_per_month: saving,
                saving_high_usd_per_month: saving,
                source: Cow::Borrowed("VPC Lattice pricing, per service per hour"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Arch;
    use crate::report::{build, Scope};
    use crate::usage::{parse_report_line, UsageBuilder};

    const ORDER: &str = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-order";
    const PAYMENT: &str = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-payment";

    fn entry(arn: &str) -> String {
        format!("{{\"serviceArn\":\"{arn}\",\"startTime\":\"2026-12-01T10:00:00Z\",\"responseCode\":201,\"bytesReceived\":100,\"bytesSent\":100,\"duration\":5}}")
    }

    /// 60 orders in 30 s: order at 512 MB peaking at 40 MB, 1,000 B of log per invocation, every
    /// order traced; payment called once.
    fn report() -> (CostReport, PriceTable) {
        let mut builder = UsageBuilder::new(BTreeMap::from([
            (ORDER.to_owned(), "order".to_owned()),
            (PAYMENT.to_owned(), "payment".to_owned()),
        ]));
        for i in 0..60 {
            builder.add_access_entry(&entry(ORDER)).unwrap();
            let line = format!("REPORT RequestId: r{i}\tDuration: 9.00 ms\tBilled Duration: 10 ms\tMemory Size: 512 MB\tMax Memory Used: 40 MB\t");
            let parsed = parse_report_line(&line).unwrap();
            builder.add_report("order", &parsed, Arch::Arm64).unwrap();
        }
        builder.add_lambda_log_bytes("order", 60_000).unwrap();
        builder.add_access_entry(&entry(PAYMENT)).unwrap();
        let parsed = parse_report_line("REPORT RequestId: p\tDuration: 1.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t").unwrap();
        builder.add_report("payment", &parsed, Arch::Arm64).unwrap();
        let measured = builder.finish("test").unwrap();
        let scope = Scope {
            window_seconds: 30.0,
            orders: 60,
            traces: 60,
            entry_service: "order".into(),
        };
        let table = PriceTable::built_in();
        (build(&measured, &scope, &table).unwrap(), table)
    }

    #[test]
    fn each_rule_fires_on_its_condition_with_its_saving() {
        let (report, table) = report();
        let found = recommend(&report, &table, 1.0, &[("order".into(), 1.5)]).unwrap();
        let fired: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|r| (r.rule.as_ref(), r.service.as_deref()))
            .collect();
        assert_eq!(
            fired,
            [
                ("memory right-sizing", Some("order")),
                ("X-Ray sampling", None),
                ("log bytes per request", None),
                ("arm64", Some("order")),
                ("service consolidation", Some("payment")),
            ]
        );
        let months = 730.0 * 3600.0 / 30.0;
        let order = &report.services[0];
        // 40 MB × 1.5 = 60 → one 64 MB step → at least 128 MB: 1 - 128/512 of compute.
        assert!(found[0].advice.contains("try 128 MB"));
        assert_eq!(found[0].saving_low_usd_per_month, 0.0);
        let compute = 60.0 * 0.010 * 0.5 * 0.0000133334;
        assert!((order.cost.lambda_compute - compute).abs() < 1e-15);
        assert!((found[0].saving_high_usd_per_month - compute * 0.75 * months).abs() < 1e-9);
        let xray = 60.0 * 0.000005;
        assert!((found[1].saving_low_usd_per_month - xray * 0.95 * months).abs() < 1e-9);
        let logs = 61.0 * 100.0 * 0.5 / 1e9 * months;
        assert!((found[2].saving_low_usd_per_month - logs).abs() < 1e-9);
        let arm = 1.5 * (0.0000166667 - 0.0000133334) * months;
        assert!((found[3].saving_low_usd_per_month - arm).abs() < 1e-9);
        assert!((found[4].saving_low_usd_per_month - 0.025 * 730.0).abs() < 1e-12);
    }

    #[test]
    fn rules_stay_silent_below_their_thresholds() {
        let (report, table) = report();
        let found = recommend(&report, &table, 0.05, &[]).unwrap();
        assert!(found
            .iter()
            .all(|r| r.rule != "X-Ray sampling" && r.rule != "arm64"));
    }
}
