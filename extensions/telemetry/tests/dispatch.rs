//! Flushes against a scripted backend, in paused time: item outcomes and their exact counts,
//! retries with the same `_id`s, the deadline, the breaker, and template installation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use http::Method;
use opensearch_telemetry::config::Indices;
use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::dispatch::{Breaker, Dispatcher, Flushed};
use opensearch_telemetry::documents::Document;
use opensearch_telemetry::intake::Intake;
use opensearch_telemetry::pending::Pending;
use opensearch_telemetry::say::OnceLog;
use opensearch_telemetry::templates::{self, Installer};
use tokio::time::Instant;

struct Setup {
    dispatcher: Dispatcher,
    counters: Arc<Counters>,
    log: Arc<OnceLog>,
}

fn setup(backend: Arc<Scripted>) -> Setup {
    let counters = Arc::new(Counters::new());
    let log = Arc::new(OnceLog::new());
    let installer = Installer::new(templates::all(&Indices::default()));
    let dispatcher = Dispatcher::new(
        backend,
        installer,
        Arc::clone(&counters),
        Arc::clone(&log),
        7,
    );
    Setup {
        dispatcher,
        counters,
        log,
    }
}

fn pending_lines(n: usize) -> Pending {
    let mut pending = Pending::new(10_000);
    Intake::new(context(), Arc::new(Counters::new())).ingest(
        &function_lines(n),
        &mut pending,
        Utc::now(),
    );
    pending
}

fn ids(pending: &Pending) -> Vec<String> {
    pending.iter().map(|d: &Document| d.id.clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn mixed_item_statuses_give_exact_counts_and_retries_reuse_the_ids() {
    let backend = Scripted::new(vec![Answer::Reply(200, BULK_MIXED.into())]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(4);
    let sent = ids(&pending);
    let flushed = setup
        .dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(1))
        .await;
    assert_eq!(
        flushed,
        Flushed {
            shipped: 3,
            retried: 2,
            failed: 1,
            left: 0
        }
    );
    let bulks = backend.bulk_calls();
    assert_eq!(bulks.len(), 2);
    assert_eq!(bulks[0].bulk_ids(), sent);
    // The 429 and the 503 items, again, under the same ids.
    assert_eq!(bulks[1].bulk_ids(), [sent[1].clone(), sent[3].clone()]);
    let summary = setup.counters.summary();
    assert_eq!(
        (summary.shipped, summary.retried, summary.failed),
        (3, 2, 1)
    );
    assert!(pending.is_empty());
    assert_eq!(setup.log.kinds(), ["item 400"]);
    assert!(setup.dispatcher.breaker().allows(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn whole_request_503_and_connection_errors_are_retried_within_the_deadline() {
    let backend = Scripted::new(vec![
        Answer::Reply(503, "busy".into()),
        Answer::Unreachable,
        Answer::Items(201),
    ]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(3);
    let sent = ids(&pending);
    let flushed = setup
        .dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(1))
        .await;
    assert_eq!(
        flushed,
        Flushed {
            shipped: 3,
            retried: 6,
            failed: 0,
            left: 0
        }
    );
    let bulks = backend.bulk_calls();
    assert_eq!(bulks.len(), 3);
    assert!(bulks.iter().all(|call| call.bulk_ids() == sent));
    assert_eq!(setup.log.kinds(), ["bulk 503", "bulk unreachable"]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_fails_its_documents_once_and_for_all() {
    let backend = Scripted::new(vec![Answer::Reply(403, r#"{"message":"denied"}"#.into())]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(5);
    let flushed = setup
        .dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(1))
        .await;
    assert_eq!(
        flushed,
        Flushed {
            shipped: 0,
            retried: 0,
            failed: 5,
            left: 0
        }
    );
    assert_eq!(backend.bulk_calls().len(), 1);
    assert_eq!(setup.log.kinds(), ["bulk 403"]);
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_never_answers_costs_one_bounded_flush_and_opens_the_breaker() {
    let backend = Scripted::new(vec![Answer::Hang]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(4);
    let sent = ids(&pending);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(800);
    let flushed = setup.dispatcher.flush(&mut pending, deadline).await;
    assert_eq!(Instant::now(), deadline, "no later than the deadline");
    assert_eq!(
        flushed,
        Flushed {
            shipped: 0,
            retried: 0,
            failed: 0,
            left: 4
        }
    );
    assert_eq!(ids(&pending), sent, "left for the next flush");
    let bulk = &backend.bulk_calls()[0];
    assert!(bulk.timeout <= Duration::from_millis(800));
    let breaker = setup.dispatcher.breaker();
    assert!(!breaker.allows(Instant::now()));
    assert_eq!(breaker.open_until(), Some(deadline + Breaker::FIRST_WAIT));
}

#[tokio::test(start_paused = true)]
async fn items_still_failing_at_the_deadline_stay_queued_in_order() {
    let answers = (0..100).map(|_| Answer::Items(429)).collect();
    let backend = Scripted::new(answers);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(3);
    let sent = ids(&pending);
    let started = Instant::now();
    let flushed = setup
        .dispatcher
        .flush(&mut pending, started + Duration::from_secs(1))
        .await;
    assert!(Instant::now() <= started + Duration::from_secs(1));
    assert_eq!((flushed.shipped, flushed.failed, flushed.left), (0, 0, 3));
    assert_eq!(flushed.retried, 3 * (backend.bulk_calls().len() - 1));
    assert!(backend.bulk_calls().len() >= 2, "retried at least once");
    assert_eq!(ids(&pending), sent);
    assert_eq!(setup.counters.summary().retried as usize, flushed.retried);
}

#[test]
fn the_breaker_waits_one_second_doubling_to_thirty_and_closes_on_success() {
    let now = Instant::now();
    let mut breaker = Breaker::default();
    assert!(breaker.allows(now));
    let mut waits = Vec::new();
    for _ in 0..7 {
        breaker.failed(now);
        let until = breaker.open_until().unwrap();
        assert!(!breaker.allows(now));
        assert!(breaker.allows(until));
        waits.push((until - now).as_secs());
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    breaker.succeeded();
    assert!(breaker.allows(now));
    breaker.failed(now);
    assert_eq!(breaker.open_until(), Some(now + Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn templates_are_installed_before_the_first_bulk_and_only_once() {
    let backend = Scripted::with_templates(vec![], vec![Ok(404), Ok(200), Ok(404)]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(2);
    setup
        .dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(1))
        .await;
    let mut more = pending_lines(1);
    setup
        .dispatcher
        .flush(&mut more, Instant::now() + Duration::from_secs(1))
        .await;
    let calls: Vec<(Method, String)> = backend
        .calls()
        .into_iter()
        .map(|c| (c.method, c.path))
        .collect();
    let expected: Vec<(Method, String)> = [
        (Method::GET, "/_index_template/lambda-platform"),
        (Method::PUT, "/_index_template/lambda-platform"),
        (Method::GET, "/_index_template/lambda-function"),
        (Method::GET, "/_index_template/lambda-extension"),
        (Method::PUT, "/_index_template/lambda-extension"),
        (Method::POST, "/_bulk"),
        (Method::POST, "/_bulk"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_owned()))
    .collect();
    assert_eq!(calls, expected);
    let put: serde_json::Value = serde_json::from_str(&backend.calls()[1].body).unwrap();
    assert_eq!(
        put["index_patterns"],
        serde_json::json!(["lambda-platform-*"])
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_template_install_is_said_once_retried_next_flush_and_does_not_block_the_bulk() {
    let backend = Scripted::with_templates(vec![], vec![Err(()), Err(()), Err(()), Err(())]);
    let mut setup = setup(Arc::clone(&backend));
    let mut pending = pending_lines(2);
    let flushed = setup
        .dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(1))
        .await;
    assert_eq!(flushed.shipped, 2, "the bulk went ahead");
    assert_eq!(setup.log.kinds(), ["template unreachable"]);
    let mut more = pending_lines(1);
    setup
        .dispatcher
        .flush(&mut more, Instant::now() + Duration::from_secs(1))
        .await;
    let gets = backend
        .calls()
        .iter()
        .filter(|c| c.method == Method::GET)
        .count();
    assert_eq!(gets, 6, "three on each flush until installed");
    assert_eq!(setup.log.kinds(), ["template unreachable"]);
}
