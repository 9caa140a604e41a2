//! Spans → X-Ray segment documents → the daemon.
//!
//! An invocation's spans are sent as **one** document: the segment with its subsegments nested,
//! as the X-Ray SDKs do (translator option `always_nest_subsegments`). That is one datagram and
//! one syscall per request instead of one per subsegment. A batch falls back to one document per
//! span when nesting would lose something (metadata on a subsegment) or exceed 64 KiB.
//!
//! The translation is opentelemetry-aws's `SegmentTranslator` (SERVER span → segment named after
//! `service.name`, other spans → independent subsegments, `annotation.*` → annotations, http and
//! error fields from semantic-convention attributes). Two things are ours, and why:
//! - **Namespaced metadata.** The translator writes metadata as flat `key: scalar` pairs, but
//!   X-Ray's document schema wants `metadata: {namespace: {…}}`. [`SegmentExporter`] serializes the
//!   document, then appends the namespaces recorded by [`crate::record_metadata`].
//! - **The datagram sink.** `XrayDaemonClient` serializes documents internally, so it cannot send a
//!   document we have amended; [`UdpDaemonSink`] is the same protocol (header line + document,
//!   non-blocking connected UDP socket) over bytes we hand it, and it never returns an error to the
//!   request path: failures are counted in [`ExportStats`] and logged once.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use opentelemetry::trace::SpanKind;
use opentelemetry::Value;
use opentelemetry_aws::xray_exporter::SegmentTranslator;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use crate::annotation::METADATA_ATTRIBUTE_PREFIX;

/// First line of every datagram, as the X-Ray SDKs write it.
pub const DAEMON_HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";
/// Largest UDP payload the daemon accepts.
pub const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// Where finished datagrams go.
pub trait DaemonSink: Send + Sync + std::fmt::Debug + 'static {
    /// Sends one datagram (header line + one document). Must not block.
    fn send(&self, datagram: &[u8]) -> io::Result<()>;
}

/// Sends datagrams to the X-Ray daemon over UDP.
#[derive(Debug)]
pub struct UdpDaemonSink {
    socket: UdpSocket,
}

impl UdpDaemonSink {
    /// A non-blocking socket connected to the daemon. Connecting UDP sends no packet, so this
    /// succeeds whether or not a daemon is listening.
    pub fn connect(daemon: SocketAddr) -> io::Result<Self> {
        let bind: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        socket.connect(daemon)?;
        Ok(Self { socket })
    }
}

impl DaemonSink for UdpDaemonSink {
    fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send(datagram).map(|_| ())
    }
}

/// Keeps every datagram in memory: for tests and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl MemorySink {
    /// Every datagram received so far, as sent.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.datagrams.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Every document received so far (header line stripped), parsed.
    pub fn documents(&self) -> Vec<serde_json::Value> {
        self.datagrams()
            .iter()
            .filter_map(|d| d.strip_prefix(DAEMON_HEADER))
            .filter_map(|doc| serde_json::from_slice(doc).ok())
            .collect()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        if let Ok(mut d) = self.datagrams.lock() {
            d.clear();
        }
    }
}

impl DaemonSink for MemorySink {
    fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.datagrams
            .lock()
            .map_err(|_| io::Error::other("memory sink poisoned"))?
            .push(datagram.to_vec());
        Ok(())
    }
}

/// Counters of what the exporter did; shared with whoever wants to report them.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Datagrams handed to the socket.
    pub sent: AtomicU64,
    /// Datagrams the socket refused (daemon down, buffer full, …).
    pub send_failed: AtomicU64,
    /// Spans the translator could not turn into a document.
    pub untranslatable: AtomicU64,
    /// Documents over 64 KiB, dropped.
    pub oversized: AtomicU64,
}

impl ExportStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// An OpenTelemetry [`SpanExporter`] that writes X-Ray segment documents to a [`DaemonSink`].
#[derive(Debug)]
pub struct SegmentExporter<S: DaemonSink> {
    translator: SegmentTranslator,
    nesting_translator: SegmentTranslator,
    sink: S,
    stats: Arc<ExportStats>,
    buffer: Mutex<Vec<u8>>,
    first_failure: Once,
}

impl<S: DaemonSink> SegmentExporter<S> {
    /// An exporter over `sink` with a default translator.
    pub fn new(sink: S) -> Self {
        Self {
            translator: SegmentTranslator::new(),
            nesting_translator: SegmentTranslator::new().always_nest_subsegments(),
            sink,
            stats: Arc::default(),
            buffer: Mutex::new(Vec::with_capacity(8 * 1024)),
            first_failure: Once::new(),
        }
    }

    /// The counters this exporter updates.
    pub fn stats(&self) -> Arc<ExportStats> {
        Arc::clone(&self.stats)
    }

    /// Exports spans that belong together (one invocation), nested into one document when possible.
    pub fn export_batch(&self, batch: &[SpanData]) {
        let mut buf = match self.buffer.lock() {
            Ok(buf) => buf,
            Err(poisoned) => poisoned.into_inner(),
        };
        if batch.len() > 1 && self.try_export_nested(batch, &mut buf) {
            return;
        }
        for span in batch {
            self.export_one(span, &mut buf);
        }
    }

    /// One nested document for the whole batch; false when the batch needs one document per span.
    fn try_export_nested(&self, batch: &[SpanData], buf: &mut Vec<u8>) -> bool {
        let mut roots = batch.iter().filter(|s| s.span_kind == SpanKind::Server);
        let (Some(root), None) = (roots.next(), roots.next()) else {
            return false;
        };
        if batch
            .iter()
            .any(|s| s.span_kind != SpanKind::Server && has_metadata(s))
        {
            return false;
        }
        let Some(documents) = self.translate(&self.nesting_translator, batch) else {
            return true;
        };
        let [document] = documents.as_slice() else {
            return false;
        };
        buf.clear();
        buf.extend_from_slice(DAEMON_HEADER);
        document.to_writer(&mut *buf);
        append_metadata(root, buf);
        if buf.len() > MAX_DATAGRAM_BYTES {
            return false;
        }
        self.send(buf);
        true
    }

    fn export_one(&self, span: &SpanData, buf: &mut Vec<u8>) {
        let Some(documents) = self.translate(&self.translator, std::slice::from_ref(span)) else {
            return;
        };
        let Some(document) = documents.into_iter().next() else {
            ExportStats::bump(&self.stats.untranslatable);
            return;
        };
        buf.clear();
        buf.extend_from_slice(DAEMON_HEADER);
        document.to_writer(&mut *buf);
        append_metadata(span, buf);
        if buf.len() > MAX_DATAGRAM_BYTES {
            ExportStats::bump(&self.stats.oversized);
            return;
        }
        self.send(buf);
    }

    /// The translator's documents, or `None` (counted as untranslatable) when it panics:
    /// opentelemetry-aws 0.21 panics on a batch whose every span it drops (an empty document
    /// tree), and telemetry must never take a request down with it.
    fn translate<'a>(
        &self,
        translator: &'a SegmentTranslator,
        batch: &'a [SpanData],
    ) -> Option<Vec<opentelemetry_aws::xray_exporter::SegmentDocument<'a>>> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| translator.translate_spans(batch))) {
            Ok(documents) => Some(documents),
            Err(_) => {
                ExportStats::bump(&self.stats.untranslatable);
                None
            }
        }
    }

    fn send(&self, buf: &[u8]) {
        match self.sink.send(buf) {
            Ok(()) => ExportStats::bump(&self.stats.sent),
            Err(error) => {
                ExportStats::bump(&self.stats.send_failed);
                self.first_failure.call_once(|| {
                    tracing::warn!(%error, "X-Ray daemon unreachable; segments are being dropped (counted, logged once)");
                });
            }
        }
    }
}

fn has_metadata(span: &SpanData) -> bool {
    span.attributes
        .iter()
        .any(|kv| kv.key.as_str().starts_with(METADATA_ATTRIBUTE_PREFIX))
}

/// Appends `"metadata": {namespace: object, …}` to a serialized document that has none.
fn append_metadata(span: &SpanData, buf: &mut Vec<u8>) {
    let mut namespaces = span.attributes.iter().filter_map(|kv| {
        let namespace = kv.key.as_str().strip_prefix(METADATA_ATTRIBUTE_PREFIX)?;
        match &kv.value {
            Value::String(json) => Some((namespace, json.as_str())),
            _ => None,
        }
    });
    let Some(first) = namespaces.next() else {
        return;
    };
    // The translator closes the document with '}'; it never writes metadata itself because we
    // neither enable `metadata_all_attrs` nor use its `metadata.` prefix.
    if buf.last() != Some(&b'}') {
        return;
    }
    buf.pop();
    buf.extend_from_slice(b",\"metadata\":{");
    for (i, (namespace, json)) in std::iter::once(first).chain(namespaces).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Namespaces were validated as [A-Za-z0-9_]+, so they need no escaping.
        buf.push(b'"');
        buf.extend_from_slice(namespace.as_bytes());
        buf.extend_from_slice(b"\":");
        buf.extend_from_slice(json.as_bytes());
    }
    buf.extend_from_slice(b"}}");
}

impl<S: DaemonSink> SpanExporter for SegmentExporter<S> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.export_batch(&batch);
        // Never an error: a telemetry failure must not surface anywhere near a request.
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.translator.set_resource(resource);
        self.nesting_translator.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    /// A finished span of the trace `1-5759e988-…` (2016: X-Ray's window is 30 days).
    fn stale_span(kind: SpanKind, id: u64, parent: u64) -> SpanData {
        let trace_id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        let end = SystemTime::now();
        SpanData {
            span_context: SpanContext::new(
                trace_id,
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: kind,
            name: Cow::Borrowed("order"),
            start_time: end - Duration::from_millis(5),
            end_time: end,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    #[test]
    fn a_batch_the_translator_cannot_take_is_counted_not_a_panic() {
        let sink = MemorySink::default();
        let exporter = SegmentExporter::new(sink.clone());
        let batch = [
            stale_span(SpanKind::Client, 2, 1),
            stale_span(SpanKind::Server, 1, 0),
        ];
        exporter.export_batch(&batch);
        exporter.export_batch(&batch[1..]);
        let stats = exporter.stats();
        assert!(sink.datagrams().is_empty());
        assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
        assert!(stats.untranslatable.load(Ordering::Relaxed) >= 2);
    }
}
