//! Trace ids and sampling decisions that the SDK cannot express on its own.
//!
//! The OpenTelemetry SDK takes a trace id from a valid parent, or makes a new one. A header with
//! `Root` but no `Parent` has no parent span to hand it, so the SDK would start a new trace and
//! break the caller's trace in two. [`with_pinned_root`] pins the trace id (and the sampling
//! decision already taken for it) on the current thread while the server span is started;
//! [`RootPinningIdGenerator`] and [`XraySampler`] read it. Span start is synchronous, so the pin
//! cannot leak to another request. Everything else is `XrayIdGenerator` and the SDK's samplers.

use std::cell::Cell;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::trace::{
    IdGenerator, Sampler, SamplingDecision, SamplingResult, ShouldSample,
};

thread_local! {
    static PINNED_ROOT: Cell<Option<(TraceId, bool)>> = const { Cell::new(None) };
}

/// Runs `start` (which starts one root span) with the trace id and sampling decision pinned.
pub(crate) fn with_pinned_root<R>(
    trace_id: TraceId,
    sampled: bool,
    start: impl FnOnce() -> R,
) -> R {
    struct Unpin;
    impl Drop for Unpin {
        fn drop(&mut self) {
            PINNED_ROOT.with(|p| p.set(None));
        }
    }
    PINNED_ROOT.with(|p| p.set(Some((trace_id, sampled))));
    let _unpin = Unpin;
    start()
}

fn pinned_root() -> Option<(TraceId, bool)> {
    PINNED_ROOT.with(Cell::get)
}

/// `XrayIdGenerator` (epoch-prefixed trace ids), except that a pinned Root is reused.
#[derive(Debug, Default)]
pub struct RootPinningIdGenerator {
    inner: XrayIdGenerator,
}

impl IdGenerator for RootPinningIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        match pinned_root() {
            Some((trace_id, _)) => trace_id,
            None => self.inner.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        self.inner.new_span_id()
    }
}

/// Follows the parent's decision (X-Ray's rule: downstream never re-samples), then a pinned
/// decision, and otherwise samples new traces at `ratio`.
#[derive(Clone, Debug)]
pub struct XraySampler {
    new_trace: Sampler,
}

impl XraySampler {
    /// Samples a fraction `ratio` (0.0–1.0) of the traces this process starts itself.
    pub fn new(ratio: f64) -> Self {
        Self {
            new_trace: Sampler::TraceIdRatioBased(ratio.clamp(0.0, 1.0)),
        }
    }

    /// The decision for a trace that arrives with `Sampled=?` or none at all.
    pub fn decide_new_trace(&self, trace_id: TraceId) -> bool {
        let result = self
            .new_trace
            .should_sample(None, trace_id, "", &SpanKind::Server, &[], &[]);
        matches!(result.decision, SamplingDecision::RecordAndSample)
    }
}

impl ShouldSample for XraySampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let sampled = match (parent.as_ref(), pinned_root()) {
            (Some(parent), _) => parent.is_sampled(),
            (None, Some((pinned, sampled))) if pinned == trace_id => sampled,
            _ => self.decide_new_trace(trace_id),
        };
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_root_is_used_once_and_cleared() {
        let generator = RootPinningIdGenerator::default();
        let pinned = TraceId::from_bytes(42u128.to_be_bytes());
        let got = with_pinned_root(pinned, true, || generator.new_trace_id());
        assert_eq!(got, pinned);
        assert_ne!(generator.new_trace_id(), pinned);
    }

    #[test]
    fn sampler_follows_pin_then_ratio() {
        let never = XraySampler::new(0.0);
        let id = TraceId::from_bytes(7u128.to_be_bytes());
        let decision = |s: &XraySampler| {
            s.should_sample(None, id, "x", &SpanKind::Server, &[], &[])
                .decision
        };
        assert_eq!(decision(&never), SamplingDecision::Drop);
        assert_eq!(
            with_pinned_root(id, true, || decision(&never)),
            SamplingDecision::RecordAndSample
        );
        let always = XraySampler::new(1.0);
        assert_eq!(
            with_pinned_root(id, false, || decision(&always)),
            SamplingDecision::Drop
        );
    }
}
