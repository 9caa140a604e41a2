//! The segments the Lambda service itself sends when a function has Active tracing: for each
//! sampled invocation, an `AWS::Lambda` segment (the service) and an `AWS::Lambda::Function`
//! segment (the function) with `Initialization` (cold starts only) and `Invocation` subsegments,
//! in a new trace. The function is handed `Root=<trace>;Parent=<function segment>;Sampled=…`, so
//! the function's own segment, when it has no upstream header, hangs under the function node as
//! it does on AWS (X-Ray guide, "Using AWS Lambda with AWS X-Ray").
//!
//! Sampling follows Lambda's default rule: the first request each second, then 5 % of the rest.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lattice_xray::simulation::Simulator;
use serde_json::{json, Value};

/// How facade traces are sampled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FacadeSampling {
    /// Lambda's default rule: 1 per second, then `rate` of the rest.
    DefaultRule {
        /// Share sampled beyond the reservoir (Lambda: 0.05).
        rate: f64,
    },
    /// Every invocation (tests, demos).
    Always,
}

/// One invocation's facade: ids, decision, and the header handed to the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacadeTrace {
    /// The new trace.
    pub trace_id: String,
    /// The `AWS::Lambda` segment.
    pub service_segment_id: String,
    /// The `AWS::Lambda::Function` segment the function's work hangs under.
    pub function_segment_id: String,
    /// Whether the trace is recorded.
    pub sampled: bool,
}

impl FacadeTrace {
    /// `Lambda-Runtime-Trace-Id`.
    pub fn runtime_header(&self) -> String {
        format!(
            "Root={};Parent={};Sampled={}",
            self.trace_id,
            self.function_segment_id,
            u8::from(self.sampled)
        )
    }
}

/// What happened, for the facade documents.
#[derive(Clone, Debug)]
pub struct InvocationRecord<'a> {
    /// Function name.
    pub function_name: &'a str,
    /// Function ARN.
    pub function_arn: &'a str,
    /// Lambda request id.
    pub request_id: &'a str,
    /// When the invoke request arrived (epoch seconds).
    pub start: f64,
    /// Init duration, on a cold start.
    pub init: Option<Duration>,
    /// When the invocation ended (epoch seconds).
    pub end: f64,
    /// `None` on success, else the error type (`Unhandled`, `Task timed out…`).
    pub error: Option<&'a str>,
}

/// Makes facade traces and sends their documents to the daemon.
#[derive(Debug)]
pub struct Facade {
    socket: UdpSocket,
    sampling: FacadeSampling,
    simulator: Simulator,
    reservoir_second: AtomicU64,
    sent: AtomicU64,
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Facade {
    /// Sends to the daemon at `daemon`; ids and the 5 % draw come from `seed`.
    pub fn new(daemon: SocketAddr, sampling: FacadeSampling, seed: u64) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        socket.connect(daemon)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            sampling,
            simulator: Simulator::seeded(seed),
            reservoir_second: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        })
    }

    /// A new trace for one invocation, sampled by the rule.
    pub fn begin(&self) -> FacadeTrace {
        let now = epoch_now();
        let sampled = match self.sampling {
            FacadeSampling::Always => true,
            FacadeSampling::DefaultRule { rate } => {
                let second = now as u64;
                let previous = self.reservoir_second.swap(second, Ordering::Relaxed);
                previous != second || self.simulator.draw() < rate
            }
        };
        FacadeTrace {
            trace_id: format!("1-{:08x}-{}", now as u64, self.simulator.hex_id(12)),
            service_segment_id: self.simulator.hex_id(8),
            function_segment_id: self.simulator.hex_id(8),
            sampled,
        }
    }

    /// Sends the two facade segments of a finished invocation (nothing when not sampled).
    pub fn finish(&self, trace: &FacadeTrace, record: &InvocationRecord<'_>) {
        if !trace.sampled {
            return;
        }
        for document in self.documents(trace, record) {
            let mut datagram = b"{\"format\":\"json\",\"version\":1}\n".to_vec();
            datagram.extend_from_slice(document.to_string().as_bytes());
            // Like the real daemon path: never block, never fail the invocation.
            if self.socket.send(&datagram).is_ok() {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Documents handed to the daemon's socket so far (for loss accounting).
    pub fn documents_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The documents for `record` (public for tests and for the proof suite's schema check).
    pub fn documents(&self, trace: &FacadeTrace, record: &InvocationRecord<'_>) -> [Value; 2] {
        let fault = record.error.is_some();
        let mut service = json!({
            "trace_id": trace.trace_id, "id": trace.service_segment_id, "name": record.function_name,
            "origin": "AWS::Lambda", "start_time": record.start, "end_time": record.end,
            "resource_arn": record.function_arn,
            "aws": {"request_id": record.request_id},
            "http": {"response": {"status": 200}},
        });
        let mut subsegments = Vec::new();
        let mut invocation_start = record.start;
        if let Some(init) = record.init {
            let init_end = record.start + init.as_secs_f64();
            subsegments.push(
                json!({"id": self.simulator.hex_id(8), "name": "Initialization",
                                    "start_time": record.start, "end_time": init_end}),
            );
            invocation_start = init_end;
        }
        let mut invocation = json!({"id": self.simulator.hex_id(8), "name": "Invocation",
                                    "start_time": invocation_start, "end_time": record.end.max(invocation_start)});
        let mut function = json!({
            "trace_id": trace.trace_id, "id": trace.function_segment_id, "parent_id": trace.service_segment_id,
            "name": record.function_name, "origin": "AWS::Lambda::Function",
            "start_time": record.start, "end_time": record.end, "resource_arn": record.function_arn,
            "aws": {"request_id": record.request_id},
        });
        if let Some(error) = record.error {
            function["fault"] = json!(true);
            invocation["fault"] = json!(true);
            function["cause"] = json!({"exceptions": [{"id": self.simulator.hex_id(8), "type": error, "message": error}]});
            service["fault"] = json!(fault);
        }
        subsegments.push(invocation);
        function["subsegments"] = Value::Array(subsegments);
        [service, function]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_takes_one_per_second_then_the_rate() {
        let daemon = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let facade = Facade::new(daemon, FacadeSampling::DefaultRule { rate: 0.0 }, 2).unwrap();
        // Two calls in the same second: the reservoir takes the first, a 0 % rate refuses the second.
        for _ in 0..3 {
            let (first, second) = (facade.begin(), facade.begin());
            let same_second = first.trace_id[2..10] == second.trace_id[2..10];
            if same_second {
                assert!(!second.sampled);
                let header: lattice_xray::TraceHeader = second.runtime_header().parse().unwrap();
                assert_eq!(header.to_string(), second.runtime_header());
                return;
            }
        }
        panic!("could not make two calls within one second");
    }
}
