//! Firehose's side of the data-transformation contract: the event it sends the function, and the
//! checks it makes of the answer (Firehose guide, "Data transformation and status model", and the
//! error codes of "Monitoring with CloudWatch Logs" → data transformation errors).
//!
//! A response that breaks the contract fails the whole invocation with Firehose's error code;
//! the stream then retries the invocation and, when the retries are spent, sends every record of
//! the batch to `processing-failed/`.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{json, Value};

/// One record of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Firehose's id for it.
    pub record_id: String,
    /// When it reached the stream, epoch milliseconds.
    pub arrival_ms: u64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What the function answered for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Transformed: the document.
    Ok(Vec<u8>),
    /// Dropped on purpose.
    Dropped,
    /// Not transformed: `ProcessingFailed`, or any result other than `Ok` and `Dropped` (the
    /// status model counts those as unsuccessfully processed). Firehose backs up the record's
    /// original data, not what the function returned.
    ProcessingFailed,
}

/// Why an invocation failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct InvocationError {
    /// Firehose's error code (`Lambda.MissingRecordId`, …).
    pub code: String,
    /// The message Firehose logs and writes to `processing-failed/`.
    pub message: String,
}

impl InvocationError {
    /// An error with Firehose's code.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The event Firehose sends (Direct PUT source: no `kinesisRecordMetadata`).
pub fn event(invocation_id: &str, stream_arn: &str, region: &str, records: &[Record]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "recordId": r.record_id,
                "approximateArrivalTimestamp": r.arrival_ms,
                "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
            })
        })
        .collect();
    json!({
        "invocationId": invocation_id,
        "deliveryStreamArn": stream_arn,
        "region": region,
        "records": records,
    })
}

fn malformed(why: impl std::fmt::Display) -> InvocationError {
    InvocationError::new(
        "Lambda.JsonProcessingException",
        format!("The response from the Lambda function could not be parsed: {why}"),
    )
}

fn answer_of(record: &Value) -> Result<(String, Answer), InvocationError> {
    let id = record["recordId"]
        .as_str()
        .ok_or_else(|| malformed("a record has no recordId"))?;
    let result = record["result"]
        .as_str()
        .ok_or_else(|| malformed(format!("record {id} has no result")))?;
    let data = match record.get("data") {
        Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| malformed(format!("record {id}: data is not base64")))?,
        None | Some(Value::Null) if result == "Dropped" => Vec::new(),
        _ => return Err(malformed(format!("record {id} has no data"))),
    };
    let answer = match result {
        "Ok" => Answer::Ok(data),
        "Dropped" => Answer::Dropped,
        _ => Answer::ProcessingFailed,
    };
    Ok((id.to_owned(), answer))
}

/// Checks the function's `payload` against the batch it was given: every record id exactly once.
/// Answers come back in the batch's order.
pub fn check_response(records: &[Record], payload: &[u8]) -> Result<Vec<Answer>, InvocationError> {
    let response: Value = serde_json::from_slice(payload).map_err(malformed)?;
    let answered = response["records"]
        .as_array()
        .ok_or_else(|| malformed("`records` is not a list"))?;
    let expected: HashSet<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    let mut by_id = std::collections::HashMap::new();
    for record in answered {
        let (id, answer) = answer_of(record)?;
        if !expected.contains(id.as_str()) {
            return Err(InvocationError::new(
                "Lambda.MissingRecordId",
                format!("record {id} was not in the batch"),
            ));
        }
        if by_id.insert(id.clone(), answer).is_some() {
            return Err(InvocationError::new(
                "Lambda.DuplicatedRecordId",
                format!("multiple records were returned with the same record id {id}"),
            ));
        }
    }
    records
        .iter()
        .map(|r| {
            by_id.remove(&r.record_id).ok_or_else(|| {
                InvocationError::new(
                    "Lambda.MissingRecordId",
                    format!(
                        "one or more record ids were not returned, e.g. {}",
                        r.record_id
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<Record> {
        ["a", "b"]
            .iter()
            .map(|id| Record {
                record_id: (*id).to_owned(),
                arrival_ms: 1,
                data: b"{}".to_vec(),
            })
            .collect()
    }

    fn check(response: Value) -> Result<Vec<Answer>, InvocationError> {
        check_response(&batch(), response.to_string().as_bytes())
    }

    fn code(response: Value) -> String {
        check(response).unwrap_err().code
    }

    #[test]
    fn answers_come_back_in_the_batch_s_order() {
        let answers = check(json!({"records": [
            {"recordId": "b", "result": "Dropped", "data": ""},
            {"recordId": "a", "result": "Ok", "data": "e30=", "metadata": {"partitionKeys": {}}},
        ]}))
        .unwrap();
        assert_eq!(answers, [Answer::Ok(b"{}".to_vec()), Answer::Dropped]);
    }

    #[test]
    fn contract_breaks_get_firehose_s_error_codes() {
        let ok = |id: &str| json!({"recordId": id, "result": "Ok", "data": "e30="});
        assert_eq!(
            code(json!({"records": [ok("a")]})),
            "Lambda.MissingRecordId"
        );
        assert_eq!(
            code(json!({"records": [ok("a"), ok("b"), ok("c")]})),
            "Lambda.MissingRecordId"
        );
        assert_eq!(
            code(json!({"records": [ok("a"), ok("a"), ok("b")]})),
            "Lambda.DuplicatedRecordId"
        );
        assert_eq!(
            code(json!({"records": "x"})),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(json!({"records": [{"recordId": "a", "result": "Ok"}, ok("b")]})),
            "Lambda.JsonProcessingException"
        );
        let odd = check(
            json!({"records": [{"recordId": "a", "result": "TRANSFORMED_STATE_OK", "data": ""}, ok("b")]}),
        );
        assert_eq!(odd.unwrap()[0], Answer::ProcessingFailed);
        let garbage = check_response(&batch(), b"not json").unwrap_err();
        assert_eq!(garbage.code, "Lambda.JsonProcessingException");
    }

    #[test]
    fn the_event_is_firehose_s_shape() {
        let event = event(
            "inv",
            "arn:aws:firehose:r:1:deliverystream/s",
            "r",
            &batch()[..1],
        );
        assert_eq!(
            event,
            json!({"invocationId": "inv", "deliveryStreamArn": "arn:aws:firehose:r:1:deliverystream/s",
                "region": "r", "records": [{"recordId": "a", "approximateArrivalTimestamp": 1, "data": "e30="}]})
        );
    }
}
