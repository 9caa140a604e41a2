//! A local run's check of the traffic analytics: every access-log line the stack wrote went
//! through the emulated Firehose and the real transform into exactly one document, and the
//! index's counts by service and status equal the access log's. Also how long after the last
//! line every document was searchable (the lag a person at the dashboard sees).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use local_stack::stack::LocalStack;

use super::{AnalyticsClient, AnalyticsError, SearchAuth, INDEX_PATTERN};
use crate::report::{AnalyticsCheck, ServiceLog};

/// How long to wait for the last documents.
pub const SEARCHABLE_WAIT: Duration = Duration::from_secs(60);

fn client(stack: &LocalStack) -> Result<AnalyticsClient, AnalyticsError> {
    AnalyticsClient::new(&stack.state.search.url, SearchAuth::None)
}

fn lines_written(stack: &LocalStack) -> u64 {
    stack.access_log.counts().values().sum()
}

/// Documents in the indices; none yet is 0.
async fn documents(client: &AnalyticsClient) -> Result<u64, AnalyticsError> {
    match client.count(INDEX_PATTERN).await {
        Err(AnalyticsError::IndexMissing { .. }) => Ok(0),
        other => other,
    }
}

/// Waits until the index holds a document per access-log line written so far; the time it took,
/// or `None` past `wait` (or with analytics off). Call it right after the load stops.
pub async fn time_to_searchable(stack: &LocalStack, wait: Duration) -> Option<Duration> {
    stack.firehose.as_ref()?;
    let client = client(stack).ok()?;
    let started = Instant::now();
    let lines = lines_written(stack);
    while started.elapsed() < wait {
        if documents(&client).await.is_ok_and(|n| n >= lines) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The check, against the access log's lines per service (`access_log`, by status).
pub async fn check(
    stack: &LocalStack,
    access_log: &BTreeMap<String, ServiceLog>,
    lag: Option<Duration>,
) -> Option<AnalyticsCheck> {
    let stream = stack.firehose.as_ref()?;
    let stats = stream.drain(SEARCHABLE_WAIT).await;
    let mut check = AnalyticsCheck {
        received: stats.received,
        indexed: stats.indexed,
        dropped: stats.dropped,
        processing_failed: stats.processing_failed,
        failed_documents: stats.failed_documents,
        invocations: stats.invocations,
        lag_ms: lag.map(|d| d.as_millis() as u64),
        ..AnalyticsCheck::default()
    };
    let lines: u64 = access_log.values().map(|log| log.requests).sum();
    if stats.received != lines {
        check.disagreements.push(format!(
            "the stream received {} records for {lines} access-log lines",
            stats.received
        ));
    }
    if stats.accounted() != stats.received {
        check.disagreements.push(format!(
            "{} of {} records reached no end (indexed, dropped or backed up)",
            stats.received - stats.accounted(),
            stats.received
        ));
    }
    match index_counts(stack).await {
        Ok((total, counts)) => compare(&mut check, access_log, total, counts),
        Err(e) => check.disagreements.push(format!("reading the index: {e}")),
    }
    check.agrees = check.disagreements.is_empty();
    Some(check)
}

type IndexCounts = BTreeMap<String, BTreeMap<String, u64>>;

async fn index_counts(stack: &LocalStack) -> Result<(u64, IndexCounts), AnalyticsError> {
    let client = client(stack)?;
    client.refresh(INDEX_PATTERN).await?;
    let total = documents(&client).await?;
    let mut counts = IndexCounts::new();
    for ((service, status), n) in client.counts_by_service_and_status(INDEX_PATTERN).await? {
        counts
            .entry(service)
            .or_default()
            .insert(status.to_string(), n);
    }
    Ok((total, counts))
}

fn compare(
    check: &mut AnalyticsCheck,
    access_log: &BTreeMap<String, ServiceLog>,
    total: u64,
    counts: IndexCounts,
) {
    check.documents_in_index = total;
    if total != check.indexed {
        check.disagreements.push(format!(
            "the index holds {total} documents; the stream indexed {}",
            check.indexed
        ));
    }
    let logged: IndexCounts = access_log
        .iter()
        .map(|(service, log)| (service.clone(), log.statuses.clone()))
        .collect();
    if counts != logged {
        check.disagreements.push(format!(
            "the index counts {counts:?} by service and status; the access log {logged:?}"
        ));
    }
    check.index_counts = counts;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(statuses: &[(&str, u64)]) -> ServiceLog {
        ServiceLog {
            requests: statuses.iter().map(|(_, n)| n).sum(),
            statuses: statuses
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
        }
    }

    #[test]
    fn the_index_must_hold_the_log_s_counts_exactly() {
        let access_log: BTreeMap<String, ServiceLog> =
            [("order".to_owned(), log(&[("201", 3), ("402", 1)]))].into();
        let same: IndexCounts = [(
            "order".to_owned(),
            [("201".to_owned(), 3), ("402".to_owned(), 1)].into(),
        )]
        .into();
        let mut check = AnalyticsCheck {
            indexed: 4,
            ..AnalyticsCheck::default()
        };
        compare(&mut check, &access_log, 4, same.clone());
        assert!(check.disagreements.is_empty(), "{:?}", check.disagreements);
        assert_eq!((check.documents_in_index, check.index_counts), (4, same));

        let short: IndexCounts = [(
            "order".to_owned(),
            [("201".to_owned(), 2), ("402".to_owned(), 1)].into(),
        )]
        .into();
        let mut check = AnalyticsCheck {
            indexed: 4,
            ..AnalyticsCheck::default()
        };
        compare(&mut check, &access_log, 3, short);
        assert_eq!(check.disagreements.len(), 2, "{:?}", check.disagreements);
        assert!(
            check.disagreements[0].starts_with("the index holds 3 documents; the stream indexed 4")
        );
    }
}
