//! The dashboard's answers as text tables, one section per panel, in the dashboard's order.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::answer::{
    ClassBucket, DashboardAnswers, Denials, PathAnswer, ServiceAnswer, SlowRequest,
};

/// The whole dashboard as text.
pub fn render_text(answers: &DashboardAnswers) -> String {
    let mut out = format!(
        "{} from {} to {}: {} requests\n",
        answers.index, answers.from, answers.to, answers.requests
    );
    services(&mut out, &answers.services);
    status_classes(&mut out, &answers.status_classes, &answers.interval);
    top_paths(&mut out, &answers.top_paths);
    slowest(&mut out, &answers.slowest);
    denials(&mut out, &answers.denials);
    out
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

fn services(out: &mut String, services: &[ServiceAnswer]) {
    out.push_str("per service\n");
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>7} {:>8} {:>9} {:>9}",
        "service", "requests", "errors", "error %", "p50 ms", "p99 ms"
    );
    for s in services {
        let _ = writeln!(
            out,
            "  {:<16} {:>9} {:>7} {:>8.1} {:>9} {:>9}",
            s.service,
            s.requests,
            s.errors,
            s.error_rate * 100.0,
            ms(s.p50_ms),
            ms(s.p99_ms)
        );
    }
}

fn status_classes(out: &mut String, buckets: &[ClassBucket], interval: &str) {
    let classes: BTreeSet<&str> = buckets
        .iter()
        .flat_map(|b| b.classes.keys().map(String::as_str))
        .collect();
    let _ = writeln!(out, "status classes per {interval}");
    let mut head = format!("  {:<26}", "time");
    for class in &classes {
        let _ = write!(head, " {class:>7}");
    }
    let _ = writeln!(out, "{head}");
    for bucket in buckets {
        let mut line = format!("  {:<26}", bucket.time);
        for class in &classes {
            let _ = write!(
                line,
                " {:>7}",
                bucket.classes.get(*class).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(out, "{line}");
    }
}

fn top_paths(out: &mut String, paths: &[PathAnswer]) {
    out.push_str("top paths\n");
    let _ = writeln!(out, "  {:<40} {:>9} {:>9}", "path", "requests", "p99 ms");
    for p in paths {
        let _ = writeln!(
            out,
            "  {:<40} {:>9} {:>9}",
            p.path,
            p.requests,
            ms(p.p99_ms)
        );
    }
}

fn slowest(out: &mut String, requests: &[SlowRequest]) {
    out.push_str("slowest requests\n");
    let _ = writeln!(
        out,
        "  {:<24} {:<12} {:<7} {:<24} {:>6} {:>8}  caller role",
        "time", "service", "method", "path", "status", "ms"
    );
    for r in requests {
        let status = r.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let duration = r
            .duration_ms
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        let _ = writeln!(
            out,
            "  {:<24} {:<12} {:<7} {:<24} {:>6} {:>8}  {}",
            or_dash(r.time.as_deref()),
            or_dash(r.service.as_deref()),
            or_dash(r.method.as_deref()),
            or_dash(r.path.as_deref()),
            status,
            duration,
            or_dash(r.caller_role.as_deref())
        );
    }
}

fn denials(out: &mut String, denials: &Denials) {
    let _ = writeln!(out, "auth denials: {}", denials.total);
    for principal in &denials.by_principal {
        let _ = writeln!(
            out,
            "  {:<60} {:>7}",
            principal.principal, principal.denials
        );
        for (reason, count) in &principal.reasons {
            let _ = writeln!(out, "    {reason:<58} {count:>7}");
        }
    }
    if denials.other > 0 {
        let _ = writeln!(
            out,
            "  {:<60} {:>7}",
            "(no principal, or beyond --top)", denials.other
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::answer::{PrincipalDenials, SCHEMA};
    use std::collections::BTreeMap;

    fn sample() -> DashboardAnswers {
        DashboardAnswers {
            schema: SCHEMA.into(),
            index: "lattice-access-*".into(),
            from: "2024-08-04T11:00:00.000Z".into(),
            to: "2024-08-04T12:00:00.000Z".into(),
            interval: "1m".into(),
            requests: 3,
            services: vec![ServiceAnswer {
                service: "order".into(),
                requests: 3,
                errors: 1,
                error_rate: 1.0 / 3.0,
                p50_ms: Some(20.0),
                p99_ms: None,
            }],
            status_classes: vec![ClassBucket {
                time: "2024-08-04T11:28:00.000Z".into(),
                epoch_ms: 0,
                requests: 3,
                classes: BTreeMap::from([("2xx".into(), 2), ("4xx".into(), 1)]),
            }],
            top_paths: vec![PathAnswer {
                path: "/orders".into(),
                requests: 3,
                p99_ms: Some(31.0),
            }],
            slowest: vec![SlowRequest {
                time: Some("2024-08-04T11:28:40Z".into()),
                service: Some("order".into()),
                method: Some("POST".into()),
                path: Some("/orders".into()),
                status: Some(403),
                duration_ms: Some(31),
                caller_role: None,
                caller_principal: None,
                failure_reason: None,
            }],
            denials: Denials {
                total: 2,
                by_principal: vec![PrincipalDenials {
                    principal: "arn:aws:iam::1:role/x".into(),
                    denials: 1,
                    reasons: BTreeMap::from([("AccessDenied".into(), 1)]),
                }],
                other: 1,
            },
        }
    }

    #[test]
    fn every_panel_is_rendered() {
        let text = render_text(&sample());
        let expected = [
            "lattice-access-* from 2024-08-04T11:00:00.000Z to 2024-08-04T12:00:00.000Z: 3 requests",
            "per service",
            "  service           requests  errors  error %    p50 ms    p99 ms",
            "  order                    3       1     33.3      20.0         -",
            "status classes per 1m",
            "  time                           2xx     4xx",
            "  2024-08-04T11:28:00.000Z         2       1",
            "top paths",
            "  path                                      requests    p99 ms",
            "  /orders                                          3      31.0",
            "slowest requests",
            "  time                     service      method  path                     status       ms  caller role",
            "  2024-08-04T11:28:40Z     order        POST    /orders                     403       31  -",
            "auth denials: 2",
            "  arn:aws:iam::1:role/x                                              1",
            "    AccessDenied                                                     1",
            "  (no principal, or beyond --top)                                    1",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }
}
