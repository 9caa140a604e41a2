//! After the load (or alone: `loadgen inspect`): find the run's traces in X-Ray with aws-sdk-xray
//! (`annotation.run_id = "<run>"`), check that each holds loadgen → order → inventory/payment with
//! every parent link resolved, count errors and faults per service, and read the service graph.
//! Works against AWS or the local X-Ray API (its `endpoint_url`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_xray::primitives::DateTime;
use aws_sdk_xray::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::map::ServiceMap;

/// The services every complete order trace holds, with the one each must hang under (payment is
/// not expected when order answered 409: inventory refused and payment was never called).
pub const EXPECTED_CHAIN: [(&str, &str); 3] = [
    ("order", "loadgen"),
    ("inventory", "order"),
    ("payment", "order"),
];
/// BatchGetTraces takes at most 5 ids per call.
pub const BATCH: usize = 5;
/// Incomplete traces listed in the report.
pub const LISTED: usize = 10;
/// Slowest traces listed in the report.
pub const SLOWEST: usize = 10;

/// What to look for.
#[derive(Clone, Debug)]
pub struct InspectConfig {
    /// The run; `None`: every loadgen run in the window (traces with a `run_id` annotation).
    pub run_id: Option<String>,
    /// Window start.
    pub start: SystemTime,
    /// Window end.
    pub end: SystemTime,
    /// Traces expected (0: don't wait for a count).
    pub expected: u64,
    /// How long to wait for them.
    pub wait: Duration,
    /// Most traces fetched whole for the completeness check.
    pub check_limit: usize,
}

/// A trace missing part of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incomplete {
    /// Its id.
    pub trace_id: String,
    /// What is missing or unlinked.
    pub missing: Vec<String>,
}

/// One of the run's slowest traces, from its X-Ray summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowTrace {
    /// Its id.
    pub trace_id: String,
    /// From its first segment's start to its last one's end, ms.
    pub duration_ms: f64,
    /// The root segment's response time, ms.
    pub response_time_ms: Option<f64>,
    /// The root's HTTP status.
    pub status: Option<u16>,
    /// A segment faulted (5xx).
    pub fault: bool,
    /// A segment erred (4xx).
    pub error: bool,
    /// A segment was throttled (429).
    pub throttle: bool,
}

impl SlowTrace {
    fn from_summary(summary: &aws_sdk_xray::types::TraceSummary) -> Option<Self> {
        let ms = |seconds: f64| (seconds * 1e6).round() / 1e3;
        Some(Self {
            trace_id: summary.id()?.to_owned(),
            duration_ms: ms(summary.duration()?),
            response_time_ms: summary.response_time().map(ms),
            status: summary
                .http()
                .and_then(|h| h.http_status())
                .and_then(|s| u16::try_from(s).ok()),
            fault: summary.has_fault().unwrap_or(false),
            error: summary.has_error().unwrap_or(false),
            throttle: summary.has_throttle().unwrap_or(false),
        })
    }
}

/// The [`SLOWEST`] of `traces`, slowest first (ties by id).
pub fn slowest(mut traces: Vec<SlowTrace>) -> Vec<SlowTrace> {
    traces.sort_by(|a, b| {
        b.duration_ms
            .total_cmp(&a.duration_ms)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
    traces.truncate(SLOWEST);
    traces
}

/// Errors seen in one service's segments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceOutcomes {
    /// Segments.
    pub segments: u64,
    /// With `error` (4xx).
    pub error: u64,
    /// With `fault` (5xx).
    pub fault: u64,
    /// With `throttle` (429).
    pub throttle: u64,
}

/// The inspection's findings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// Traces with the run's annotation.
    pub traces_found: u64,
    /// Traces expected.
    pub traces_expected: u64,
    /// Fetched and checked.
    pub traces_checked: u64,
    /// Of those, complete.
    pub traces_complete: u64,
    /// `traces_complete / traces_checked`, percent.
    pub complete_percent: f64,
    /// The first incomplete ones.
    pub incomplete: Vec<Incomplete>,
    /// The slowest traces found, slowest first.
    pub slowest: Vec<SlowTrace>,
    /// Per service.
    pub by_service: BTreeMap<String, ServiceOutcomes>,
    /// The service graph over the run's window.
    pub service_map: ServiceMap,
    /// Seconds spent waiting for traces.
    pub waited_seconds: f64,
}

fn when(t: SystemTime) -> DateTime {
    DateTime::from(t)
}

/// Every trace annotated with `run_id` in the window, as its summary says.
pub async fn find_traces(
    client: &Client,
    config: &InspectConfig,
) -> anyhow::Result<Vec<SlowTrace>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_trace_summaries()
            .start_time(when(config.start))
            .end_time(when(config.end))
            .filter_expression(match &config.run_id {
                Some(run_id) => format!("annotation.run_id = \"{run_id}\""),
                None => "annotation.run_id".to_owned(),
            })
            .set_next_token(token)
            .send()
            .await?;
        found.extend(
            page.trace_summaries()
                .iter()
                .filter_map(SlowTrace::from_summary),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// Which part of the chain `documents` (one trace's segments) misses.
pub fn missing_links(documents: &[Value]) -> Vec<String> {
    // id → (parent id, owning segment's name)
    let mut owner: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    fn walk(
        node: &Value,
        name: Option<&str>,
        parent: Option<&str>,
        owner: &mut HashMap<String, (Option<String>, Option<String>)>,
    ) {
        let Some(id) = node.get("id").and_then(Value::as_str) else {
            return;
        };
        owner.insert(
            id.to_owned(),
            (parent.map(str::to_owned), name.map(str::to_owned)),
        );
        for child in node
            .get("subsegments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, name, Some(id), owner);
        }
    }
    for document in documents {
        let independent = document.get("type").and_then(Value::as_str) == Some("subsegment");
        let name = if independent {
            None
        } else {
            document.get("name").and_then(Value::as_str)
        };
        walk(
            document,
            name,
            document.get("parent_id").and_then(Value::as_str),
            &mut owner,
        );
    }
    // Resolve independent subsegments' owners through their parents.
    let resolve = |mut id: String| -> Option<String> {
        for _ in 0..64 {
            let (parent, name) = owner.get(&id)?;
            if let Some(name) = name {
                return Some(name.clone());
            }
            id = parent.clone()?;
        }
        None
    };
    let segment = |name: &str| {
        documents.iter().find(|d| {
            d.get("name").and_then(Value::as_str) == Some(name)
                && d.get("type").and_then(Value::as_str) != Some("subsegment")
        })
    };
    let mut missing = dynamodb_gaps(documents);
    if segment("loadgen").is_none() {
        missing.push("loadgen".to_owned());
    }
    // order answers 409 when inventory refuses the reservation, and then never calls payment.
    let refused_by_inventory = segment("order")
        .and_then(|o| o.pointer("/http/response/status"))
        .and_then(Value::as_u64)
        == Some(409);
    for (service, caller) in EXPECTED_CHAIN {
        if service == "payment" && refused_by_inventory {
            continue;
        }
        match segment(service) {
            None => missing.push(service.to_owned()),
            Some(doc) => {
                let parent = doc
                    .get("parent_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if parent.and_then(&resolve).as_deref() != Some(caller) {
                    missing.push(format!("{service} (not linked under {caller})"));
                }
            }
        }
    }
    missing
}

/// The services whose state lives in DynamoDB: each of their segments that answered below 500
/// (a simulated fault answers before any store call) holds at least one DynamoDB subsegment.
pub const STATEFUL: [&str; 2] = ["inventory", "payment"];

fn is_dynamodb_call(node: &Value) -> bool {
    node.get("namespace").and_then(Value::as_str) == Some("aws")
        && node.get("name").and_then(Value::as_str) == Some("DynamoDB")
}

/// `inventory (no DynamoDB call)` for each stateful segment that should hold one and does not
/// (nested, or sent as an independent subsegment whose parent is in the segment).
fn dynamodb_gaps(documents: &[Value]) -> Vec<String> {
    fn ids_with_call(node: &Value, out: &mut Vec<String>) -> bool {
        let children = node.get("subsegments").and_then(Value::as_array);
        let mut has = false;
        for child in children.into_iter().flatten() {
            has |= is_dynamodb_call(child) | ids_with_call(child, out);
        }
        if has {
            if let Some(id) = node.get("id").and_then(Value::as_str) {
                out.push(id.to_owned());
            }
        }
        has
    }
    let mut holders = Vec::new();
    for document in documents {
        ids_with_call(document, &mut holders);
        let independent = document.get("type").and_then(Value::as_str) == Some("subsegment");
        if independent && is_dynamodb_call(document) {
            if let Some(parent) = document.get("parent_id").and_then(Value::as_str) {
                holders.push(parent.to_owned());
            }
        }
    }
    let mut gaps = Vec::new();
    for document in documents {
        let name = document.get("name").and_then(Value::as_str).unwrap_or("");
        let is_segment = document.get("type").and_then(Value::as_str) != Some("subsegment");
        let status = document
            .pointer("/http/response/status")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let id = document.get("id").and_then(Value::as_str).unwrap_or("");
        if is_segment
            && STATEFUL.contains(&name)
            && status < 500
            && !holders.iter().any(|h| h == id)
        {
            gaps.push(format!("{name} (no DynamoDB call)"));
        }
    }
    gaps
}

/// Waits for the run's traces, checks them and reads the service graph.
pub async fn inspect(
    client: &Client,
    config: &InspectConfig,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Inspection> {
    let began = Instant::now();
    let mut found = find_traces(client, config).await?;
    let mut last_count = found.len();
    let mut stable_since = Instant::now();
    while (found.len() as u64) < config.expected && began.elapsed() < config.wait {
        progress(&format!(
            "waiting for traces: {}/{}",
            found.len(),
            config.expected
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        found = find_traces(client, config).await?;
        if found.len() != last_count {
            last_count = found.len();
            stable_since = Instant::now();
        } else if config.expected == 0 && stable_since.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let waited_seconds = began.elapsed().as_secs_f64();
    let ids: Vec<String> = found.iter().map(|t| t.trace_id.clone()).collect();
    let mut inspection = Inspection {
        traces_found: ids.len() as u64,
        slowest: slowest(found),
        traces_expected: config.expected,
        waited_seconds,
        ..Inspection::default()
    };
    let checked: Vec<String> = ids.into_iter().take(config.check_limit).collect();
    for (n, chunk) in checked.chunks(BATCH).enumerate() {
        if n.is_multiple_of(20) {
            progress(&format!("checking traces: {}/{}", n * BATCH, checked.len()));
        }
        let traces = client
            .batch_get_traces()
            .set_trace_ids(Some(chunk.to_vec()))
            .send()
            .await?;
        for trace in traces.traces() {
            let documents: Vec<Value> = trace
                .segments()
                .iter()
                .filter_map(|s| serde_json::from_str(s.document()?).ok())
                .collect();
            for document in &documents {
                if document.get("type").and_then(Value::as_str) == Some("subsegment") {
                    continue;
                }
                let name = document.get("name").and_then(Value::as_str).unwrap_or("?");
                let flag =
                    |k: &str| u64::from(document.get(k).and_then(Value::as_bool) == Some(true));
                let outcomes = inspection.by_service.entry(name.to_owned()).or_default();
                outcomes.segments += 1;
                outcomes.error += flag("error");
                outcomes.fault += flag("fault");
                outcomes.throttle += flag("throttle");
            }
            let missing = missing_links(&documents);
            inspection.traces_checked += 1;
            if missing.is_empty() {
                inspection.traces_complete += 1;
            } else if inspection.incomplete.len() < LISTED {
                inspection.incomplete.push(Incomplete {
                    trace_id: trace.id().unwrap_or_default().to_owned(),
                    missing,
                });
            }
        }
        // Traces X-Ray could not return count as checked and incomplete.
        for id in traces.unprocessed_trace_ids() {
            inspection.traces_checked += 1;
            if inspection.incomplete.len() < LISTED {
                inspection.incomplete.push(Incomplete {
                    trace_id: id.clone(),
                    missing: vec!["the whole trace (unprocessed)".into()],
                });
            }
        }
    }
    if inspection.traces_checked > 0 {
        inspection.complete_percent =
            inspection.traces_complete as f64 * 100.0 / inspection.traces_checked as f64;
    }
    let mut services = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_service_graph()
            .start_time(when(config.start))
            .end_time(when(config.end))
            .set_next_token(token)
            .send()
            .await?;
        services.extend(page.services().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    inspection.service_map = ServiceMap::from_services(&services);
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_complete_chain_and_what_breaks_it() {
        let loadgen =
            json!({"name": "loadgen", "id": "a1", "subsegments": [{"id": "a2", "name": "order"}]});
        let order = json!({"name": "order", "id": "b1", "parent_id": "a2",
            "subsegments": [{"id": "b2", "subsegments": [{"id": "b3", "name": "inventory"}]}, {"id": "b4", "name": "payment"}]});
        let table_call = |id: &str| json!({"id": id, "name": "DynamoDB", "namespace": "aws"});
        let inventory = json!({"name": "inventory", "id": "c1", "parent_id": "b3",
            "subsegments": [table_call("c2")]});
        let payment = json!({"name": "payment", "id": "d1", "parent_id": "b4",
            "subsegments": [table_call("d2"), table_call("d3")]});
        let all = [
            loadgen.clone(),
            order.clone(),
            inventory.clone(),
            payment.clone(),
        ];
        assert!(missing_links(&all).is_empty());
        assert_eq!(
            missing_links(&[loadgen.clone(), order.clone(), inventory.clone()]),
            ["payment"]
        );
        let mut stray = payment.clone();
        stray["parent_id"] = json!("zz");
        assert_eq!(
            missing_links(&[loadgen.clone(), order.clone(), inventory.clone(), stray]),
            ["payment (not linked under order)"]
        );
        // An independent subsegment of order's, sent on its own, still links payment to order.
        let independent =
            json!({"type": "subsegment", "id": "b9", "parent_id": "b1", "name": "payment"});
        let mut late = payment.clone();
        late["parent_id"] = json!("b9");
        assert!(missing_links(&[
            loadgen.clone(),
            order.clone(),
            inventory.clone(),
            late,
            independent
        ])
        .is_empty());
        // Out of stock: order answered 409 and rightly never called payment.
        let mut refused = order.clone();
        refused["http"] = json!({"response": {"status": 409}});
        assert!(missing_links(&[loadgen.clone(), refused, inventory.clone()]).is_empty());

        // A stateful service that answered without its table is incomplete, unless it faulted
        // before the store (a simulated fault); a call sent as its own document still counts.
        let mut stateless = payment.clone();
        stateless["subsegments"] = json!([]);
        let chain = |payment: Value, extra: Option<Value>| {
            let mut docs = vec![loadgen.clone(), order.clone(), inventory.clone(), payment];
            docs.extend(extra);
            missing_links(&docs)
        };
        assert_eq!(
            chain(stateless.clone(), None),
            ["payment (no DynamoDB call)"]
        );
        let mut faulted = stateless.clone();
        faulted["http"] = json!({"response": {"status": 503}});
        assert!(chain(faulted, None).is_empty());
        let mut alone = table_call("d9");
        alone["type"] = json!("subsegment");
        alone["parent_id"] = json!("d1");
        assert!(chain(stateless, Some(alone)).is_empty());
    }
}
