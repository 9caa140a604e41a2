//! The service map from GetServiceGraph: nodes and edges with their request counts, outcomes and
//! latency, printed as a table or written as Mermaid or Graphviz DOT.

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

/// A node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name (`client` for the client node).
    pub name: String,
    /// X-Ray type (`AWS::Lambda::Function`, `client`, …).
    pub node_type: String,
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
    Traffic {
        requests,
        ok,
        error,
        fault,
        throttle,
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
            map.nodes.push(Node {
                name: display_name(service),
                node_type: service.r#type().unwrap_or("").to_owned(),
                traffic: traffic(stats, service.response_time_histogram()),
            });
            for edge in service.edges() {
                let stats = edge.summary_statistics().map(|s| counts!(s));
                map.edges.push(Edge {
                    from: display_name(service),
                    to: name_of(edge.reference_id()),
                    traffic: traffic(stats, edge.response_time_histogram()),
                });
            }
        }
        map.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        map.edges
            .sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
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
        out
    }

    /// Mermaid `graph LR`.
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut out = String::from("graph LR\n");
        for node in &self.nodes {
            out.push_str(&format!(
                "  {}[\"{}<br/>{}<br/>{}\"]\n",
                id(&node.name),
                node.name,
                node.node_type,
                node.traffic.node_label()
            ));
        }
        for edge in &self.edges {
            out.push_str(&format!(
                "  {} -->|\"{}\"| {}\n",
                id(&edge.from),
                edge.traffic.edge_label(),
                id(&edge.to)
            ));
        }
        out
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph service_map {\n  rankdir=LR;\n");
        for node in &self.nodes {
            out.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{}\\n{}\"];\n",
                node.name,
                node.name,
                node.node_type,
                node.traffic.node_label()
            ));
        }
        for edge in &self.edges {
            out.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
                edge.from,
                edge.to,
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
    fn renders_mermaid_and_dot() {
        let map = ServiceMap {
            nodes: vec![Node {
                name: "order".into(),
                node_type: "AWS::Lambda::Function".into(),
                traffic: Traffic {
                    requests: 3,
                    ..Traffic::default()
                },
            }],
            edges: vec![Edge {
                from: "loadgen".into(),
                to: "order".into(),
                traffic: Traffic {
                    requests: 3,
                    avg_ms: 2.0,
                    ..Traffic::default()
                },
            }],
        };
        assert_eq!(
            map.to_mermaid(),
            "graph LR\n  order[\"order<br/>AWS::Lambda::Function<br/>3 req, 0 fault, p99 0.0 ms\"]\n  loadgen -->|\"3 req, avg 2.0 ms\"| order\n"
        );
        assert!(map
            .to_dot()
            .contains("\"loadgen\" -> \"order\" [label=\"3 req, avg 2.0 ms\"];"));
        assert!(map.to_table().contains("loadgen -> order"));
    }
}
