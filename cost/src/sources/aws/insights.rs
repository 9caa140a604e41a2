//! CloudWatch Logs Insights: the query exchange the log-based sources share ([`Insights`]), and
//! the Lattice access log as a source ([`AwsAccessLog`]).
//!
//! **The exchange.** `StartQuery` over one log group, then `GetQueryResults` polled every
//! [`Insights::with_poll_interval`] until `Complete` (its `nextToken` pages followed);
//! `Failed`, `Cancelled` and `Timeout` are [`SourceError::Answer`]s naming the query, and so is a
//! query still running after [`QUERY_DEADLINE`] (Insights itself stops queries at 60 minutes).
//! Each answer's `statistics.bytesScanned` is kept: Insights bills the bytes it scans, and the
//! report shows them as its own cost.
//!
//! **Windows.** `StartQuery` takes whole epoch seconds, both ends inclusive, so a window that is
//! not second-aligned cannot be said exactly that way: the query is started over the seconds
//! covering the window (`floor(start)` to `ceil(end)`) and its first command keeps exactly the
//! window, `filter toMillis(@timestamp) >= start_ms and toMillis(@timestamp) < end_ms`. Two
//! adjacent windows therefore never share an event.
//!
//! **Row limit.** A query returns at most [`ROW_LIMIT`] rows. [`Insights::query_all`] re-asks a
//! query that returned exactly the limit as the two halves of its window (non-overlapping, by the
//! filter above), down to a single millisecond, so no row is lost; each re-asked half scans its
//! events again, so a window of `n` times the limit costs about `log2(n) + 1` times its bytes
//! scanned, and the discarded full answers are counted in `bytes_scanned` too (they were billed).
//!
//! **The access log** (one log group for the service network, named to [`AwsAccessLog::new`]):
//! [`ACCESS_LOG_QUERY`] counts the entries of each service per clock hour (`bin(1h)` of the
//! event's `@timestamp`, the time CloudWatch Logs holds for the entry; a request straddling an
//! hour may fall in the hour after its `startTime`), with `bytesReceived` and `bytesSent` summed
//! and the entries' own size (`strlen(@message)`, Unicode code points: the entries are ASCII JSON,
//! so bytes). An entry of a service the [`StackMap`] does not know is an error naming its ARN.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use aws_sdk_cloudwatchlogs::Client;
use chrono::NaiveDateTime;

use super::{answer, aws_error, whole_count};
use crate::sources::{AccessLogSource, AccessLogSummary, SourceError, StackMap, Window};
use crate::usage::UsageError;

/// `StartQuery`, for errors.
pub const START_QUERY: &str = "CloudWatchLogs.StartQuery";
/// `GetQueryResults`, for errors.
pub const GET_QUERY_RESULTS: &str = "CloudWatchLogs.GetQueryResults";
/// Rows one query is asked for (the `limit` of `StartQuery`, the most one results page holds).
pub const ROW_LIMIT: usize = 10_000;
/// How often a running query is polled unless told otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a query may run before the adapter gives up on it.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(61 * 60);

/// The access-log query, after the window's filter.
pub const ACCESS_LOG_QUERY: &str = "filter ispresent(serviceArn)\n| stats count(*) as requests, sum(bytesReceived) as bytesIn, sum(bytesSent) as bytesOut, sum(strlen(@message)) as logBytes by serviceArn, bin(1h) as hour";

/// A window in epoch milliseconds, `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Its first millisecond.
    pub start_ms: i64,
    /// The first millisecond after it.
    pub end_ms: i64,
}

impl Span {
    /// `window` in milliseconds.
    pub fn of(window: &Window) -> Self {
        Self {
            start_ms: window.start.timestamp_millis(),
            end_ms: window.end.timestamp_millis(),
        }
    }

    /// Its two halves, `None` for a single millisecond.
    pub fn halves(self) -> Option<(Span, Span)> {
        if self.end_ms - self.start_ms < 2 {
            return None;
        }
        let middle = self.start_ms + (self.end_ms - self.start_ms) / 2;
        Some((
            Span {
                start_ms: self.start_ms,
                end_ms: middle,
            },
            Span {
                start_ms: middle,
                end_ms: self.end_ms,
            },
        ))
    }

    /// `StartQuery`'s inclusive seconds covering it.
    pub fn seconds(self) -> (i64, i64) {
        (
            self.start_ms.div_euclid(1000),
            (self.end_ms + 999).div_euclid(1000),
        )
    }

    /// `body` kept to exactly this span.
    pub fn query(self, body: &str) -> String {
        format!(
            "filter toMillis(@timestamp) >= {} and toMillis(@timestamp) < {}\n| {body}",
            self.start_ms, self.end_ms
        )
    }
}

/// One result row, field → value (`@ptr` left out).
pub type Row = BTreeMap<String, String>;

/// What a query answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Its rows.
    pub rows: Vec<Row>,
    /// `statistics.bytesScanned`.
    pub bytes_scanned: u64,
}

/// Logs Insights over one client.
#[derive(Clone, Debug)]
pub struct Insights {
    client: Client,
    poll: Duration,
}

impl Insights {
    /// Over `client`, polling every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Polling every `poll` instead.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Every row of `body` over `span` in `log_group`: an answer of [`ROW_LIMIT`] rows is
    /// re-asked as two halves (see the module's doc); the bytes of every query are counted.
    pub async fn query_all(
        &self,
        log_group: &str,
        span: Span,
        body: &str,
    ) -> Result<Outcome, SourceError> {
        let mut all = Outcome::default();
        let mut pending = vec![span];
        while let Some(span) = pending.pop() {
            let outcome = self.query(log_group, span, body).await?;
            all.bytes_scanned += outcome.bytes_scanned;
            if outcome.rows.len() < ROW_LIMIT {
                all.rows.extend(outcome.rows);
                continue;
            }
            let (first, second) = span.halves().ok_or_else(|| {
                answer(
                    START_QUERY,
                    format!(
                        "{log_group} has {ROW_LIMIT} or more rows in the millisecond {}",
                        span.start_ms
                    ),
                )
            })?;
            pending.push(second);
            pending.push(first);
        }
        Ok(all)
    }

    /// One query of `body` over `span`, polled to its end.
    pub async fn query(
        &self,
        log_group: &str,
        span: Span,
        body: &str,
    ) -> Result<Outcome, SourceError> {
        let (start, end) = span.seconds();
        let started = self
            .client
            .start_query()
            .log_group_name(log_group)
            .start_time(start)
            .end_time(end)
            .query_string(span.query(body))
            .limit(ROW_LIMIT as i32)
            .send()
            .await
            .map_err(|e| aws_error(START_QUERY, e))?;
        let id = started
            .query_id()
            .ok_or_else(|| answer(START_QUERY, "no queryId"))?;
        self.results(id).await
    }

    /// `id`'s rows once it completes.
    async fn results(&self, id: &str) -> Result<Outcome, SourceError> {
        let deadline = tokio::time::Instant::now() + QUERY_DEADLINE;
        let mut outcome = Outcome::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_id(id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(GET_QUERY_RESULTS, e))?;
            match page.status() {
                Some(QueryStatus::Complete) => {}
                Some(QueryStatus::Running) | Some(QueryStatus::Scheduled) => {
                    if tokio::time::Instant::now() >= deadline {
                        let minutes = QUERY_DEADLINE.as_secs() / 60;
                        let message = format!("query {id} still running after {minutes} minutes");
                        return Err(answer(GET_QUERY_RESULTS, message));
                    }
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                other => return Err(ended(id, other)),
            }
            if let Some(statistics) = page.statistics() {
                let scanned =
                    whole_count(GET_QUERY_RESULTS, "bytesScanned", statistics.bytes_scanned)?;
                outcome.bytes_scanned = outcome.bytes_scanned.max(scanned);
            }
            outcome
                .rows
                .extend(page.results().iter().map(|fields| row(fields)));
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(outcome),
            }
        }
    }
}

fn ended(id: &str, status: Option<&QueryStatus>) -> SourceError {
    let status = status.map_or("no status".to_owned(), |s| s.as_str().to_owned());
    answer(
        GET_QUERY_RESULTS,
        format!("query {id} ended {status}: Logs Insights gave no result"),
    )
}

fn row(fields: &[ResultField]) -> Row {
    fields
        .iter()
        .filter_map(|f| Some((f.field()?.to_owned(), f.value()?.to_owned())))
        .filter(|(field, _)| field != "@ptr")
        .collect()
}

/// `field` of `row`, which must be there.
pub fn field<'r>(row: &'r Row, field: &str) -> Result<&'r str, SourceError> {
    row.get(field)
        .map(String::as_str)
        .ok_or_else(|| answer(GET_QUERY_RESULTS, format!("a row without {field}: {row:?}")))
}

/// `field` of `row` as a count.
pub fn count_field(row: &Row, name: &str) -> Result<u64, SourceError> {
    let text = field(row, name)?;
    let value: f64 = text.parse().map_err(|_| {
        answer(
            GET_QUERY_RESULTS,
            format!("{name} is {text:?}, not a number"),
        )
    })?;
    whole_count(GET_QUERY_RESULTS, name, value)
}

/// The clock hour (epoch seconds / 3600) of a `bin(1h)` value (`2024-08-04 11:00:00.000`).
pub fn bin_hour(text: &str) -> Result<u64, SourceError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .and_then(|time| u64::try_from(time.and_utc().timestamp()).ok())
        .map(|seconds| seconds / 3600)
        .ok_or_else(|| {
            answer(
                GET_QUERY_RESULTS,
                format!("hour {text:?} is not a bin(1h) time"),
            )
        })
}

/// The Lattice access log, from its log group.
#[derive(Clone, Debug)]
pub struct AwsAccessLog {
    insights: Insights,
    log_group: String,
}

impl AwsAccessLog {
    /// The access log in `log_group`, over `client`.
    pub fn new(client: Client, log_group: impl Into<String>) -> Self {
        Self {
            insights: Insights::new(client),
            log_group: log_group.into(),
        }
    }

    /// Polling every `poll` (tests use a millisecond).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.insights = self.insights.with_poll_interval(poll);
        self
    }
}

#[async_trait]
impl AccessLogSource for AwsAccessLog {
    async fn access_log(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<AccessLogSummary, SourceError> {
        let outcome = self
            .insights
            .query_all(&self.log_group, Span::of(window), ACCESS_LOG_QUERY)
            .await?;
        let mut summary = AccessLogSummary {
            services: stack
                .services
                .iter()
                .map(|s| (s.name.clone(), Default::default()))
                .collect(),
            bytes_scanned: outcome.bytes_scanned,
        };
        for row in &outcome.rows {
            add_row(&mut summary, stack, row)?;
        }
        Ok(summary)
    }
}

/// One `serviceArn, hour` row into its service's usage.
fn add_row(summary: &mut AccessLogSummary, stack: &StackMap, row: &Row) -> Result<(), SourceError> {
    let arn = field(row, "serviceArn")?;
    let service = stack
        .by_arn(arn)
        .ok_or_else(|| UsageError::UnknownService {
            arn: arn.to_owned(),
            known: stack.names(),
        })?;
    let usage = summary.services.entry(service.name.clone()).or_default();
    let hour = bin_hour(field(row, "hour")?)?;
    *usage.requests_by_hour.entry(hour).or_default() += count_field(row, "requests")?;
    usage.bytes_in += count_field(row, "bytesIn")?;
    usage.bytes_out += count_field(row, "bytesOut")?;
    usage.log_bytes += count_field(row, "logBytes")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_halve_without_overlap_and_cover_their_seconds() {
        let span = Span {
            start_ms: 1_000_250,
            end_ms: 1_010_500,
        };
        assert_eq!(span.seconds(), (1_000, 1_011));
        let (first, second) = span.halves().unwrap();
        assert_eq!((first.start_ms, first.end_ms), (1_000_250, 1_005_375));
        assert_eq!((second.start_ms, second.end_ms), (1_005_375, 1_010_500));
        let whole = Span {
            start_ms: 2_000_000,
            end_ms: 3_000_000,
        };
        assert_eq!(whole.seconds(), (2_000, 3_000));
        let one = Span {
            start_ms: 5,
            end_ms: 6,
        };
        assert_eq!(one.halves(), None);
        assert_eq!(
            one.query("stats count(*)"),
            "filter toMillis(@timestamp) >= 5 and toMillis(@timestamp) < 6\n| stats count(*)"
        );
    }

    #[test]
    fn bin_hours_are_clock_hours_since_the_epoch() {
        assert_eq!(bin_hour("1970-01-02 03:00:00.000").unwrap(), 27);
        assert_eq!(
            bin_hour("2026-12-02 10:00:00").unwrap(),
            1_796_205_600 / 3600
        );
        assert!(bin_hour("2026-12-02T10:00:00Z").is_err());
    }
}
