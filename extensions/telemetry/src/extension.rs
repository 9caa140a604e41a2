//! The events processor: what the extension does on INVOKE and SHUTDOWN. The `lambda-extension`
//! crate calls it once per event and calls `next` when it returns, so everything here returns
//! (never an error: that would make the crate report `init/error` or `exit/error` and stop) and
//! is bounded in time.
//!
//! - INVOKE: note the request id; parse what the listener queued into documents; when at least
//!   `DISPATCH_MIN_BATCH_SIZE` events wait, no flush is in flight and the breaker allows, start
//!   a flush bounded by `DISPATCH_TIMEOUT_MS` in the background (see [`shipper`](crate::shipper):
//!   awaiting it here would hold the environment after the function's response). It returns
//!   without waiting for the network.
//! - SHUTDOWN: wait for the last invocation's `platform.report` (see [`shutdown`]), then for the
//!   flush in flight, then flush everything before `deadlineMs − 100 ms` ignoring the breaker,
//!   count what is left as dropped, and hand back the summary (the caller prints it and exits).
//!
//! Without a `URL` there is no [`Dispatcher`]: records are parsed and counted, then discarded.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use lambda_extension::NextEvent;
use tokio::time::Instant;

use crate::counters::{Counters, Summary};
use crate::dispatch::Dispatcher;
use crate::intake::Intake;
use crate::pending::Pending;
use crate::queue::PostQueue;
use crate::shipper::Shipper;
use crate::shutdown;

/// What the processor is made of.
pub struct Parts {
    /// The listener's inbox.
    pub queue: Arc<PostQueue>,
    /// The counts.
    pub counters: Arc<Counters>,
    /// POSTs into documents.
    pub intake: Intake,
    /// `QUEUE_MAX_EVENTS`.
    pub queue_max_events: usize,
    /// `None`: ship nothing.
    pub dispatcher: Option<Dispatcher>,
    /// `DISPATCH_MIN_BATCH_SIZE`.
    pub min_batch_events: usize,
    /// `DISPATCH_TIMEOUT_MS`.
    pub dispatch_timeout: Duration,
    /// Whether the Telemetry API subscription succeeded (else nothing will arrive to wait for).
    pub subscribed: bool,
}

struct State {
    intake: Intake,
    pending: Pending,
    shipper: Option<Shipper>,
    awaiting_report: Option<String>,
}

/// The events processor's state and behaviour.
pub struct TelemetryExtension {
    queue: Arc<PostQueue>,
    counters: Arc<Counters>,
    min_batch_events: usize,
    dispatch_timeout: Duration,
    subscribed: bool,
    state: tokio::sync::Mutex<State>,
}

impl TelemetryExtension {
    /// A processor of `parts`.
    pub fn new(parts: Parts) -> Self {
        Self {
            queue: parts.queue,
            counters: parts.counters,
            min_batch_events: parts.min_batch_events,
            dispatch_timeout: parts.dispatch_timeout,
            subscribed: parts.subscribed,
            state: tokio::sync::Mutex::new(State {
                intake: parts.intake,
                pending: Pending::new(parts.queue_max_events),
                shipper: parts
                    .dispatcher
                    .map(|dispatcher| Shipper::Idle(Box::new(dispatcher))),
                awaiting_report: None,
            }),
        }
    }

    /// Handles one event from `next`; `Some(summary)` after SHUTDOWN, when the process should
    /// print it and exit.
    pub async fn handle(&self, event: &NextEvent) -> Option<Summary> {
        match event {
            NextEvent::Invoke(invoke) => {
                self.on_invoke(&invoke.request_id).await;
                None
            }
            NextEvent::Shutdown(shutdown) => {
                let now_ms = epoch_ms(SystemTime::now());
                Some(self.on_shutdown(shutdown.deadline_ms, now_ms).await)
            }
        }
    }

    /// INVOKE of `request_id`: takes in what the listener queued and, when enough waits, starts a
    /// background flush; never waits for the network, so the invocation's deadline bounds
    /// nothing here.
    pub async fn on_invoke(&self, request_id: &str) {
        let mut state = self.state.lock().await;
        state.awaiting_report = Some(request_id.to_owned());
        self.drain(&mut state);
        let State {
            pending, shipper, ..
        } = &mut *state;
        let Some(shipper) = shipper else {
            return;
        };
        shipper.reap(pending, &self.counters).await;
        shipper.start(
            pending,
            self.min_batch_events,
            Instant::now() + self.dispatch_timeout,
        );
    }

    /// SHUTDOWN with deadline `deadline_ms`, at `now_ms` (epoch ms): the final counts.
    pub async fn on_shutdown(&self, deadline_ms: u64, now_ms: u64) -> Summary {
        let started = Instant::now();
        let flush_deadline = started + shutdown::until_deadline(now_ms, deadline_ms);
        let mut state = self.state.lock().await;
        self.drain(&mut state);
        if state.shipper.is_some() && self.subscribed {
            let end = started + shutdown::report_wait(now_ms, deadline_ms);
            if state.awaiting_report.is_some() {
                shutdown::wait_for(&self.queue, end, || {
                    self.drain(&mut state);
                    state.awaiting_report.is_none()
                })
                .await;
            }
            shutdown::until_quiet(&self.queue, shutdown::QUIET_GAP, end, || {
                self.drain(&mut state);
            })
            .await;
        }
        let State {
            pending, shipper, ..
        } = &mut *state;
        if let Some(shipper) = shipper {
            shipper
                .settle(pending, &self.counters, Some(flush_deadline))
                .await;
            if let Some(dispatcher) = shipper.idle() {
                dispatcher.flush(pending, flush_deadline).await;
            }
        }
        self.counters.add_dropped_events(pending.clear() as u64);
        self.counters.summary()
    }

    /// Everything queued into pending documents; clears the awaited report when it came.
    fn drain(&self, state: &mut State) {
        let bodies = self.queue.drain();
        if bodies.is_empty() {
            return;
        }
        let ingested = state
            .intake
            .ingest_all(&bodies, &mut state.pending, Utc::now());
        if let Some(awaited) = state.awaiting_report.as_deref() {
            if ingested.reports.iter().any(|id| id == awaited) {
                state.awaiting_report = None;
            }
        }
        if state.shipper.is_none() {
            state.pending.clear();
        }
    }

    /// How many documents wait (tests).
    pub async fn pending_len(&self) -> usize {
        self.state.lock().await.pending.len()
    }

    /// Waits for the flush in flight, if any, and takes back what it left (tests: what a later
    /// INVOKE would do once it ended).
    pub async fn settled(&self) {
        let mut state = self.state.lock().await;
        let State {
            pending, shipper, ..
        } = &mut *state;
        if let Some(shipper) = shipper {
            shipper.settle(pending, &self.counters, None).await;
        }
    }

    /// Whether a flush is in flight (tests).
    pub async fn flushing(&self) -> bool {
        let state = self.state.lock().await;
        state.shipper.as_ref().is_some_and(Shipper::is_busy)
    }
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
