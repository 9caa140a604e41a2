//! loadgen's own part of each trace: a new trace per order, a `loadgen` segment (annotations
//! `run_id`, `scenario`) with a `remote` subsegment for the call, and the `X-Amzn-Trace-Id` whose
//! `Parent` is that subsegment, so X-Ray draws loadgen → order → inventory/payment.
//!
//! Documents go to the X-Ray daemon over UDP when one is configured (never blocking: a full or
//! absent daemon costs a counted failure, not latency), otherwise to PutTraceSegments in
//! batches of 50 from a background task.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use lattice_xray::header::{SegmentId, XrayTraceId};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The ids of one order's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTrace {
    /// A new trace id.
    pub trace_id: XrayTraceId,
    /// loadgen's segment.
    pub segment_id: SegmentId,
    /// The call's subsegment (the `Parent` sent downstream).
    pub call_id: SegmentId,
}

fn nonzero(rng: &mut impl Rng) -> u64 {
    rng.random_range(1..=u64::MAX)
}

impl OrderTrace {
    /// Fresh ids, the trace stamped with the current time.
    pub fn new() -> Self {
        let mut rng = rand::rng();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as u128;
        let random: u128 = rng.random::<u128>() & ((1u128 << 96) - 1);
        Self {
            trace_id: XrayTraceId(epoch << 96 | random),
            segment_id: SegmentId(nonzero(&mut rng)),
            call_id: SegmentId(nonzero(&mut rng)),
        }
    }

    /// The header sent with the request.
    pub fn header(&self) -> String {
        format!("Root={};Parent={};Sampled=1", self.trace_id, self.call_id)
    }

    /// loadgen's segment document for the finished call.
    #[allow(clippy::too_many_arguments)]
    pub fn document(
        &self,
        run_id: &str,
        scenario: &str,
        url: &str,
        start: f64,
        end: f64,
        status: Option<u16>,
        failure: Option<&str>,
    ) -> Value {
        let mut http = json!({"request": {"method": "POST", "url": url}});
        let (error, fault, throttle) = match status {
            Some(status) => {
                http["response"] = json!({"status": status});
                ((400..500).contains(&status), status >= 500, status == 429)
            }
            // No answer at all: a fault on the caller's side of the edge.
            None => (false, true, false),
        };
        let mut call = json!({
            "id": self.call_id.to_string(), "name": "order", "namespace": "remote",
            "start_time": start, "end_time": end, "http": http,
            "error": error, "fault": fault, "throttle": throttle,
        });
        if let Some(failure) = failure {
            call["cause"] =
                json!({"exceptions": [{"id": self.call_id.to_string(), "message": failure}]});
        }
        json!({
            "name": "loadgen", "id": self.segment_id.to_string(),
            "trace_id": self.trace_id.to_string(),
            "start_time": start, "end_time": end,
            "annotations": {"run_id": run_id, "scenario": scenario},
            "error": error, "fault": fault, "throttle": throttle,
            "subsegments": [call],
        })
    }
}

impl Default for OrderTrace {
    fn default() -> Self {
        Self::new()
    }
}

/// Where loadgen's documents go.
#[derive(Debug)]
pub enum SegmentSink {
    /// The daemon's UDP port.
    Daemon {
        /// Connected, non-blocking.
        socket: UdpSocket,
        /// Documents the kernel accepted.
        sent: AtomicU64,
        /// Documents refused (daemon down, buffer full).
        failed: AtomicU64,
    },
    /// PutTraceSegments through a background batcher.
    Api {
        /// To the batcher.
        queue: mpsc::Sender<String>,
        /// Documents that did not fit the queue.
        failed: AtomicU64,
    },
}

impl SegmentSink {
    /// A sink sending to the daemon at `addr`.
    pub fn daemon(addr: SocketAddr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })?;
        socket.connect(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self::Daemon {
            socket,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// A sink calling PutTraceSegments with `client` (50 documents per call).
    pub fn api(client: aws_sdk_xray::Client) -> Self {
        let (queue, mut rx) = mpsc::channel::<String>(10_000);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(50);
            loop {
                let n = rx.recv_many(&mut batch, 50).await;
                if n == 0 {
                    break;
                }
                let documents = std::mem::take(&mut batch);
                if let Err(error) = client
                    .put_trace_segments()
                    .set_trace_segment_documents(Some(documents))
                    .send()
                    .await
                {
                    tracing::warn!(%error, "PutTraceSegments failed");
                }
            }
        });
        Self::Api {
            queue,
            failed: AtomicU64::new(0),
        }
    }

    /// Sends one document; never blocks, never fails the caller.
    pub fn send(&self, document: &Value) {
        match self {
            Self::Daemon {
                socket,
                sent,
                failed,
            } => {
                let datagram = format!("{{\"format\":\"json\",\"version\":1}}\n{document}");
                if socket.send(datagram.as_bytes()).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Self::Api { queue, failed } => {
                if queue.try_send(document.to_string()).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Documents that could not be handed over.
    pub fn failed(&self) -> u64 {
        match self {
            Self::Daemon { failed, .. } | Self::Api { failed, .. } => {
                failed.load(Ordering::Relaxed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_points_at_the_call_and_the_document_links_it() {
        let trace = OrderTrace::new();
        let header = trace.header();
        assert_eq!(
            header,
            format!("Root={};Parent={};Sampled=1", trace.trace_id, trace.call_id)
        );
        let parsed: lattice_xray::TraceHeader = header.parse().unwrap();
        assert_eq!(parsed.root, trace.trace_id);
        assert_eq!(parsed.parent, Some(trace.call_id));
        let doc = trace.document(
            "run-1",
            "steady",
            "http://x/orders",
            1.0,
            1.5,
            Some(502),
            Some("boom"),
        );
        assert_eq!(doc["name"], "loadgen");
        assert_eq!(
            doc["annotations"],
            json!({"run_id": "run-1", "scenario": "steady"})
        );
        assert_eq!(doc["subsegments"][0]["id"], trace.call_id.to_string());
        assert_eq!(doc["subsegments"][0]["namespace"], "remote");
        assert_eq!(doc["subsegments"][0]["http"]["response"]["status"], 502);
        assert_eq!(doc["fault"], true);
        assert_eq!(doc["error"], false);
        let ok = trace.document("r", "s", "u", 1.0, 2.0, Some(201), None);
        assert_eq!(
            (ok["fault"].as_bool(), ok["error"].as_bool()),
            (Some(false), Some(false))
        );
        let denied = trace.document("r", "s", "u", 1.0, 2.0, Some(403), None);
        assert_eq!(denied["error"], true);
    }
}
