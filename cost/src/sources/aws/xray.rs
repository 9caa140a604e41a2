//! The traces recorded, from X-Ray's `GetTraceSummaries` (REST-JSON, `POST /TraceSummaries`).
//! The same adapter serves the local stack, whose X-Ray API speaks this protocol
//! (`infra/local/src/xray/api.rs`: it reads `StartTime`, `EndTime`, `FilterExpression` and
//! `NextToken`, and answers `TraceSummaries`, `TracesProcessedCount`, `NextToken`).
//!
//! - `TimeRangeType` is `TraceId`: a trace is found by its start time, which it has exactly one
//!   of, so windows that follow each other never find a trace twice (`Event`, the trace's update
//!   time, moves while segments arrive). The local API selects by start time as well.
//! - With a run id, `FilterExpression` is `annotation.run_id = "<id>"` (loadgen annotates every
//!   trace of a run); a run id holding `"` or `\` cannot be written in an expression and is an
//!   error. Without one, each of the stack's functions is asked with `service("<function>")` and
//!   the ids united, so the account's other traces are not counted (the local API takes no `OR`).
//! - Pages are followed through `NextToken`; a window longer than [`MAX_SPAN`] is asked as
//!   consecutive spans of at most that length. X-Ray's API reference for `GetTraceSummaries`
//!   states no per-call limit on the time range, so the span is a conservative choice of this
//!   adapter: a shorter span costs calls, never traces (scans are billed per trace).
//! - `traces_scanned` sums `TracesProcessedCount`, the traces X-Ray looked at, matched or not:
//!   what its retrieval price applies to.
//! - With a run id, the run's traces are then read (`BatchGetTraces`, `POST /Traces`, five ids a
//!   call, every page) for the Lambda trace id each service segment recorded
//!   (`metadata.lambda.trace_id`, `Root=…;Parent=…;Sampled=…`), which the functions' `REPORT`
//!   lines name: the join of an invocation to its order. Those traces count as retrieved too.

use async_trait::async_trait;
use aws_sdk_xray::types::TimeRangeType;
use aws_sdk_xray::Client;
use chrono::{DateTime, TimeDelta, Utc};

use super::{answer, aws_error, smithy_time, whole_count};
use crate::sources::{SourceError, StackMap, TraceCount, TraceSource, Window};

/// The operation, for errors.
pub const OPERATION: &str = "XRay.GetTraceSummaries";

/// The operation that reads traces, for errors.
pub const BATCH_OPERATION: &str = "XRay.BatchGetTraces";

/// Trace ids one `BatchGetTraces` call takes (the API reference's limit).
pub const BATCH_SIZE: usize = 5;

/// The longest time range one call is asked about.
pub const MAX_SPAN: TimeDelta = TimeDelta::hours(6);

/// X-Ray's traces.
#[derive(Clone, Debug)]
pub struct XrayTraces {
    client: Client,
}

impl XrayTraces {
    /// Over `client` (X-Ray's, or the local API's through `endpoint_url`).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The traces of `[start, end)`, every page.
    async fn span(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        filter: Option<&str>,
        count: &mut TraceCount,
    ) -> Result<(), SourceError> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_trace_summaries()
                .start_time(smithy_time(start))
                .end_time(smithy_time(end))
                .time_range_type(TimeRangeType::TraceId)
                .set_filter_expression(filter.map(str::to_owned))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(OPERATION, e))?;
            let processed = page
                .traces_processed_count()
                .ok_or_else(|| answer(OPERATION, "the answer has no TracesProcessedCount"))?;
            count.traces_scanned +=
                whole_count(OPERATION, "TracesProcessedCount", processed as f64)?;
            for summary in page.trace_summaries() {
                let id = summary
                    .id()
                    .ok_or_else(|| answer(OPERATION, "a trace summary without an Id"))?;
                count.trace_ids.insert(id.to_owned());
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(()),
            }
        }
    }
}

/// The filter expression of `run_id`.
pub fn run_filter(run_id: &str) -> Result<String, SourceError> {
    if run_id.contains(['"', '\\']) {
        return Err(answer(
            OPERATION,
            format!("the run id {run_id:?} cannot be quoted in a filter expression"),
        ));
    }
    Ok(format!("annotation.run_id = \"{run_id}\""))
}

/// `window` as consecutive spans of at most [`MAX_SPAN`].
pub fn spans(window: &Window) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut spans = Vec::new();
    let mut start = window.start;
    while start < window.end {
        let end = (start + MAX_SPAN).min(window.end);
        spans.push((start, end));
        start = end;
    }
    spans
}

impl XrayTraces {
    /// Reads the counted traces for the Lambda trace ids their segments recorded.
    async fn lambda_traces(&self, count: &mut TraceCount) -> Result<(), SourceError> {
        let ids: Vec<String> = count.trace_ids.iter().cloned().collect();
        for batch in ids.chunks(BATCH_SIZE) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .batch_get_traces()
                    .set_trace_ids(Some(batch.to_vec()))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(BATCH_OPERATION, e))?;
                for trace in page.traces() {
                    count.traces_scanned += 1;
                    for segment in trace.segments() {
                        if let Some(root) = segment.document().and_then(lambda_trace_root) {
                            count.lambda_trace_ids.insert(root);
                        }
                    }
                }
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

/// The root of `metadata.lambda.trace_id` in a segment document, if it holds one.
fn lambda_trace_root(document: &str) -> Option<String> {
    let document: serde_json::Value = serde_json::from_str(document).ok()?;
    crate::usage::trace_root(document["metadata"]["lambda"]["trace_id"].as_str()?)
}

#[async_trait]
impl TraceSource for XrayTraces {
    async fn traces(
        &self,
        stack: &StackMap,
        window: &Window,
        run_id: Option<&str>,
    ) -> Result<TraceCount, SourceError> {
        let filters = match run_id {
            Some(run_id) => vec![run_filter(run_id)?],
            None => service_filters(stack)?,
        };
        let mut count = TraceCount::default();
        for filter in &filters {
            for (start, end) in spans(window) {
                self.span(start, end, Some(filter), &mut count).await?;
            }
        }
        if run_id.is_some() {
            self.lambda_traces(&mut count).await?;
        }
        Ok(count)
    }
}

/// Without a run id, the traces through each of the stack's functions, one filter each
/// (`service("<function>")`: X-Ray names a function's segments after it, and Lambda's own
/// segments too), their ids united: an account's other traces are not the stack's.
pub fn service_filters(stack: &StackMap) -> Result<Vec<String>, SourceError> {
    stack
        .services
        .iter()
        .map(|service| {
            let name = &service.function_name;
            if name.contains(['"', '\\']) {
                return Err(answer(
                    OPERATION,
                    format!("the function name {name:?} cannot be quoted in a filter expression"),
                ));
            }
            Ok(format!("service(\"{name}\")"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_split_into_spans_of_at_most_six_hours() {
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 2, h, 0, 0).unwrap();
        let window = Window::new(at(0), at(13)).unwrap();
        assert_eq!(
            spans(&window),
            vec![(at(0), at(6)), (at(6), at(12)), (at(12), at(13))]
        );
        let short = Window::new(at(1), at(2)).unwrap();
        assert_eq!(spans(&short), vec![(at(1), at(2))]);
        assert_eq!(
            run_filter("run-42").unwrap(),
            "annotation.run_id = \"run-42\""
        );
        assert!(run_filter("a\\b").is_err());
    }

    #[test]
    fn the_lambda_trace_a_segment_recorded_is_read_from_its_metadata() {
        let document = r#"{"id":"0cb7d39b93b3ebc4","name":"inventory","metadata":{"lambda":{"trace_id":"Root=1-6b1034a0-325542959ca5a64895009736;Parent=b164dad36d513da3;Sampled=0"}}}"#;
        assert_eq!(
            lambda_trace_root(document).as_deref(),
            Some("1-6b1034a0-325542959ca5a64895009736")
        );
        assert_eq!(lambda_trace_root(r#"{"id":"a","metadata":{}}"#), None);
        assert_eq!(lambda_trace_root("not json"), None);
    }
}
