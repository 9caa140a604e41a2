//! A local run's check of the Lambda telemetry (`loadgen --local --telemetry`): the telemetry
//! extension ran beside order, payment and inventory, and after their environments shut down
//! (so every extension has flushed) the search engine holds one `platform.report` document per
//! invocation the local Lambda service counted, each with its trace id, and every log line the
//! functions printed. Also how long the extension kept an environment busy after each response.

use std::collections::{BTreeMap, HashMap};

use local_stack::stack::{LocalStack, SERVICES};
use serde_json::{json, Value};

use super::{AnalyticsClient, AnalyticsError, SearchAuth};
use crate::report::TelemetryCheck;

/// The platform records' indices (the extension's default `PLATFORM_INDEX`, daily).
pub const PLATFORM_PATTERN: &str = "lambda-platform-*";
/// The function log lines' indices (`FUNCTION_INDEX`).
pub const FUNCTION_PATTERN: &str = "lambda-function-*";
/// Reports and runtimeDone records read for the extension's added time, at most.
pub const TIMING_SAMPLE: usize = 10_000;

/// The check. Call it after [`LocalStack::shut_down_functions`].
pub async fn check(stack: &LocalStack) -> TelemetryCheck {
    let mut check = TelemetryCheck {
        invocations: SERVICES
            .iter()
            .filter_map(|s| {
                Some((
                    (*s).to_owned(),
                    stack.functions.get(*s)?.stats().invocations,
                ))
            })
            .collect(),
        function_lines_emitted: SERVICES
            .iter()
            .filter_map(|s| Some(stack.functions.get(*s)?.telemetry_stats().function_lines))
            .sum(),
        ..TelemetryCheck::default()
    };
    if let Err(e) = read_index(stack, &mut check).await {
        check
            .disagreements
            .push(format!("reading the telemetry indices: {e}"));
    }
    for (function, invocations) in &check.invocations {
        let reports = check.reports.get(function).copied().unwrap_or(0);
        if reports != *invocations {
            check.disagreements.push(format!(
                "{function}: {invocations} invocations but {reports} platform.report documents"
            ));
        }
    }
    let total: u64 = check.reports.values().sum();
    if check.reports_with_trace_id != total {
        check.disagreements.push(format!(
            "{} of {total} reports carry no traceId",
            total - check.reports_with_trace_id
        ));
    }
    if check.function_lines != check.function_lines_emitted {
        check.disagreements.push(format!(
            "{} function log lines indexed of {} the functions printed",
            check.function_lines, check.function_lines_emitted
        ));
    }
    check.complete = check.disagreements.is_empty();
    if !check.complete {
        // What the extensions said about themselves (their summary at shutdown, failures).
        for service in SERVICES {
            let Some(function) = stack.functions.get(service) else {
                continue;
            };
            for line in function.extension_lines() {
                check
                    .disagreements
                    .push(format!("{service}'s extension: {line}"));
            }
        }
    }
    check
}

async fn read_index(stack: &LocalStack, check: &mut TelemetryCheck) -> Result<(), AnalyticsError> {
    let client = AnalyticsClient::new(&stack.state.search.url, SearchAuth::None)?;
    client.refresh(PLATFORM_PATTERN).await?;
    if let Err(e) = client.refresh(FUNCTION_PATTERN).await {
        if !matches!(e, AnalyticsError::IndexMissing { .. }) {
            return Err(e);
        }
    }
    let answer = client.search(PLATFORM_PATTERN, &reports_body()).await?;
    let aggregations = &answer["aggregations"];
    for bucket in aggregations["by_function"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(function), Some(n)) = (bucket["key"].as_str(), bucket["doc_count"].as_u64()) {
            check.reports.insert(function.to_owned(), n);
        }
    }
    check.reports_with_trace_id = aggregations["with_trace"]["doc_count"]
        .as_u64()
        .unwrap_or(0);
    check.billed_ms = aggregations["billed"]["value"].as_f64().unwrap_or(0.0) as u64;
    check.function_lines = match client.count(FUNCTION_PATTERN).await {
        // No line printed, no index.
        Err(AnalyticsError::IndexMissing { .. }) => 0,
        other => other?,
    };
    let timing = client.search(PLATFORM_PATTERN, &timing_body()).await?;
    let added = extension_added_ms(
        timing["hits"]["hits"]
            .as_array()
            .map_or(&[][..], Vec::as_slice),
    );
    check.extension_ms_p50 = percentile(&added, 0.50);
    check.extension_ms_p99 = percentile(&added, 0.99);
    Ok(())
}

fn reports_body() -> Value {
    json!({
        "size": 0,
        "query": {"term": {"type": "platform.report"}},
        "aggs": {
            "by_function": {"terms": {"field": "function", "size": 100}},
            "with_trace": {"filter": {"exists": {"field": "traceId"}}},
            "billed": {"sum": {"field": "billedDurationMs"}},
        },
    })
}

fn timing_body() -> Value {
    json!({
        "size": TIMING_SAMPLE,
        "query": {"terms": {"type": ["platform.report", "platform.runtimeDone"]}},
        "_source": ["type", "requestId", "durationMs"],
    })
}

/// Per invocation with both records: report duration minus runtimeDone duration, ms, sorted.
fn extension_added_ms(hits: &[Value]) -> Vec<f64> {
    let mut runtime: HashMap<&str, f64> = HashMap::new();
    let mut report: BTreeMap<&str, f64> = BTreeMap::new();
    for source in hits.iter().map(|hit| &hit["_source"]) {
        let (Some(id), Some(ms)) = (source["requestId"].as_str(), source["durationMs"].as_f64())
        else {
            continue;
        };
        match source["type"].as_str() {
            Some("platform.runtimeDone") => runtime.insert(id, ms),
            Some("platform.report") => report.insert(id, ms),
            _ => None,
        };
    }
    let mut added: Vec<f64> = report
        .iter()
        .filter_map(|(id, total)| Some((total - runtime.get(id)?).max(0.0)))
        .collect();
    added.sort_by(f64::total_cmp);
    added
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_time_joins_report_and_runtime_done_by_request_id() {
        let hit = |t: &str, id: &str, ms: f64| json!({"_source": {"type": t, "requestId": id, "durationMs": ms}});
        let hits = [
            hit("platform.runtimeDone", "a", 2.0),
            hit("platform.report", "a", 2.5),
            hit("platform.report", "b", 9.0),
            hit("platform.runtimeDone", "b", 1.0),
            hit("platform.report", "no-runtime-done", 4.0),
        ];
        assert_eq!(extension_added_ms(&hits), vec![0.5, 8.0]);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&[3.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
