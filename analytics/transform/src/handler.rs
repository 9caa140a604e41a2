//! One invocation: the batch, its X-Ray segment (annotations `records`, `ok`, `dropped`,
//! `failed`, so `annotation.failed > 0` finds the batches with failures), and one log line per
//! failed record with its reason (Firehose's response has no field for one; its guide points to
//! the function's own logs).

use aws_lambda_events::firehose::KinesisFirehoseEvent;
use lattice_xray::{annotate, record_metadata, AnnotationKey, Invocation, Telemetry};
use serde_json::{json, Value};

use crate::batch::{transform_batch, BatchOutcome, RESPONSE_LIMIT_BYTES};
use crate::config::{Fault, TransformConfig};

/// Records in the batch.
pub const RECORDS: AnnotationKey = AnnotationKey::from_static("records");
/// Answered `Ok`.
pub const OK: AnnotationKey = AnnotationKey::from_static("ok");
/// Answered `Dropped`.
pub const DROPPED: AnnotationKey = AnnotationKey::from_static("dropped");
/// Answered `ProcessingFailed`.
pub const FAILED: AnnotationKey = AnnotationKey::from_static("failed");
/// Failure reasons kept in the segment's metadata (all of them are logged).
pub const REASONS_IN_METADATA: usize = 20;

/// The function: configuration and telemetry, shared by every invocation.
#[derive(Clone, Debug)]
pub struct Transform {
    config: TransformConfig,
    telemetry: Telemetry,
}

impl Transform {
    /// The function over its configuration.
    pub fn new(config: TransformConfig, telemetry: Telemetry) -> Self {
        Self { config, telemetry }
    }

    /// Answers one event. `lambda_trace_id` is `Context.xray_trace_id`.
    pub fn handle(&self, event: &KinesisFirehoseEvent, lambda_trace_id: Option<&str>) -> Value {
        let invocation = Invocation::start_event(
            &self.telemetry,
            self.telemetry.service_name(),
            lambda_trace_id,
        );
        let outcome = {
            let _guard = invocation.context().clone().attach();
            let outcome = transform_batch(event, &self.config.services, RESPONSE_LIMIT_BYTES);
            record(event, &outcome);
            outcome
        };
        invocation.finish_event(None);
        let response = serde_json::to_value(&outcome.response).unwrap_or_else(|_| json!({}));
        match self.config.fault {
            Some(fault) => commit(fault, response),
            None => response,
        }
    }
}

fn record(event: &KinesisFirehoseEvent, outcome: &BatchOutcome) {
    let counts = outcome.counts;
    for (key, value) in [
        (&RECORDS, counts.records),
        (&OK, counts.ok),
        (&DROPPED, counts.dropped),
        (&FAILED, counts.failed),
    ] {
        annotate(key, i64::try_from(value).unwrap_or(i64::MAX));
    }
    let reasons: Vec<Value> = outcome
        .failures
        .iter()
        .take(REASONS_IN_METADATA)
        .map(|f| json!({"recordId": f.record_id, "reason": f.reason}))
        .collect();
    record_metadata(
        "firehose",
        json!({
            "invocationId": event.invocation_id,
            "deliveryStreamArn": event.delivery_stream_arn,
            "failures": reasons,
        }),
    );
    for failure in &outcome.failures {
        tracing::warn!(
            record_id = failure.record_id.as_deref().unwrap_or(""),
            reason = %failure.reason,
            "record answered ProcessingFailed"
        );
    }
    tracing::info!(
        records = counts.records,
        ok = counts.ok,
        dropped = counts.dropped,
        failed = counts.failed,
        "batch transformed"
    );
}

/// Breaks the contract as `fault` says (test-only; see [`Fault`]).
fn commit(fault: Fault, mut response: Value) -> Value {
    let Some(records) = response.get_mut("records").and_then(Value::as_array_mut) else {
        return response;
    };
    match fault {
        Fault::OmitRecord => {
            records.pop();
        }
        Fault::DuplicateRecord => {
            if let Some(first) = records.first().cloned() {
                records.insert(1, first);
            }
        }
        Fault::MalformedResponse => return json!({"records": "not a list"}),
    }
    response
}
