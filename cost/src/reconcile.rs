//! The model beside the bill: for each billed group of charges the model has lines for, what the
//! model says and what Cost Explorer billed for the same days, the drift in USD and percent, the
//! days still estimated; and every charge the model does not cover, listed as such. The model is
//! never adjusted from the bill: the bill can only show where the model is off.
//!
//! **Matching.** Each bill line (`SERVICE`, `USAGE_TYPE`, as Cost Explorer named them, see
//! [`Bill::services_seen`]) goes to the first rule of [`RULES`] it matches, by case-insensitive
//! substring:
//!
//! | group | a line matches when | model lines |
//! |---|---|---|
//! | VPC Lattice | `USAGE_TYPE` or `SERVICE` contains `Lattice` (Lattice is billed inside the VPC service, separated by usage type) | Lattice requests, data, service-hours |
//! | Lambda | `SERVICE` contains `Lambda` | Lambda requests, compute |
//! | X-Ray | `SERVICE` contains `X-Ray` | X-Ray traces recorded |
//! | CloudWatch Logs ingestion | `SERVICE` contains `CloudWatch` and `USAGE_TYPE` contains `DataProcessing-Bytes` or `VendedLog` | access logs, Lambda logs |
//! | DynamoDB | `SERVICE` contains `DynamoDB` | DynamoDB request units |
//!
//! Anything else (the rest of the VPC service, CloudWatch's metrics, storage and Insights scans,
//! Firehose, S3, …) is "not modelled", with its exact strings, so a rule that misses a usage type
//! shows it there rather than hiding it.
//!
//! **Periods.** The bill covers whole UTC days inside the report's window; when the window is
//! longer, the model's figures are taken at the bill's share of the window
//! ([`Reconciliation::model_share`], traffic assumed even over the window): a window of whole
//! days gives a share of 1. The model is at list prices with free tiers not netted, and the bill
//! nets them: an account inside a free tier shows a negative drift for that reason.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::CostLines;
use crate::report::CostReport;
use crate::sources::{Bill, BillLine};

/// One matching rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The group's name.
    pub group: &'static str,
    /// `SERVICE` must contain one of these (empty: any service).
    pub service_any: &'static [&'static str],
    /// `USAGE_TYPE` must contain one of these (empty: any usage type).
    pub usage_type_any: &'static [&'static str],
    /// Or: a line whose `SERVICE` contains one of these matches whatever its usage type.
    pub service_alone: &'static [&'static str],
}

/// The rules, first match wins.
pub const RULES: [Rule; 5] = [
    Rule {
        group: "VPC Lattice",
        service_any: &[],
        usage_type_any: &["Lattice"],
        service_alone: &["Lattice"],
    },
    Rule {
        group: "Lambda",
        service_any: &["Lambda"],
        usage_type_any: &[],
        service_alone: &[],
    },
    Rule {
        group: "X-Ray",
        service_any: &["X-Ray"],
        usage_type_any: &[],
        service_alone: &[],
    },
    Rule {
        group: "CloudWatch Logs ingestion",
        service_any: &["CloudWatch"],
        usage_type_any: &["DataProcessing-Bytes", "VendedLog"],
        service_alone: &[],
    },
    Rule {
        group: "DynamoDB",
        service_any: &["DynamoDB"],
        usage_type_any: &[],
        service_alone: &[],
    },
];

/// The model's lines behind each rule's group, in [`RULES`]' order.
fn model_usd(group: &str, lines: &CostLines) -> f64 {
    match group {
        "VPC Lattice" => lines.lattice_requests + lines.lattice_data + lines.lattice_service_hours,
        "Lambda" => lines.lambda_requests + lines.lambda_compute,
        "X-Ray" => lines.xray,
        "CloudWatch Logs ingestion" => lines.access_logs + lines.lambda_logs,
        "DynamoDB" => lines.dynamodb,
        _ => 0.0,
    }
}

fn contains_any(text: &str, needles: &[&str]) -> bool {
    let text = text.to_lowercase();
    needles.iter().any(|n| text.contains(&n.to_lowercase()))
}

impl Rule {
    /// Whether `line` is of this rule's group.
    pub fn matches(&self, line: &BillLine) -> bool {
        if contains_any(&line.service, self.service_alone) {
            return true;
        }
        let service = self.service_any.is_empty() || contains_any(&line.service, self.service_any);
        let usage =
            self.usage_type_any.is_empty() || contains_any(&line.usage_type, self.usage_type_any);
        service && usage
    }
}

/// The group of `line`, `None` when no rule matches.
pub fn group_of(line: &BillLine) -> Option<&'static str> {
    RULES
        .iter()
        .find(|rule| rule.matches(line))
        .map(|r| r.group)
}

/// One group: the model beside the bill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReconciledRow {
    /// The group ([`RULES`]).
    pub group: String,
    /// The billed SERVICE values it holds.
    pub services: Vec<String>,
    /// The billed USAGE_TYPE values it holds.
    pub usage_types: Vec<String>,
    /// What the model says for the bill's days, USD.
    pub model_usd: f64,
    /// What was billed, USD.
    pub billed_usd: f64,
    /// `billed - model`, USD.
    pub drift_usd: f64,
    /// The drift in percent of the model; `None` when the model says 0.
    pub drift_percent: Option<f64>,
    /// The days of its lines Cost Explorer marked estimated.
    pub estimated_days: Vec<String>,
}

/// A billed charge the model has no line for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotModelled {
    /// Its SERVICE.
    pub service: String,
    /// Its USAGE_TYPE.
    pub usage_type: String,
    /// Billed over the bill's days, USD.
    pub usd: f64,
    /// Some of its days are estimated.
    pub estimated: bool,
}

/// The model beside the bill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reconciliation {
    /// The bill's first day.
    pub start_day: String,
    /// The day after its last.
    pub end_day: String,
    /// The bill's days, in seconds.
    pub bill_seconds: f64,
    /// The report's window, in seconds.
    pub model_window_seconds: f64,
    /// The share of the model's window the bill covers (at most 1): the model's figures below
    /// are its window's times this.
    pub model_share: f64,
    /// One row per group of [`RULES`], billed or not.
    pub rows: Vec<ReconciledRow>,
    /// The charges no rule matches, largest first.
    pub not_modelled: Vec<NotModelled>,
    /// Every day of the bill marked estimated.
    pub estimated_days: Vec<String>,
    /// The SERVICE values Cost Explorer offered for the period.
    pub services_seen: Vec<String>,
    /// The model's total over the rows.
    pub model_usd: f64,
    /// The bill's total over the rows.
    pub billed_modelled_usd: f64,
    /// The bill's total of what is not modelled.
    pub billed_not_modelled_usd: f64,
    /// How the comparison was made.
    pub notes: Vec<String>,
}

/// The model's `report` beside `bill`.
pub fn reconcile(report: &CostReport, bill: &Bill) -> Reconciliation {
    let (bill_seconds, mut notes) = bill_period(bill);
    let model_share = share(bill_seconds, report.window_seconds);
    notes.push(format!(
        "model figures are the report's window ({} s) times {model_share:.6}, the bill's share of it",
        report.window_seconds
    ));
    notes.push("the model is at list prices, free tiers not netted; the bill nets them".into());
    let rows: Vec<ReconciledRow> = RULES
        .iter()
        .map(|rule| row(rule.group, &report.total, model_share, bill))
        .collect();
    let not_modelled = not_modelled(bill);
    let estimated_days: BTreeSet<String> = bill
        .lines
        .iter()
        .filter(|l| l.estimated)
        .map(|l| l.day.clone())
        .collect();
    Reconciliation {
        start_day: bill.start_day.clone(),
        end_day: bill.end_day.clone(),
        bill_seconds,
        model_window_seconds: report.window_seconds,
        model_share,
        model_usd: rows.iter().map(|r| r.model_usd).sum(),
        billed_modelled_usd: rows.iter().map(|r| r.billed_usd).sum(),
        billed_not_modelled_usd: not_modelled.iter().map(|n| n.usd).sum(),
        rows,
        not_modelled,
        estimated_days: estimated_days.into_iter().collect(),
        services_seen: bill.services_seen.clone(),
        notes,
    }
}

/// The bill's days in seconds, and a note when they cannot be read.
fn bill_period(bill: &Bill) -> (f64, Vec<String>) {
    let parse = |day: &str| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok();
    match (parse(&bill.start_day), parse(&bill.end_day)) {
        (Some(start), Some(end)) if end > start => {
            ((end - start).num_days() as f64 * 86_400.0, Vec::new())
        }
        _ => (
            0.0,
            vec![format!(
                "the bill's period {} to {} is not a range of days: the model is taken whole",
                bill.start_day, bill.end_day
            )],
        ),
    }
}

/// The bill's share of the model's window, at most 1 (1 when either is unknown).
fn share(bill_seconds: f64, window_seconds: f64) -> f64 {
    if bill_seconds > 0.0 && window_seconds > 0.0 && window_seconds.is_finite() {
        (bill_seconds / window_seconds).min(1.0)
    } else {
        1.0
    }
}

fn row(group: &str, model: &CostLines, model_share: f64, bill: &Bill) -> ReconciledRow {
    let lines: Vec<&BillLine> = bill
        .lines
        .iter()
        .filter(|l| group_of(l) == Some(group))
        .collect();
    let names = |pick: fn(&BillLine) -> &String| -> Vec<String> {
        let set: BTreeSet<&String> = lines.iter().map(|l| pick(l)).collect();
        set.into_iter().cloned().collect()
    };
    let model_usd = model_usd(group, model) * model_share;
    let billed_usd: f64 = lines.iter().map(|l| l.usd).sum();
    let drift_usd = billed_usd - model_usd;
    let estimated: BTreeSet<&String> = lines
        .iter()
        .filter(|l| l.estimated)
        .map(|l| &l.day)
        .collect();
    ReconciledRow {
        group: group.to_owned(),
        services: names(|l| &l.service),
        usage_types: names(|l| &l.usage_type),
        model_usd,
        billed_usd,
        drift_usd,
        drift_percent: (model_usd != 0.0).then(|| drift_usd / model_usd * 100.0),
        estimated_days: estimated.into_iter().cloned().collect(),
    }
}

/// The unmatched lines summed per SERVICE and USAGE_TYPE, largest first.
fn not_modelled(bill: &Bill) -> Vec<NotModelled> {
    let mut charges: Vec<NotModelled> = Vec::new();
    for line in bill.lines.iter().filter(|l| group_of(l).is_none()) {
        let found = charges
            .iter_mut()
            .find(|c| c.service == line.service && c.usage_type == line.usage_type);
        match found {
            Some(charge) => {
                charge.usd += line.usd;
                charge.estimated |= line.estimated;
            }
            None => charges.push(NotModelled {
                service: line.service.clone(),
                usage_type: line.usage_type.clone(),
                usd: line.usd,
                estimated: line.estimated,
            }),
        }
    }
    charges.sort_by(|a, b| b.usd.total_cmp(&a.usd));
    charges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(day: &str, service: &str, usage_type: &str, usd: f64, estimated: bool) -> BillLine {
        BillLine {
            day: day.into(),
            service: service.into(),
            usage_type: usage_type.into(),
            usd,
            estimated,
        }
    }

    fn report(window_seconds: f64) -> CostReport {
        CostReport {
            region: "us-east-1".into(),
            prices_as_of: "2026-01-01".into(),
            assumptions: Vec::new(),
            window_seconds,
            orders: 10,
            services: Vec::new(),
            total: CostLines {
                lambda_requests: 0.20,
                lambda_compute: 0.30,
                lattice_requests: 0.0,
                lattice_data: 0.10,
                lattice_service_hours: 1.80,
                xray: 0.50,
                access_logs: 0.25,
                lambda_logs: 0.15,
                dynamodb: 0.05,
            },
            per_order: CostLines::default(),
            projection: Vec::new(),
            free_tiers: Vec::new(),
        }
    }

    /// One day of a stack's bill, as (SERVICE, USAGE_TYPE, USD, estimated).
    const LINES: [(&str, &str, f64, bool); 10] = [
        ("AWS Lambda", "USE1-Lambda-GB-Second-ARM", 0.35, false),
        ("AWS Lambda", "USE1-Request", 0.20, false),
        (
            "Amazon Virtual Private Cloud",
            "USE1-VpcLattice-ServiceHours",
            1.80,
            false,
        ),
        (
            "Amazon Virtual Private Cloud",
            "USE1-VpcLattice-DataProcessed-Bytes",
            0.12,
            true,
        ),
        (
            "Amazon Virtual Private Cloud",
            "USE1-NatGateway-Hours",
            1.08,
            false,
        ),
        ("AWS X-Ray", "USE1-XRay-TracesStored", 0.40, false),
        ("AmazonCloudWatch", "USE1-VendedLog-Bytes", 0.25, false),
        ("AmazonCloudWatch", "USE1-DataProcessing-Bytes", 0.20, false),
        ("AmazonCloudWatch", "USE1-DataScanned-Bytes", 0.01, false),
        ("AmazonCloudWatch", "USE1-DataScanned-Bytes", 0.02, true),
    ];

    fn bill() -> Bill {
        let lines = LINES
            .iter()
            .map(|(service, usage, usd, estimated)| {
                line("2026-12-01", service, usage, *usd, *estimated)
            })
            .collect();
        let services = [
            "AWS Lambda",
            "AWS X-Ray",
            "Amazon Virtual Private Cloud",
            "AmazonCloudWatch",
        ];
        Bill {
            start_day: "2026-12-01".into(),
            end_day: "2026-12-02".into(),
            lines,
            services_seen: services.iter().map(|s| (*s).to_owned()).collect(),
            requests: 2,
        }
    }

    fn row_of<'r>(r: &'r Reconciliation, group: &str) -> &'r ReconciledRow {
        r.rows.iter().find(|row| row.group == group).unwrap()
    }

    #[test]
    fn each_group_holds_its_lines_and_the_drift_is_billed_minus_model() {
        let r = reconcile(&report(86_400.0), &bill());
        assert_eq!(r.model_share, 1.0);
        let lambda = row_of(&r, "Lambda");
        assert_eq!(lambda.services, vec!["AWS Lambda"]);
        assert!((lambda.model_usd - 0.50).abs() < 1e-12);
        assert!((lambda.billed_usd - 0.55).abs() < 1e-12);
        assert!((lambda.drift_usd - 0.05).abs() < 1e-12);
        assert!((lambda.drift_percent.unwrap() - 10.0).abs() < 1e-9);
        let lattice = row_of(&r, "VPC Lattice");
        assert_eq!(lattice.services, vec!["Amazon Virtual Private Cloud"]);
        assert_eq!(
            lattice.usage_types,
            vec![
                "USE1-VpcLattice-DataProcessed-Bytes",
                "USE1-VpcLattice-ServiceHours"
            ]
        );
        assert!((lattice.model_usd - 1.90).abs() < 1e-12);
        assert!((lattice.billed_usd - 1.92).abs() < 1e-12);
        assert_eq!(lattice.estimated_days, vec!["2026-12-01"]);
        let logs = row_of(&r, "CloudWatch Logs ingestion");
        assert!((logs.model_usd - 0.40).abs() < 1e-12);
        assert!((logs.billed_usd - 0.45).abs() < 1e-12);
        let xray = row_of(&r, "X-Ray");
        assert!((xray.drift_usd + 0.10).abs() < 1e-12);
        assert!((xray.drift_percent.unwrap() + 20.0).abs() < 1e-9);
    }

    #[test]
    fn what_no_rule_matches_is_listed_as_not_modelled_summed_largest_first() {
        let r = reconcile(&report(86_400.0), &bill());
        let listed: Vec<(&str, &str)> = r
            .not_modelled
            .iter()
            .map(|n| (n.service.as_str(), n.usage_type.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("Amazon Virtual Private Cloud", "USE1-NatGateway-Hours"),
                ("AmazonCloudWatch", "USE1-DataScanned-Bytes"),
            ]
        );
        assert!((r.not_modelled[1].usd - 0.03).abs() < 1e-12);
        assert!(r.not_modelled[1].estimated);
        assert!((r.billed_not_modelled_usd - 1.11).abs() < 1e-12);
        assert!((r.billed_modelled_usd - (0.55 + 1.92 + 0.40 + 0.45)).abs() < 1e-12);
        assert_eq!(r.estimated_days, vec!["2026-12-01"]);
    }

    #[test]
    fn a_modelled_group_without_billed_lines_shows_the_whole_model_as_drift() {
        let r = reconcile(&report(86_400.0), &bill());
        let dynamodb = row_of(&r, "DynamoDB");
        assert!(dynamodb.services.is_empty());
        assert_eq!(dynamodb.billed_usd, 0.0);
        assert!((dynamodb.drift_usd + 0.05).abs() < 1e-12);
        assert!((dynamodb.drift_percent.unwrap() + 100.0).abs() < 1e-9);
        let mut no_model = report(86_400.0);
        no_model.total = CostLines::default();
        let r = reconcile(&no_model, &bill());
        assert_eq!(row_of(&r, "Lambda").drift_percent, None);
        assert!((row_of(&r, "Lambda").drift_usd - 0.55).abs() < 1e-12);
    }

    #[test]
    fn a_window_longer_than_the_bill_is_taken_at_the_bills_share() {
        let r = reconcile(&report(4.0 * 86_400.0), &bill());
        assert_eq!(r.bill_seconds, 86_400.0);
        assert_eq!(r.model_share, 0.25);
        assert!((row_of(&r, "Lambda").model_usd - 0.125).abs() < 1e-12);
        let mut unreadable = bill();
        unreadable.end_day = "soon".into();
        let r = reconcile(&report(4.0 * 86_400.0), &unreadable);
        assert_eq!(r.model_share, 1.0);
        assert!(r.notes[0].contains("not a range of days"));
    }

    #[test]
    fn matching_is_case_insensitive_and_lattice_wins_over_its_service() {
        let lattice = line("d", "Amazon VPC Lattice", "USE1-Anything", 1.0, false);
        assert_eq!(group_of(&lattice), Some("VPC Lattice"));
        let shouty = line(
            "d",
            "amazon virtual private cloud",
            "use1-vpclattice-requests",
            1.0,
            false,
        );
        assert_eq!(group_of(&shouty), Some("VPC Lattice"));
        let storage = line(
            "d",
            "AmazonCloudWatch",
            "USE1-TimedStorage-ByteHrs",
            1.0,
            false,
        );
        assert_eq!(group_of(&storage), None);
        let table = line("d", "Amazon DynamoDB", "USE1-WriteRequestUnits", 1.0, false);
        assert_eq!(group_of(&table), Some("DynamoDB"));
    }
}
