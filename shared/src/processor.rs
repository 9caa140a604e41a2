//! Holds an invocation's finished spans until its segment ends, then exports them together.
//!
//! The SDK's simple processor exports each span as it ends (one datagram per subsegment); its
//! batch processor exports on a timer, which Lambda's freeze would stall. This processor is in
//! between: [`OpenInvocations::begin`] marks a trace as having an invocation in flight, spans of
//! that trace are held, and when the invocation's SERVER span ends they are exported at once,
//! synchronously, before the handler's response is returned. Spans of traces with no invocation
//! in flight are exported immediately, so nothing is held without an owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::export::{DaemonSink, SegmentExporter};

#[derive(Debug, Default)]
struct Pending {
    in_flight: u32,
    spans: Vec<SpanData>,
}

/// Traces with an invocation in flight, and the spans they have finished so far.
#[derive(Debug, Default)]
pub struct OpenInvocations {
    by_trace: Mutex<HashMap<TraceId, Pending>>,
}

impl OpenInvocations {
    /// Marks an invocation of `trace_id` as started (call only for sampled invocations, right
    /// after starting the server span).
    pub fn begin(&self, trace_id: TraceId) {
        let mut open = self.by_trace.lock().unwrap_or_else(|p| p.into_inner());
        open.entry(trace_id).or_default().in_flight += 1;
    }

    /// Holds `span` if its trace has an invocation in flight. Returns the batch to export now:
    /// the span alone when nothing is in flight, everything held when an invocation's segment ends.
    fn hold_or_release(&self, span: SpanData) -> Vec<SpanData> {
        let trace_id = span.span_context.trace_id();
        let is_segment = span.span_kind == SpanKind::Server;
        let mut open = self.by_trace.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pending) = open.get_mut(&trace_id) else {
            return vec![span];
        };
        pending.spans.push(span);
        if !is_segment {
            return Vec::new();
        }
        pending.in_flight = pending.in_flight.saturating_sub(1);
        let batch = std::mem::take(&mut pending.spans);
        if pending.in_flight == 0 {
            open.remove(&trace_id);
        }
        batch
    }

    fn take_all(&self) -> Vec<SpanData> {
        let mut open = self.by_trace.lock().unwrap_or_else(|p| p.into_inner());
        open.drain()
            .flat_map(|(_, pending)| pending.spans)
            .collect()
    }

    /// Invocations in flight (for tests and diagnostics).
    pub fn in_flight(&self) -> usize {
        let open = self.by_trace.lock().unwrap_or_else(|p| p.into_inner());
        open.values().map(|p| p.in_flight as usize).sum()
    }
}

/// The span processor of [`crate::Telemetry`].
#[derive(Debug)]
pub struct InvocationSpanProcessor<S: DaemonSink> {
    exporter: SegmentExporter<S>,
    open: Arc<OpenInvocations>,
}

impl<S: DaemonSink> InvocationSpanProcessor<S> {
    /// A processor exporting through `exporter`, grouping by the invocations in `open`.
    pub fn new(exporter: SegmentExporter<S>, open: Arc<OpenInvocations>) -> Self {
        Self { exporter, open }
    }
}

impl<S: DaemonSink> SpanProcessor for InvocationSpanProcessor<S> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let batch = self.open.hold_or_release(span);
        if !batch.is_empty() {
            self.exporter.export_batch(&batch);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let held = self.open.take_all();
        if !held.is_empty() {
            self.exporter.export_batch(&held);
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut self.exporter, resource);
    }
}
