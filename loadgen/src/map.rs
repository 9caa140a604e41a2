//! The service map from GetServiceGraph: nodes and edges with their request counts, outcomes and
//! latency, printed as a table or written as Mermaid or Graphviz DOT.
//!
//! # Node kinds
//! Each node's X-Ray type is kept as X-Ray gave it (`node_type`), and classified ([`NodeKind`]):
//! - `client`: X-Ray's node in front of each root segment (type `client`).
//! - `loadgen`: loadgen's own segments, the root of every order's trace. They carry no
//!   `origin` (loadgen runs on no AWS compute resource X-Ray names), so X-Ray has no resource type
//!   for them: the local X-Ray writes `unknown`; a node named `loadgen` with any type that is not
//!   an AWS one is this kind.
//! - `lambda_service`: `AWS::Lambda`, Lambda's own segment of an invocation. It appears only in
//!   Lambda's own sampled traces ("facade" traces): Lattice invokes a function with no trace
//!   header of the caller's, so Lambda samples the invocation itself (1 per second, then 5 %) in
//!   a trace of its own, drawn as client → `AWS::Lambda` → `AWS::Lambda::Function`, beside the
//!   order's trace through the same function.
//! - `lambda_function`: `AWS::Lambda::Function`, a function's segment (the services' own, named
//!   after the function).
//! - `dynamodb_table`: `AWS::DynamoDB::Table`, inferred from a DynamoDB call naming one table.
//! - `aws_service`: another `AWS::…` type (an AWS call with no table).
//! - `remote`: a downstream call nobody answered with a segment.
//! - `other`: any other type.

use aws_sdk_xray::types::{HistogramEntry, Service};
use serde::{Deserialize, Serialize};

/// Counts and latency of a node or an edge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// Requests.
    pub requests: i64,
    /// Answered OK.
    pub ok: i64,
    /// 4xx other than throttles.
    pub error: i64,
    /// 5xx.
    pub fault: i64,
    /// 429.
    pub throttle: i64,
    /// `ok` of `requests`, percent to 0.01 (0 when there were none).
    pub ok_percent: f64,
    /// `error` of `requests`, percent.
    pub error_percent: f64,
    /// `fault` of `requests`, percent.
    pub fault_percent: f64,
    /// `throttle` of `requests`, percent.
    pub throttle_percent: f64,
    /// Mean response time, ms.
    pub avg_ms: f64,
    /// p99 from the response-time histogram, ms.
    pub p99_ms: f64,
}

impl Traffic {
    /// A node's label line in Mermaid and DOT.
    fn node_label(&self) -> String {
        format!(
            "{} req, {} fault, p99 {:.1} ms",
            self.requests, self.fault, self.p99_ms
        )
    }

    /// An edge's label in Mermaid and DOT.
    fn edge_label(&self) -> String {
        format!("{} req, avg {:.1} ms", self.requests, self.avg_ms)
    }
}

/// What a node is (see the module's docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// X-Ray's client node.
    Client,
    /// loadgen's own segments.
    Loadgen,
    /// `AWS::Lambda`.
    LambdaService,
    /// `AWS::Lambda::Function`.
    LambdaFunction,
    /// `AWS::DynamoDB::Table`.
    DynamodbTable,
    /// Another `AWS::…` type.
    AwsService,
    /// `remote`.
    Remote,
    /// Anything else.
    Other,
}

impl NodeKind {
    /// The kind of a node named `name` of X-Ray type `node_type`.
    pub fn of(name: &str, node_type: &str) -> Self {
        match node_type {
            "client" => Self::Client,
            "AWS::Lambda" => Self::LambdaService,
            "AWS::Lambda::Function" => Self::LambdaFunction,
            DYNAMODB_TABLE => Self::DynamodbTable,
            "remote" => Self::Remote,
            t if t.starts_with("AWS::") => Self::AwsService,
            _ if name == "loadgen" => Self::Loadgen,
            _ => Self::Other,
        }
    }
}

/// A node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// X-Ray's reference id: unique in the map (two nodes can share a name: Lambda's service
    /// node and its function's).
    pub id: i32,
    /// Name (`client` for the client node).
    pub name: String,
    /// X-Ray type (`AWS::Lambda::Function`, `client`, …).
    pub node_type: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its traffic.
    pub traffic: Traffic,
}

/// An edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// The caller's [`Node::id`].
    pub from_id: i32,
    /// The callee's.
    pub to_id: i32,
    /// Its traffic.
    pub traffic: Traffic,
}

/// The map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceMap {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// The `q` quantile of an X-Ray histogram (value in seconds → ms).
pub fn histogram_quantile(entries: &[HistogramEntry], q: f64) -> f64 {
    let mut points: Vec<(f64, i64)> = entries
        .iter()
        .map(|e| (e.value(), e.count() as i64))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: i64 = points.iter().map(|p| p.1).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (value, count) in points {
        seen += count;
        if seen >= rank {
            return value * 1000.0;
        }
    }
    0.0
}

fn traffic(stats: Option<(i64, i64, i64, i64, i64, f64)>, histogram: &[HistogramEntry]) -> Traffic {
    let (requests, ok, error, throttle, fault, total_time) = stats.unwrap_or_default();
    let percent = |n: i64| {
        if requests > 0 {
            (n as f64 * 100.0 / requests as f64 * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    Traffic {
        requests,
        ok,
        error,
        fault,
        throttle,
        ok_percent: percent(ok),
        error_percent: percent(error),
        fault_percent: percent(fault),
        throttle_percent: percent(throttle),
        avg_ms: if requests > 0 {
            total_time / requests as f64 * 1000.0
        } else {
            0.0
        },
        p99_ms: histogram_quantile(histogram, 0.99),
    }
}

/// (total, ok, error, throttle, fault, total response time) of X-Ray's `ServiceStatistics` or
/// `EdgeStatistics`: two SDK types with the same accessors and no common trait.
macro_rules! counts {
    ($s:expr) => {{
        let s = $s;
        let errors = s.error_statistics();
        (
            s.total_count().unwrap_or(0),
            s.ok_count().unwrap_or(0),
            errors.and_then(|e| e.other_count()).unwrap_or(0),
            errors.and_then(|e| e.throttle_count()).unwrap_or(0),
            s.fault_statistics()
                .and_then(|f| f.total_count())
                .unwrap_or(0),
            s.total_response_time().unwrap_or(0.0),
        )
    }};
}

/// A node's name on the map. A DynamoDB table is usually named like the service that owns it
/// (`inventory` calls table `inventory`), so its type is part of its name here.
fn display_name(service: &Service) -> String {
    let name = service.name().unwrap_or("client");
    match service.r#type() {
        Some(DYNAMODB_TABLE) => format!("{name} (DynamoDB table)"),
        _ => name.to_owned(),
    }
}

/// Under the table when Lambda's own traces are in the map.
pub const FACADE_NOTE: &str =
    "  client -> AWS::Lambda entries are Lambda's own sampled traces of invocations Lattice made: \
Lattice passes Lambda no trace header of the caller's, so Lambda samples those invocations itself \
(1/s, then 5 %) in traces of their own, beside the orders' traces through the same functions.\n";

/// X-Ray's node type for a DynamoDB table (a DynamoDB call that names one table).
pub const DYNAMODB_TABLE: &str = "AWS::DynamoDB::Table";

impl ServiceMap {
    /// The map of GetServiceGraph's services.
    pub fn from_services(services: &[Service]) -> Self {
        let name_of = |reference: Option<i32>| {
            services
                .iter()
                .find(|s| s.reference_id() == reference)
                .map(display_name)
                .unwrap_or_else(|| "?".into())
        };
        let mut map = Self::default();
        for service in services {
            let stats = service.summary_statistics().map(|s| counts!(s));
            let name = display_name(service);
            let node_type = service.r#type().unwrap_or("").to_owned();
            map.nodes.push(Node {
                id: service.reference_id().unwrap_or(-1),
                kind: NodeKind::of(&name, &node_type),
                name,
                node_type,
                traffic: traffic(stats, service.response_time_histogram()),
            });
            for edge in service.edges() {
                let stats = edge.summary_statistics().map(|s| counts!(s));
                map.edges.push(Edge {
                    from: display_name(service),
                    to: name_of(edge.reference_id()),
                    from_id: service.reference_id().unwrap_or(-1),
                    to_id: edge.reference_id().unwrap_or(-1),
                    traffic: traffic(stats, edge.response_time_histogram()),
                });
            }
        }
        map.nodes
            .sort_by(|a, b| (&a.name, a.kind).cmp(&(&b.name, b.kind)));
        map.edges.sort_by(|a, b| {
            (&a.from, &a.to, a.from_id, a.to_id).cmp(&(&b.from, &b.to, b.from_id, b.to_id))
        });
        map
    }

    /// A fixed-width table for the terminal.
    pub fn to_table(&self) -> String {
        // Node rows: name and type; edge rows: "from -> to" across both columns.
        let row = |label: &str, kind: &str, t: &Traffic| {
            let head = if kind.is_empty() {
                format!("{label:<53}")
            } else {
                format!("{label:<28} {kind:<24}")
            };
            format!(
                "  {head} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9.1} {:>9.1}\n",
                t.requests, t.ok, t.error, t.fault, t.throttle, t.avg_ms, t.p99_ms
            )
        };
        let mut out = format!(
            "  {:<28} {:<24} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}\n",
            "node", "type", "requests", "ok", "error", "fault", "thrtl", "avg ms", "p99 ms"
        );
        for node in &self.nodes {
            out.push_str(&row(&node.name, &node.node_type, &node.traffic));
        }
        out.push_str(&format!(
            "  {:<53} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}\n",
            "edge", "requests", "ok", "error", "fault", "thrtl", "avg ms", "p99 ms"
        ));
        for edge in &self.edges {
            out.push_str(&row(
                &format!("{} -> {}", edge.from, edge.to),
                "",
                &edge.traffic,
            ));
        }
        if self.nodes.iter().any(|n| n.kind == NodeKind::LambdaService) {
            out.push_str(FACADE_NOTE);
        }
        out
    }

    /// Mermaid `graph LR` (node ids from X-Ray's reference ids: names can repeat).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("graph LR\n");
        for node in &self.nodes {
            out.push_str(&format!(
                "  n{}[\"{}<br/>{}<br/>{}\"]\n",
                node.id,
                node.name,
                node.node_type,
                node.traffic.node_label()
            ));
        }
        for edge in &self.edges {
            out.push_str(&format!(
                "  n{} -->|\"{}\"| n{}\n",
                edge.from_id,
                edge.traffic.edge_label(),
                edge.to_id
            ));
        }
        out
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph service_map {\n  rankdir=LR;\n");
        for node in &self.nodes {
            out.push_str(&format!(
                "  n{} [label=\"{}\\n{}\\n{}\"];\n",
                node.id,
                node.name,
                node.node_type,
                node.traffic.node_label()
            ));
        }
        for edge in &self.edges {
            out.push_str(&format!(
                "  n{} -> n{} [label=\"{}\"];\n",
                edge.from_id,
                edge.to_id,
                edge.traffic.edge_label()
            ));
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let entries: Vec<HistogramEntry> = [(0.010, 98), (0.050, 1), (0.200, 1)]
            .iter()
            .map(|(v, c)| HistogramEntry::builder().value(*v).count(*c).build())
            .collect();
        assert_eq!(histogram_quantile(&entries, 0.5), 10.0);
        assert_eq!(histogram_quantile(&entries, 0.99), 50.0);
        assert_eq!(histogram_quantile(&entries, 1.0), 200.0);
        assert_eq!(histogram_quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn traffic_carries_each_outcomes_share_to_a_hundredth_of_a_percent() {
        // (total, ok, error, throttle, fault, total response time s)
        let t = traffic(Some((3, 1, 1, 0, 1, 0.3)), &[]);
        assert_eq!(
            (
                t.ok_percent,
                t.error_percent,
                t.fault_percent,
                t.throttle_percent
            ),
            (33.33, 33.33, 33.33, 0.0)
        );
        assert!((t.avg_ms - 100.0).abs() < 1e-9);
        let none = traffic(None, &[]);
        assert_eq!(
            (none.requests, none.error_percent, none.fault_percent),
            (0, 0.0, 0.0)
        );
    }

    #[test]
    fn the_table_explains_lambdas_own_traces_only_when_they_are_on_the_map() {
        let node = |id, name: &str, node_type: &str| Node {
            id,
            name: name.into(),
            node_type: node_type.into(),
            kind: NodeKind::of(name, node_type),
            traffic: Traffic::default(),
        };
        let mut map = ServiceMap {
            nodes: vec![
                node(0, "loadgen", "unknown"),
                node(1, "order", "AWS::Lambda::Function"),
            ],
            edges: vec![],
        };
        assert!(!map.to_table().contains(FACADE_NOTE));
        map.nodes.push(node(2, "order", "AWS::Lambda"));
        assert!(map.to_table().ends_with(FACADE_NOTE));
    }

    #[test]
    fn node_kinds_follow_the_xray_types() {
        assert_eq!(NodeKind::of("loadgen", "unknown"), NodeKind::Loadgen);
        assert_eq!(NodeKind::of("loadgen", ""), NodeKind::Loadgen);
        assert_eq!(NodeKind::of("client", "client"), NodeKind::Client);
        assert_eq!(
            NodeKind::of("order", "AWS::Lambda"),
            NodeKind::LambdaService
        );
        assert_eq!(
            NodeKind::of("order", "AWS::Lambda::Function"),
            NodeKind::LambdaFunction
        );
        assert_eq!(
            NodeKind::of("inventory (DynamoDB table)", "AWS::DynamoDB::Table"),
            NodeKind::DynamodbTable
        );
        assert_eq!(
            NodeKind::of("DynamoDB", "AWS::DynamoDB"),
            NodeKind::AwsService
        );
        assert_eq!(NodeKind::of("bank", "remote"), NodeKind::Remote);
        assert_eq!(NodeKind::of("web", "unknown"), NodeKind::Other);
    }

    #[test]
    fn renders_mermaid_and_dot() {
        let map = ServiceMap {
            nodes: vec![Node {
                id: 1,
                name: "order".into(),
                node_type: "AWS::Lambda::Function".into(),
                kind: NodeKind::LambdaFunction,
                traffic: Traffic {
                    requests: 3,
                    ..Traffic::default()
                },
            }],
            edges: vec![Edge {
                from: "loadgen".into(),
                to: "order".into(),
                from_id: 0,
                to_id: 1,
                traffic: Traffic {
                    requests: 3,
                    avg_ms: 2.0,
                    ..Traffic::default()
                },
            }],
        };
        assert_eq!(
            map.to_mermaid(),
            "graph LR\n  n1[\"order<br/>AWS::Lambda::Function<br/>3 req, 0 fault, p99 0.0 ms\"]\n  n0 -->|\"3 req, avg 2.0 ms\"| n1\n"
        );
        assert!(map
            .to_dot()
            .contains("n0 -> n1 [label=\"3 req, avg 2.0 ms\"];"));
        assert!(map.to_table().contains("loadgen -> order"));
    }
}
