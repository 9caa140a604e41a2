//! A whole Firehose event into its response: every record answered once, in order, and the
//! response kept under Lambda's payload limit.
//!
//! The size guard works from the end: before a record is given its `Ok` document, the bytes the
//! records after it would need *as failures* (their original data, which they keep) are set
//! aside. So a batch whose documents grow past the limit fails its last records, each with a
//! reason, instead of failing the whole invocation (which Firehose would retry, then send every
//! record to `processing-failed/`).

use aws_lambda_events::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseEventRecord, KinesisFirehoseResponse,
    KinesisFirehoseResponseRecord,
};

use crate::config::ServiceNames;
use crate::decode::{decode, Decoded};
use crate::normalise::normalise;

/// Lambda's limit on a synchronous response: 6 MB.
pub const RESPONSE_LIMIT_BYTES: usize = 6 * 1024 * 1024;

/// Firehose's three results.
pub const OK: &str = "Ok";
/// Dropped on purpose (control messages).
pub const DROPPED: &str = "Dropped";
/// Could not be transformed; Firehose sends it to `processing-failed/`.
pub const PROCESSING_FAILED: &str = "ProcessingFailed";

/// Records by result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Records in the event.
    pub records: u64,
    /// Answered `Ok`.
    pub ok: u64,
    /// Answered `Dropped`.
    pub dropped: u64,
    /// Answered `ProcessingFailed`.
    pub failed: u64,
}

/// A record answered `ProcessingFailed`, and why (the function logs it: Firehose's response has
/// no field for a reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFailure {
    /// The record.
    pub record_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// The response and what it holds.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Firehose's response.
    pub response: KinesisFirehoseResponse,
    /// Counts by result.
    pub counts: BatchCounts,
    /// Every failed record with its reason, in order.
    pub failures: Vec<RecordFailure>,
}

enum Answer {
    Ok(Vec<u8>),
    Dropped,
    Failed(String),
}

fn answer(record: &KinesisFirehoseEventRecord, services: &ServiceNames) -> Answer {
    let entry = match decode(&record.data.0) {
        Ok(Decoded::Entry(entry)) => entry,
        Ok(Decoded::Control) => return Answer::Dropped,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    match normalise(entry, services) {
        // A map of JSON values always serializes.
        Ok(document) => Answer::Ok(serde_json::to_vec(&document).unwrap_or_default()),
        Err(e) => Answer::Failed(e.to_string()),
    }
}

/// Bytes one response record takes in the response JSON, with its separating comma.
fn encoded_size(record_id: Option<&str>, result: &str, data_len: usize) -> usize {
    let id = record_id.map_or(4, |id| serde_json::to_string(id).map_or(0, |s| s.len()));
    // {"recordId":ID,"result":"R","data":"B64","metadata":{"partitionKeys":{}}},
    let fixed = r#"{"recordId":,"result":"","data":"","metadata":{"partitionKeys":{}}},"#.len();
    fixed + id + result.len() + data_len.div_ceil(3) * 4
}

fn response_record(
    record_id: Option<String>,
    result: &str,
    data: Vec<u8>,
) -> KinesisFirehoseResponseRecord {
    let mut out = KinesisFirehoseResponseRecord::default();
    out.record_id = record_id;
    out.result = Some(result.to_owned());
    out.data.0 = data;
    out
}

/// Transforms `event` with a response of at most `limit` bytes (whenever the records' original
/// data fits in it at all: a failed record must carry its data, so that is the floor).
pub fn transform_batch(
    event: &KinesisFirehoseEvent,
    services: &ServiceNames,
    limit: usize,
) -> BatchOutcome {
    let failure_sizes: Vec<usize> = event
        .records
        .iter()
        .map(|r| encoded_size(r.record_id.as_deref(), PROCESSING_FAILED, r.data.0.len()))
        .collect();
    let mut reserved: usize = r#"{"records":[]}"#.len() + failure_sizes.iter().sum::<usize>();
    let mut used = 0;
    let mut counts = BatchCounts {
        records: event.records.len() as u64,
        ..BatchCounts::default()
    };
    let mut records = Vec::with_capacity(event.records.len());
    let mut failures = Vec::new();
    for (record, failure_size) in event.records.iter().zip(failure_sizes) {
        reserved -= failure_size;
        let id = record.record_id.clone();
        let (result, data) = match answer(record, services) {
            Answer::Ok(document) => {
                let size = encoded_size(id.as_deref(), OK, document.len());
                if used + reserved + size <= limit {
                    (OK, document)
                } else {
                    let reason = format!(
                        "the response would pass Lambda's {limit}-byte limit with this document"
                    );
                    failures.push(RecordFailure {
                        record_id: id.clone(),
                        reason,
                    });
                    (PROCESSING_FAILED, record.data.0.clone())
                }
            }
            Answer::Dropped => (DROPPED, Vec::new()),
            Answer::Failed(reason) => {
                failures.push(RecordFailure {
                    record_id: id.clone(),
                    reason,
                });
                (PROCESSING_FAILED, record.data.0.clone())
            }
        };
        used += encoded_size(id.as_deref(), result, data.len());
        match result {
            OK => counts.ok += 1,
            DROPPED => counts.dropped += 1,
            _ => counts.failed += 1,
        }
        records.push(response_record(id, result, data));
    }
    let mut response = KinesisFirehoseResponse::default();
    response.records = records;
    BatchOutcome {
        response,
        counts,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, data: &[u8]) -> KinesisFirehoseEventRecord {
        let mut record = KinesisFirehoseEventRecord::default();
        record.record_id = Some(id.to_owned());
        record.data.0 = data.to_vec();
        record
    }

    #[test]
    fn the_size_estimate_is_the_serialized_size() {
        for (id, result, data) in [
            (
                Some("49546986683135544286507457936321625675700192471156785154"),
                OK,
                vec![b'x'; 10],
            ),
            (Some("a\"b"), PROCESSING_FAILED, vec![0u8; 1]),
            (None, DROPPED, vec![]),
        ] {
            let record = response_record(id.map(str::to_owned), result, data.clone());
            let json = serde_json::to_string(&record).unwrap();
            assert_eq!(
                json.len() + 1,
                encoded_size(id, result, data.len()),
                "{json}"
            );
        }
        let mut response = KinesisFirehoseResponse::default();
        response.records = vec![response_record(Some("1".into()), OK, b"{}".to_vec())];
        assert_eq!(
            serde_json::to_string(&response).unwrap().len(),
            r#"{"records":[]}"#.len() + encoded_size(Some("1"), OK, 2) - 1
        );
    }

    #[test]
    fn documents_past_the_limit_fail_with_their_original_data_and_the_rest_still_fit() {
        // Envelopes are gzip, so their documents outgrow them: the failures fit where the
        // documents do not.
        let envelope = include_bytes!("../tests/fixtures/cloudwatch-logs-envelope.json");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, envelope).unwrap();
        let entry = &encoder.finish().unwrap();
        let mut event = KinesisFirehoseEvent::default();
        event.records = (0..10).map(|i| record(&i.to_string(), entry)).collect();
        let unlimited = transform_batch(&event, &ServiceNames::default(), usize::MAX);
        let full = serde_json::to_string(&unlimited.response).unwrap().len();
        let limit = full - 1;
        let outcome = transform_batch(&event, &ServiceNames::default(), limit);
        let json = serde_json::to_string(&outcome.response).unwrap();
        assert!(json.len() <= limit, "{} > {limit}", json.len());
        assert_eq!(outcome.counts.ok, 9);
        assert_eq!(outcome.counts.failed, 1);
        let last = &outcome.response.records[9];
        assert_eq!(last.result.as_deref(), Some(PROCESSING_FAILED));
        assert_eq!(last.data.0, entry.to_vec());
        assert_eq!(outcome.failures[0].record_id.as_deref(), Some("9"));
        assert!(outcome.failures[0].reason.contains("limit"));
    }
}
