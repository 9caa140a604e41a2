//! Driving the load: open loop (`--rate`, `--stages`: request `i` starts at its scheduled instant
//! whatever happened before, up to `--max-inflight`; late and dropped requests are counted) or
//! closed loop (`--concurrency C`: C workers, each sending its next order when the last answers).
//! Warm-up requests are sent but kept out of the statistics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::orders::{Order, OrderGenerator};
use crate::schedule::Schedule;
use crate::segments::{OrderTrace, SegmentSink};
use crate::stats::{ErrorKind, RunStats, Sample, SecondStats, Series};
use crate::target::Target;

/// A request dispatched later than this after its intended start counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(5);

/// Open or closed loop.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadModel {
    /// Scheduled starts.
    Open {
        /// When each request starts.
        schedule: Schedule,
        /// Most requests outstanding; beyond it scheduled requests are dropped (and counted).
        max_inflight: usize,
    },
    /// A fixed number of workers.
    Closed {
        /// Workers.
        concurrency: usize,
    },
}

/// A run's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct DriveConfig {
    /// How requests are issued.
    pub model: LoadModel,
    /// Stop after this many orders (warm-up included).
    pub orders: Option<u64>,
    /// Stop after measuring this long (after the warm-up).
    pub duration: Option<Duration>,
    /// Sent first and excluded from the statistics.
    pub warmup: Duration,
    /// Order generator seed.
    pub seed: u64,
    /// `annotation.run_id`.
    pub run_id: String,
    /// `annotation.scenario`.
    pub scenario: String,
    /// Per-request timeout (how long a second of the series can still receive requests).
    pub timeout: Duration,
}

/// Live counters for the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Finished requests.
    pub completed: AtomicU64,
    /// Of which failed.
    pub errors: AtomicU64,
    /// Latest p99 of the measured requests, µs.
    pub p99_us: AtomicU64,
}

/// What a run produced.
#[derive(Debug)]
pub struct DriveOutcome {
    /// Measured (post-warm-up) requests.
    pub stats: RunStats,
    /// Requests sent in all (warm-up included).
    pub sent: u64,
    /// Warm-up requests (not in `stats`).
    pub warmup_requests: u64,
    /// Open loop: dispatched more than [`LATE_AFTER`] after their intended start.
    pub late: u64,
    /// Open loop: never sent because `--max-inflight` requests were outstanding.
    pub dropped: u64,
    /// Wall-clock start of the run.
    pub started: SystemTime,
    /// Wall-clock end.
    pub ended: SystemTime,
    /// Length of the measured part.
    pub measured: Duration,
    /// Open loop: the rate actually dispatched in the measured part, per second.
    pub dispatched_rate: Option<f64>,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Per second of the measured part.
    pub series: Vec<SecondStats>,
    /// Every request's HTTP status, warm-up included (what the target's own logs should show).
    pub all_statuses: std::collections::BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer, warm-up included.
    pub unanswered: u64,
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Shared {
    target: Arc<Target>,
    sink: Arc<SegmentSink>,
    run_id: String,
    scenario: String,
    measure_from: Instant,
}

struct Finished {
    sample: Sample,
    warmup: bool,
}

async fn one_order(shared: &Shared, order: Order, intended: Instant) -> Finished {
    let trace = OrderTrace::new();
    let started_wall = SystemTime::now();
    let sent_at = Instant::now();
    let result = shared.target.send(order.body, &trace.header()).await;
    let done = Instant::now();
    let ended_wall = SystemTime::now();
    let (status, error, detail) = match &result {
        Ok(status) => (Some(*status), ErrorKind::from_status(*status), None),
        Err(e) => (None, Some(e.kind), Some(e.detail.as_str())),
    };
    shared.sink.send(&trace.document(
        &shared.run_id,
        &shared.scenario,
        shared.target.url(),
        epoch(started_wall),
        epoch(ended_wall),
        status,
        detail,
    ));
    let warmup = intended < shared.measure_from;
    Finished {
        sample: Sample {
            corrected: done.saturating_duration_since(intended),
            uncorrected: done.saturating_duration_since(sent_at),
            status,
            error,
            second: intended
                .saturating_duration_since(shared.measure_from)
                .as_secs(),
        },
        warmup,
    }
}

/// Records finished requests: one worker's statistics, plus the shared series and progress.
struct Recorder {
    stats: RunStats,
    warmup: u64,
    all_statuses: std::collections::BTreeMap<u16, u64>,
    unanswered: u64,
    series: Arc<Mutex<Series>>,
    live: Arc<Live>,
}

impl Recorder {
    fn new(live: Arc<Live>, series: Arc<Mutex<Series>>) -> Self {
        Self {
            stats: RunStats::default(),
            warmup: 0,
            all_statuses: std::collections::BTreeMap::new(),
            unanswered: 0,
            series,
            live,
        }
    }

    fn record(&mut self, finished: Finished) {
        self.live.completed.fetch_add(1, Ordering::Relaxed);
        if finished.sample.error.is_some() {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        match finished.sample.status {
            Some(status) => *self.all_statuses.entry(status).or_default() += 1,
            None => self.unanswered += 1,
        }
        if finished.warmup {
            self.warmup += 1;
            return;
        }
        self.stats.record(&finished.sample);
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(&finished.sample);
        if self.stats.requests().is_multiple_of(64) {
            self.live.p99_us.store(
                self.stats.corrected.value_at_quantile(0.99),
                Ordering::Relaxed,
            );
        }
    }
}

/// Runs the load until the limits are reached or `stop` turns true (Ctrl-C).
pub async fn drive(
    target: Arc<Target>,
    sink: Arc<SegmentSink>,
    config: &DriveConfig,
    mut stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> DriveOutcome {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let measure_from = t0 + config.warmup;
    let deadline = config.duration.map(|d| measure_from + d);
    let shared = Arc::new(Shared {
        target,
        sink,
        run_id: config.run_id.clone(),
        scenario: config.scenario.clone(),
        measure_from,
    });
    let generator = Arc::new(Mutex::new(OrderGenerator::new(config.seed, &config.run_id)));
    let interrupted = Arc::new(AtomicBool::new(false));
    let series = Arc::new(Mutex::new(Series::new(config.timeout)));
    let (mut late, mut dropped, mut sent, mut dispatched_rate) = (0u64, 0u64, 0u64, None);
    let recorder = match &config.model {
        LoadModel::Open {
            schedule,
            max_inflight,
        } => {
            let (tx, mut rx) = mpsc::channel::<Finished>(65_536);
            let collector = {
                let (live, series) = (Arc::clone(&live), Arc::clone(&series));
                tokio::spawn(async move {
                    let mut recorder = Recorder::new(live, series);
                    while let Some(finished) = rx.recv().await {
                        recorder.record(finished);
                    }
                    recorder
                })
            };
            let inflight = Arc::new(AtomicU64::new(0));
            let mut measured_sent = 0u64;
            let mut last_dispatch = measure_from;
            for index in 0u64.. {
                if config.orders.is_some_and(|n| index >= n) {
                    break;
                }
                let Some(offset) = schedule.offset(index) else {
                    break;
                };
                let intended = t0 + offset;
                if deadline.is_some_and(|d| intended >= d) {
                    break;
                }
                // Built before the wait: nothing but signing and sending is timed.
                let order = generator
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .next_order();
                tokio::select! {
                    _ = tokio::time::sleep_until(intended.into()) => {}
                    _ = stop.wait_for(|s| *s) => { interrupted.store(true, Ordering::Relaxed); break; }
                }
                let now = Instant::now();
                if now.saturating_duration_since(intended) > LATE_AFTER {
                    late += 1;
                }
                if inflight.load(Ordering::Relaxed) >= *max_inflight as u64 {
                    dropped += 1;
                    continue;
                }
                sent += 1;
                if intended >= measure_from {
                    measured_sent += 1;
                    last_dispatch = now;
                }
                inflight.fetch_add(1, Ordering::Relaxed);
                let (shared, tx, inflight) =
                    (Arc::clone(&shared), tx.clone(), Arc::clone(&inflight));
                tokio::spawn(async move {
                    let finished = one_order(&shared, order, intended).await;
                    inflight.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send(finished).await;
                });
            }
            let window = last_dispatch
                .saturating_duration_since(measure_from)
                .as_secs_f64();
            if measured_sent > 1 && window > 0.0 {
                // n requests span n-1 intervals.
                dispatched_rate = Some((measured_sent - 1) as f64 / window);
            }
            drop(tx);
            collector
                .await
                .unwrap_or_else(|_| Recorder::new(Arc::clone(&live), Arc::clone(&series)))
        }
        LoadModel::Closed { concurrency } => {
            let issued = Arc::new(AtomicU64::new(0));
            let mut workers = Vec::new();
            for _ in 0..*concurrency {
                let (shared, generator, issued, live, interrupted, series) = (
                    Arc::clone(&shared),
                    Arc::clone(&generator),
                    Arc::clone(&issued),
                    Arc::clone(&live),
                    Arc::clone(&interrupted),
                    Arc::clone(&series),
                );
                let mut stop = stop.clone();
                let orders = config.orders;
                workers.push(tokio::spawn(async move {
                    // Each worker its own histograms; merged at the end.
                    let mut recorder = Recorder::new(live, series);
                    loop {
                        if *stop.borrow_and_update() {
                            interrupted.store(true, Ordering::Relaxed);
                            break;
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                        if orders.is_some_and(|n| issued.fetch_add(1, Ordering::Relaxed) >= n) {
                            break;
                        }
                        let order = generator
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .next_order();
                        let finished = one_order(&shared, order, Instant::now()).await;
                        recorder.record(finished);
                    }
                    recorder
                }));
            }
            let mut merged = Recorder::new(Arc::clone(&live), Arc::clone(&series));
            for worker in workers {
                if let Ok(recorder) = worker.await {
                    merged.stats.merge(&recorder.stats);
                    merged.warmup += recorder.warmup;
                    merged.unanswered += recorder.unanswered;
                    for (status, n) in recorder.all_statuses {
                        *merged.all_statuses.entry(status).or_default() += n;
                    }
                }
            }
            sent = merged.stats.requests() + merged.warmup;
            merged
        }
    };
    let ended = SystemTime::now();
    let seconds = series.lock().unwrap_or_else(|p| p.into_inner()).seconds();
    let measured = Instant::now().saturating_duration_since(measure_from);
    DriveOutcome {
        sent,
        warmup_requests: recorder.warmup,
        all_statuses: recorder.all_statuses,
        unanswered: recorder.unanswered,
        stats: recorder.stats,
        late,
        dropped,
        started,
        ended,
        measured: deadline.map_or(measured, |d| measured.min(d - measure_from)),
        dispatched_rate,
        interrupted: interrupted.load(Ordering::Relaxed),
        series: seconds,
    }
}
