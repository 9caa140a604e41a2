//! The service graph (`GetServiceGraph`, `GetTraceGraph`), built the way X-Ray draws it:
//! one node per (name, type) of the segments services send; an edge from every `remote`/`aws`
//! subsegment to the segment whose `parent_id` is that subsegment's id, or to an inferred node
//! when no such segment arrived (a DynamoDB call's table as `AWS::DynamoDB::Table`, another AWS
//! call's service as `AWS::<service>`, else a `remote` node named after the subsegment); an edge
//! from a segment to each segment whose `parent_id` is that segment itself (Lambda's service
//! segment, `AWS::Lambda`, to its function's segment, `AWS::Lambda::Function`: X-Ray's
//! console draws that edge; when both are the same node, the inner one is that node's own work:
//! no edge, and counted once); and a `client` node in front of each root segment. Edge statistics
//! come from the caller's subsegment (or, for a segment under a segment, from the callee's
//! segment: nothing on the caller's side timed the call), node statistics from the node's own
//! segments.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::store::Entity;
use super::summary::{owning_segments, roots};

/// The node X-Ray infers for a call no segment answered: an AWS SDK call naming one DynamoDB
/// table is that table (`AWS::DynamoDB::Table`, named after it); another AWS call is its service
/// (`AWS::<name>`); any other downstream call is a `remote` node named after the subsegment.
fn inferred_node(call: &Map<String, Value>) -> NodeKey {
    let name = call.get("name").and_then(Value::as_str).map(str::to_owned);
    if call.get("namespace").and_then(Value::as_str) != Some("aws") {
        return NodeKey {
            name,
            kind: "remote".to_owned(),
        };
    }
    let table = call
        .get("aws")
        .and_then(|aws| aws.get("table_name"))
        .and_then(Value::as_str);
    match (name.as_deref(), table) {
        (Some("DynamoDB"), Some(table)) => NodeKey {
            name: Some(table.to_owned()),
            kind: "AWS::DynamoDB::Table".to_owned(),
        },
        _ => NodeKey {
            kind: format!("AWS::{}", name.as_deref().unwrap_or("Unknown")),
            name,
        },
    }
}

/// Counts and times for a node or an edge.
#[derive(Clone, Debug, Default, PartialEq)]
struct Statistics {
    ok: u64,
    error_throttle: u64,
    error_other: u64,
    fault: u64,
    total: u64,
    total_response_time: f64,
    /// Response times rounded to the millisecond → count.
    histogram: BTreeMap<u64, u64>,
}

impl Statistics {
    fn record(&mut self, fields: &Map<String, Value>) {
        let flag = |k: &str| fields.get(k).and_then(Value::as_bool).unwrap_or(false);
        let start = fields
            .get("start_time")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let end = fields
            .get("end_time")
            .and_then(Value::as_f64)
            .unwrap_or(start);
        let time = (end - start).max(0.0);
        self.total += 1;
        self.total_response_time += time;
        *self
            .histogram
            .entry((time * 1000.0).round() as u64)
            .or_default() += 1;
        if flag("fault") {
            self.fault += 1;
        } else if flag("throttle") {
            self.error_throttle += 1;
        } else if flag("error") {
            self.error_other += 1;
        } else {
            self.ok += 1;
        }
    }

    fn summary(&self) -> Value {
        json!({
            "OkCount": self.ok,
            "ErrorStatistics": {
                "ThrottleCount": self.error_throttle,
                "OtherCount": self.error_other,
                "TotalCount": self.error_throttle + self.error_other,
            },
            "FaultStatistics": {"OtherCount": self.fault, "TotalCount": self.fault},
            "TotalCount": self.total,
            "TotalResponseTime": self.total_response_time,
        })
    }

    fn histogram(&self) -> Value {
        Value::Array(
            self.histogram
                .iter()
                .map(|(ms, count)| json!({"Value": *ms as f64 / 1000.0, "Count": count}))
                .collect(),
        )
    }
}

/// A node's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct NodeKey {
    name: Option<String>,
    kind: String,
}

#[derive(Default)]
struct Node {
    stats: Statistics,
    root: bool,
    edges: BTreeMap<NodeKey, Statistics>,
}

fn segment_key(segment: &Entity) -> NodeKey {
    NodeKey {
        name: segment
            .fields
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        kind: segment
            .fields
            .get("origin")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
    }
}

const CLIENT: &str = "client";

/// Builds the graph of `traces` (each a trace's entities), stamped with `[start, end]`.
pub fn service_graph<T: AsRef<[Entity]>>(
    traces: impl IntoIterator<Item = T>,
    start: f64,
    end: f64,
) -> Vec<Value> {
    let mut nodes: BTreeMap<NodeKey, Node> = BTreeMap::new();
    let client = NodeKey {
        name: None,
        kind: CLIENT.to_owned(),
    };
    for trace in traces {
        let entities = trace.as_ref();
        let by_parent: HashMap<&str, &Entity> = entities
            .iter()
            .filter(|e| e.is_segment)
            .filter_map(|e| e.parent_id.as_deref().map(|p| (p, e)))
            .collect();
        let owners = owning_segments(entities);
        for segment in entities.iter().filter(|e| e.is_segment) {
            // A segment under a segment (its owner is itself, not a subsegment's segment).
            let parent = segment
                .parent_id
                .as_deref()
                .and_then(|p| owners.get(p))
                .filter(|parent| Some(parent.id.as_str()) == segment.parent_id.as_deref());
            // Under a segment of its own node (a function's code tracing under Lambda's segment
            // of that function, e.g. the transform Firehose invokes): one invocation of one node,
            // counted once (by the outer segment), and no edge from the node to itself.
            if parent.is_some_and(|parent| segment_key(parent) == segment_key(segment)) {
                continue;
            }
            nodes
                .entry(segment_key(segment))
                .or_default()
                .stats
                .record(&segment.fields);
            if let Some(parent) = parent {
                nodes
                    .entry(segment_key(parent))
                    .or_default()
                    .edges
                    .entry(segment_key(segment))
                    .or_default()
                    .record(&segment.fields);
            }
        }
        for root in roots(entities) {
            let key = segment_key(root);
            nodes.entry(key.clone()).or_default().root = true;
            let client_node = nodes.entry(client.clone()).or_default();
            client_node
                .edges
                .entry(key)
                .or_default()
                .record(&root.fields);
        }
        for call in entities.iter().filter(|e| !e.is_segment) {
            let namespace = call.fields.get("namespace").and_then(Value::as_str);
            if !matches!(namespace, Some("remote" | "aws")) {
                continue;
            }
            let Some(caller) = owners.get(call.id.as_str()) else {
                continue;
            };
            let target = match by_parent.get(call.id.as_str()) {
                Some(callee) => segment_key(callee),
                None => {
                    let inferred = inferred_node(&call.fields);
                    nodes
                        .entry(inferred.clone())
                        .or_default()
                        .stats
                        .record(&call.fields);
                    inferred
                }
            };
            nodes
                .entry(segment_key(caller))
                .or_default()
                .edges
                .entry(target)
                .or_default()
                .record(&call.fields);
        }
    }

    let reference: HashMap<NodeKey, usize> = nodes
        .keys()
        .cloned()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    nodes
        .iter()
        .map(|(key, node)| {
            let edges: Vec<Value> = node
                .edges
                .iter()
                .map(|(target, stats)| {
                    json!({
                        "ReferenceId": reference[target],
                        "StartTime": start,
                        "EndTime": end,
                        "SummaryStatistics": stats.summary(),
                        "ResponseTimeHistogram": stats.histogram(),
                        "Aliases": [],
                    })
                })
                .collect();
            let mut service = json!({
                "ReferenceId": reference[key],
                "Type": key.kind,
                "State": "active",
                "StartTime": start,
                "EndTime": end,
                "Edges": edges,
                "Root": node.root,
            });
            if let Some(name) = &key.name {
                service["Name"] = json!(name);
                service["Names"] = json!([name]);
            }
            if key.kind != CLIENT {
                service["SummaryStatistics"] = node.stats.summary();
                service["DurationHistogram"] = node.stats.histogram();
                service["ResponseTimeHistogram"] = node.stats.histogram();
            }
            service
        })
        .collect()
}
