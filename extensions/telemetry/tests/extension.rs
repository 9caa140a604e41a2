//! The events processor over a scripted backend, in paused time: when INVOKE starts a flush, that
//! it never waits for one (the flush runs beside the function), one flush in flight at a time,
//! the breaker between invocations, and the shutdown's waits (the last report, the flush in
//! flight) before its final flush.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use opensearch_telemetry::config::Indices;
use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::dispatch::Dispatcher;
use opensearch_telemetry::extension::{Parts, TelemetryExtension};
use opensearch_telemetry::intake::Intake;
use opensearch_telemetry::queue::PostQueue;
use opensearch_telemetry::say::OnceLog;
use opensearch_telemetry::templates::{self, Installer};
use tokio::time::Instant;

const NOW_MS: u64 = 1_800_000_000_000;

struct Harness {
    extension: Arc<TelemetryExtension>,
    queue: Arc<PostQueue>,
    counters: Arc<Counters>,
}

fn harness(backend: Option<Arc<Scripted>>, min_batch_events: usize) -> Harness {
    let counters = Arc::new(Counters::new());
    let queue = Arc::new(PostQueue::new(8 * 1024 * 1024, Arc::clone(&counters)));
    let dispatcher = backend.map(|backend| {
        let installer = Installer::new(templates::all(&Indices::default()));
        Dispatcher::new(
            backend,
            installer,
            Arc::clone(&counters),
            Arc::new(OnceLog::new()),
            1,
        )
    });
    let extension = TelemetryExtension::new(Parts {
        queue: Arc::clone(&queue),
        counters: Arc::clone(&counters),
        intake: Intake::new(context(), Arc::clone(&counters)),
        queue_max_events: 10_000,
        dispatcher,
        min_batch_events,
        dispatch_timeout: Duration::from_millis(1000),
        subscribed: true,
    });
    Harness {
        extension: Arc::new(extension),
        queue,
        counters,
    }
}

fn push(queue: &PostQueue, body: Vec<u8>) {
    queue.push(Bytes::from(body));
}

#[tokio::test(start_paused = true)]
async fn invoke_flushes_only_once_enough_events_wait() {
    let backend = Scripted::new(vec![]);
    let h = harness(Some(Arc::clone(&backend)), 5);
    push(&h.queue, function_lines(3));
    h.extension.on_invoke("req-1").await;
    assert!(
        backend.bulk_calls().is_empty(),
        "3 events < DISPATCH_MIN_BATCH_SIZE 5"
    );
    assert_eq!(h.extension.pending_len().await, 3);
    // Counted in events, not POSTs: two more in one POST reach the minimum.
    push(&h.queue, function_lines(2));
    h.extension.on_invoke("req-2").await;
    h.extension.settled().await;
    assert_eq!(backend.bulk_calls().len(), 1);
    assert_eq!(backend.bulk_calls()[0].bulk_ids().len(), 5);
    assert_eq!(h.extension.pending_len().await, 0);
}

#[tokio::test(start_paused = true)]
async fn invoke_never_waits_for_its_flush_which_the_dispatch_timeout_bounds() {
    let backend = Scripted::new(vec![Answer::Hang, Answer::Hang]);
    let h = harness(Some(Arc::clone(&backend)), 1);
    push(&h.queue, function_lines(1));
    let started = Instant::now();
    h.extension.on_invoke("req-1").await;
    assert_eq!(started.elapsed(), Duration::ZERO, "next is not held");
    assert!(h.extension.flushing().await);
    h.extension.settled().await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(1000),
        "DISPATCH_TIMEOUT_MS"
    );
    assert_eq!(h.extension.pending_len().await, 1, "kept for later");
    // The breaker is open for 1 s: the next invocations do not try.
    h.extension.on_invoke("req-2").await;
    assert!(!h.extension.flushing().await);
    assert_eq!(backend.bulk_calls().len(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    let started = Instant::now();
    h.extension.on_invoke("req-3").await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    h.extension.settled().await;
    assert_eq!(started.elapsed(), Duration::from_millis(1000));
    assert_eq!(backend.bulk_calls().len(), 2);
    assert_eq!(h.extension.pending_len().await, 1, "kept for later");
}

#[tokio::test(start_paused = true)]
async fn one_flush_is_in_flight_at_a_time_and_what_waits_goes_in_the_next() {
    let backend = Scripted::new(vec![Answer::Hang]);
    let h = harness(Some(Arc::clone(&backend)), 1);
    push(&h.queue, function_lines(2));
    h.extension.on_invoke("req-1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    push(&h.queue, function_lines(3));
    h.extension.on_invoke("req-2").await;
    assert_eq!(
        backend.bulk_calls().len(),
        1,
        "the first is still in flight"
    );
    assert_eq!(h.extension.pending_len().await, 3);
    // The first ends unshipped at its timeout; the next INVOKE takes its 2 back, oldest first,
    // and ships all 5 with their same ids.
    // (It ends at 1 s and opens the breaker for 1 s.)
    tokio::time::sleep(Duration::from_millis(2000)).await;
    h.extension.on_invoke("req-3").await;
    h.extension.settled().await;
    let bulks = backend.bulk_calls();
    assert_eq!(bulks.len(), 2);
    let (first, second) = (bulks[0].bulk_ids(), bulks[1].bulk_ids());
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 5);
    assert_eq!(second[..2], first[..], "retried first, under the same _ids");
    assert_eq!(h.extension.pending_len().await, 0);
    assert_eq!(h.counters.summary().shipped, 5);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_last_report_then_flushes_everything() {
    let backend = Scripted::new(vec![]);
    let h = harness(Some(Arc::clone(&backend)), 1000);
    push(&h.queue, function_lines(2));
    h.extension.on_invoke("req-last").await;
    let queue = Arc::clone(&h.queue);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        push(&queue, post(&[report("req-earlier")]));
        tokio::time::sleep(Duration::from_millis(30)).await;
        push(&queue, post(&[report("req-last")]));
        // What the function printed after its response comes after the report.
        tokio::time::sleep(Duration::from_millis(20)).await;
        push(&queue, function_lines(1));
    });
    let started = Instant::now();
    let summary = h.extension.on_shutdown(NOW_MS + 2000, NOW_MS).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(90) + opensearch_telemetry::shutdown::QUIET_GAP,
        "woken by the report, then until the listener is quiet: no fixed wait"
    );
    let bulks = backend.bulk_calls();
    assert_eq!(bulks.len(), 1);
    let sources = bulks[0].bulk_sources();
    let last = sources.last().unwrap();
    assert_eq!(
        last["message"].as_str().map(|m| m.is_empty()),
        Some(false),
        "the line after the report is shipped too: {last}"
    );
    assert!(sources
        .iter()
        .any(|s| s["type"] == "platform.report" && s["requestId"] == "req-last"));
    assert_eq!(sources.len(), 5);
    assert_eq!(
        (summary.events, summary.shipped, summary.dropped_events),
        (5, 5, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_waiting_at_its_bound_and_keeps_most_time_for_the_flush() {
    let backend = Scripted::new(vec![Answer::Hang]);
    let h = harness(Some(Arc::clone(&backend)), 1000);
    push(&h.queue, function_lines(2));
    h.extension.on_invoke("req-1").await;
    let started = Instant::now();
    let summary = h.extension.on_shutdown(NOW_MS + 1000, NOW_MS).await;
    // 40 % of 1000 ms waiting, then the flush until the deadline less 100 ms.
    let bulk = &backend.bulk_calls()[0];
    assert_eq!(bulk.timeout, Duration::from_millis(500));
    assert_eq!(started.elapsed(), Duration::from_millis(900));
    assert_eq!(
        (summary.shipped, summary.dropped_events),
        (0, 2),
        "unshipped at exit: dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_ignores_an_open_breaker() {
    let backend = Scripted::new(vec![Answer::Hang]);
    let h = harness(Some(Arc::clone(&backend)), 1);
    push(&h.queue, function_lines(1));
    h.extension.on_invoke("req-1").await;
    push(&h.queue, post(&[report("req-1")]));
    let summary = h.extension.on_shutdown(NOW_MS + 2000, NOW_MS).await;
    assert_eq!(backend.bulk_calls().len(), 2);
    assert_eq!(summary.shipped, 2);
}

#[tokio::test(start_paused = true)]
async fn without_a_url_records_are_counted_and_nothing_waits() {
    let h = harness(None, 1);
    push(&h.queue, function_lines(3));
    h.extension.on_invoke("req-1").await;
    assert_eq!(h.extension.pending_len().await, 0);
    let started = Instant::now();
    let summary = h.extension.on_shutdown(NOW_MS + 2000, NOW_MS).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(
        (
            summary.posts,
            summary.events,
            summary.shipped,
            summary.dropped_events
        ),
        (1, 3, 0, 0)
    );
    let _ = &h.counters;
}
