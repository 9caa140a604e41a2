//! The report as text: the per-service table, cost per 1M requests by line, cost per order, the
//! projection (fixed vs variable), the recommendations, the free tiers and the assumptions, in
//! that order. Dollars below a cent are printed with enough digits to tell lines apart.

use std::fmt::Write;

use crate::model::CostLines;
use crate::recommend::Recommendation;
use crate::reconcile::Reconciliation;
use crate::report::CostReport;

/// The names of the cost lines, in [`CostLines::values`]' order.
pub const LINE_NAMES: [&str; 9] = [
    "Lambda requests",
    "Lambda compute",
    "Lattice requests",
    "Lattice GB",
    "Lattice service-hours (fixed)",
    "X-Ray traces",
    "access logs",
    "Lambda logs",
    "DynamoDB",
];

/// `report` and `recommendations` as text.
pub fn text(report: &CostReport, recommendations: &[Recommendation]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cost report: {} orders in {:.0} s, {} list prices as of {}",
        report.orders, report.window_seconds, report.region, report.prices_as_of
    );
    services_table(&mut out, report);
    per_million_table(&mut out, report);
    let _ = writeln!(
        out,
        "\ncost per order, end to end: {}",
        usd(report.per_order.total())
    );
    for (name, value) in LINE_NAMES.iter().zip(report.per_order.values()) {
        let _ = writeln!(out, "  {name:<31} {}", usd(value));
    }
    let _ = writeln!(out, "\ncost per 1M orders at a steady rate:");
    let _ = writeln!(
        out,
        "  {:>10}  {:>12}  {:>12}  {:>12}",
        "orders/s", "fixed", "variable", "total"
    );
    for point in &report.projection {
        let _ = writeln!(
            out,
            "  {:>10}  {:>12}  {:>12}  {:>12}",
            point.orders_per_second,
            usd(point.fixed),
            usd(point.variable),
            usd(point.fixed + point.variable)
        );
    }
    let _ = writeln!(
        out,
        "\nrecommendations (monthly savings at this window's rate):"
    );
    if recommendations.is_empty() {
        let _ = writeln!(out, "  none: no rule's condition holds");
    }
    for r in recommendations {
        let saving = if r.saving_low_usd_per_month == r.saving_high_usd_per_month {
            usd(r.saving_high_usd_per_month)
        } else {
            format!(
                "{} to {}",
                usd(r.saving_low_usd_per_month),
                usd(r.saving_high_usd_per_month)
            )
        };
        let _ = writeln!(
            out,
            "  [{}] {} — saves {saving}/month ({})",
            r.rule, r.advice, r.source
        );
    }
    let _ = writeln!(
        out,
        "\nfree tiers (account-wide, monthly, not netted above):"
    );
    for tier in &report.free_tiers {
        let _ = writeln!(
            out,
            "  {:<31} {:>16.0} units, worth {}",
            tier.line,
            tier.units_per_month,
            usd(tier.worth_usd_per_month)
        );
    }
    let _ = writeln!(out, "\nassumptions:");
    for assumption in &report.assumptions {
        let _ = writeln!(out, "  - {assumption}");
    }
    out
}

fn services_table(out: &mut String, report: &CostReport) {
    let _ = writeln!(
        out,
        "\n{:<10} {:>8} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9} {:>6} {:>9} {:>6} {:>9} {:>9}",
        "service", "requests", "p50", "p90", "p99", "2xx%", "4xx%", "5xx%", "bytes in", "bytes out",
        "invoc", "GB-s", "cold%", "mem MB", "DDB WRU/RRU"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    for row in &report.services {
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>6} {:>6} {:>6} {:>6.1} {:>5.1} {:>5.1} {:>9} {:>9} {:>6} {:>9.3} {:>6.1} {:>9} {:>9}",
            row.service,
            row.requests,
            ms(row.p50_ms),
            ms(row.p90_ms),
            ms(row.p99_ms),
            row.status_2xx_percent,
            row.status_4xx_percent,
            row.status_5xx_percent,
            row.bytes_in,
            row.bytes_out,
            row.invocations,
            row.billed_gb_seconds,
            row.cold_start_percent,
            format!("{}/{}", row.max_memory_used_mb, row.memory_mb),
            format!("{:.0}/{:.0}", row.dynamodb_write_units, row.dynamodb_read_units),
        );
    }
}

fn per_million_table(out: &mut String, report: &CostReport) {
    let _ = write!(out, "\ncost per 1M requests\n  {:<31}", "");
    for row in &report.services {
        let _ = write!(out, " {:>12}", row.service);
    }
    let _ = writeln!(out);
    let columns: Vec<Option<[f64; 9]>> = report
        .services
        .iter()
        .map(|row| {
            row.cost_per_million_requests
                .as_ref()
                .map(CostLines::values)
        })
        .collect();
    for (i, name) in LINE_NAMES.iter().enumerate() {
        let _ = write!(out, "  {name:<31}");
        for column in &columns {
            let cell = column.map_or("-".to_owned(), |values| usd(values[i]));
            let _ = write!(out, " {cell:>12}");
        }
        let _ = writeln!(out);
    }
}

/// The model beside the bill: one row per group, then what the model does not cover.
pub fn reconciliation(r: &Reconciliation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nthe model beside the bill ({} to {}, exclusive; Cost Explorer, UnblendedCost):",
        r.start_day, r.end_day
    );
    let _ = writeln!(
        out,
        "  {:<22} {:>12} {:>12} {:>12} {:>8}  estimated days",
        "group", "model", "billed", "drift", "drift %"
    );
    for row in &r.rows {
        let percent = row
            .drift_percent
            .map_or("-".to_owned(), |p| format!("{p:+.1}"));
        let _ = writeln!(
            out,
            "  {:<22} {:>12} {:>12} {:>12} {:>8}  {}",
            row.group,
            usd(row.model_usd),
            usd(row.billed_usd),
            usd(row.drift_usd),
            percent,
            row.estimated_days.len()
        );
    }
    for charge in &r.not_modelled {
        let _ = writeln!(
            out,
            "  not modelled: {} / {}: {}{}",
            charge.service,
            charge.usage_type,
            usd(charge.usd),
            if charge.estimated { " (estimated)" } else { "" }
        );
    }
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// Dollars: cents above a dollar, four significant digits below.
pub fn usd(value: f64) -> String {
    if value == 0.0 {
        "$0".to_owned()
    } else if value.abs() >= 1.0 {
        format!("${value:.2}")
    } else {
        let digits = (3 - value.abs().log10().floor() as i32).max(2) as usize;
        format!("${value:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_keep_four_significant_digits_below_one() {
        assert_eq!(usd(0.0), "$0");
        assert_eq!(usd(1.3889), "$1.39");
        assert_eq!(usd(0.5), "$0.5000");
        assert_eq!(usd(0.0000133334), "$0.00001333");
        assert_eq!(usd(139.0), "$139.00");
    }

    #[test]
    fn every_line_has_a_name() {
        let lines = CostLines {
            lambda_requests: 1.0,
            lambda_compute: 2.0,
            lattice_requests: 3.0,
            lattice_data: 4.0,
            lattice_service_hours: 5.0,
            xray: 6.0,
            access_logs: 7.0,
            lambda_logs: 8.0,
            dynamodb: 9.0,
        };
        assert_eq!(
            lines.values(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        );
        assert_eq!(lines.values().iter().sum::<f64>(), lines.total());
    }

    #[test]
    fn the_text_carries_the_reports_figures() {
        use crate::model::Arch;
        use crate::prices::PriceTable;
        use crate::report::{build, Scope};
        use crate::usage::{parse_report_line, UsageBuilder};
        use std::collections::BTreeMap;
        let arn = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-order";
        let mut builder = UsageBuilder::new(BTreeMap::from([(arn.to_owned(), "order".to_owned())]));
        builder
            .add_access_entry(&format!("{{\"serviceArn\":\"{arn}\",\"startTime\":\"2026-12-01T10:00:00Z\",\"responseCode\":201,\"bytesReceived\":100,\"bytesSent\":100,\"duration\":5}}"))
            .unwrap();
        let line = "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t";
        builder
            .add_report("order", &parse_report_line(line).unwrap(), Arch::Arm64)
            .unwrap();
        let scope = Scope {
            window_seconds: 10.0,
            orders: 1,
            traces: 1,
            entry_service: "order".into(),
        };
        let report = build(
            &builder.finish("t").unwrap(),
            &scope,
            &PriceTable::built_in(),
        )
        .unwrap();
        let text = text(&report, &[]);
        assert!(text.starts_with("cost report: 1 orders in 10 s, us-east-1 list prices as of "));
        let per_order = format!(
            "cost per order, end to end: {}",
            usd(report.per_order.total())
        );
        assert!(text.contains(&per_order), "{text}");
        let row = text.lines().find(|l| l.starts_with("order ")).unwrap();
        assert!(row.contains(" 30/128 "), "{row}");
        assert!(text.contains("none: no rule's condition holds"));
        assert_eq!(text.matches("\n  - ").count(), report.assumptions.len());
    }
}
