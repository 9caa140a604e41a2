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
use serde::Serialize;
use tokio::sync::mpsc;

/// The daemon protocol's header line.
const DAEMON_HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\n";

thread_local! {
    /// Each thread's datagram buffer, reused from one document to the next.
    static DATAGRAM: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
}

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

    /// The header of an order that is not traced: the Root alone, with `Sampled=0`, so no
    /// service records it (and no `Parent` names a segment that will never exist).
    pub fn unsampled_header(&self) -> String {
        format!("Root={};Sampled=0", self.trace_id)
    }

    /// loadgen's segment document for the finished call (serialized straight from these
    /// borrowed fields: no JSON tree is built on the request path).
    #[allow(clippy::too_many_arguments)]
    pub fn document<'a>(
        &self,
        run_id: &'a str,
        scenario: &'a str,
        url: &'a str,
        start: f64,
        end: f64,
        status: Option<u16>,
        failure: Option<&'a str>,
    ) -> LoadgenSegment<'a> {
        let (error, fault, throttle) = match status {
            Some(status) => ((400..500).contains(&status), status >= 500, status == 429),
            // No answer at all: a fault on the caller's side of the edge.
            None => (false, true, false),
        };
        LoadgenSegment {
            name: "loadgen",
            id: self.segment_id,
            trace_id: self.trace_id,
            start_time: start,
            end_time: end,
            annotations: Annotations { run_id, scenario },
            error,
            fault,
            throttle,
            subsegments: [Call {
                id: self.call_id,
                name: "order",
                namespace: "remote",
                start_time: start,
                end_time: end,
                http: Http {
                    request: HttpRequest {
                        method: "POST",
                        url,
                    },
                    response: status.map(|status| HttpResponse { status }),
                },
                error,
                fault,
                throttle,
                cause: failure.map(|message| Cause {
                    exceptions: [Exception {
                        id: self.call_id,
                        message,
                    }],
                }),
            }],
        }
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// loadgen's segment document: one `remote` subsegment for the call to order.
#[derive(Debug, Serialize)]
pub struct LoadgenSegment<'a> {
    name: &'static str,
    #[serde(serialize_with = "display")]
    id: SegmentId,
    #[serde(serialize_with = "display")]
    trace_id: XrayTraceId,
    start_time: f64,
    end_time: f64,
    annotations: Annotations<'a>,
    error: bool,
    fault: bool,
    throttle: bool,
    subsegments: [Call<'a>; 1],
}

#[derive(Debug, Serialize)]
struct Annotations<'a> {
    run_id: &'a str,
    scenario: &'a str,
}

#[derive(Debug, Serialize)]
struct Call<'a> {
    #[serde(serialize_with = "display")]
    id: SegmentId,
    name: &'static str,
    namespace: &'static str,
    start_time: f64,
    end_time: f64,
    http: Http<'a>,
    error: bool,
    fault: bool,
    throttle: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause<'a>>,
}

#[derive(Debug, Serialize)]
struct Http<'a> {
    request: HttpRequest<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<HttpResponse>,
}

#[derive(Debug, Serialize)]
struct HttpRequest<'a> {
    method: &'static str,
    url: &'a str,
}

#[derive(Debug, Serialize)]
struct HttpResponse {
    status: u16,
}

#[derive(Debug, Serialize)]
struct Cause<'a> {
    exceptions: [Exception<'a>; 1],
}

#[derive(Debug, Serialize)]
struct Exception<'a> {
    #[serde(serialize_with = "display")]
    id: SegmentId,
    message: &'a str,
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
    pub fn send(&self, document: &impl Serialize) {
        match self {
            Self::Daemon {
                socket,
                sent,
                failed,
            } => {
                let delivered = DATAGRAM.with_borrow_mut(|datagram| {
                    datagram.clear();
                    datagram.extend_from_slice(DAEMON_HEADER);
                    serde_json::to_writer(&mut *datagram, document).is_ok()
                        && socket.send(datagram).is_ok()
                });
                if delivered {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Self::Api { queue, failed } => {
                let queued = serde_json::to_string(document)
                    .map(|document| queue.try_send(document).is_ok())
                    .unwrap_or(false);
                if !queued {
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
    use serde_json::json;

    #[test]
    fn the_header_points_at_the_call_and_the_document_links_it() {
        let trace = OrderTrace::new();
        let header = trace.header();
        assert_eq!(
            header,
            format!("Root={};Parent={};Sampled=1", trace.trace_id, trace.call_id)
        );
        assert_eq!(
            trace.unsampled_header(),
            format!("Root={};Sampled=0", trace.trace_id)
        );
        let unsampled: lattice_xray::TraceHeader = trace.unsampled_header().parse().unwrap();
        assert_eq!(
            (unsampled.root, unsampled.parent, unsampled.sampling),
            (
                trace.trace_id,
                None,
                lattice_xray::header::Sampling::NotSampled
            )
        );
        let parsed: lattice_xray::TraceHeader = header.parse().unwrap();
        assert_eq!(parsed.root, trace.trace_id);
        assert_eq!(parsed.parent, Some(trace.call_id));
        let doc = serde_json::to_value(trace.document(
            "run-1",
            "steady",
            "http://x/orders",
            1.0,
            1.5,
            Some(502),
            Some("boom"),
        ))
        .unwrap();
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
        assert_eq!(
            doc["subsegments"][0]["cause"],
            json!({"exceptions": [{"id": trace.call_id.to_string(), "message": "boom"}]})
        );
        assert_eq!(doc["trace_id"], trace.trace_id.to_string());
        let document = |status| {
            serde_json::to_value(trace.document("r", "s", "u", 1.0, 2.0, status, None)).unwrap()
        };
        let ok = document(Some(201));
        assert_eq!(ok["subsegments"][0].get("cause"), None);
        let unanswered = document(None);
        assert_eq!(unanswered["fault"], true);
        assert_eq!(unanswered["subsegments"][0]["http"].get("response"), None);
        assert_eq!(
            (ok["fault"].as_bool(), ok["error"].as_bool()),
            (Some(false), Some(false))
        );
        let denied = document(Some(403));
        assert_eq!(denied["error"], true);
    }
}
