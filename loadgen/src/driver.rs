//! Driving the load: open loop (`--rate`, `--stages`: request `i` starts at its scheduled instant
//! whatever happened before, up to `--max-inflight`; late and dropped requests are counted) or
//! closed loop (`--concurrency C`: C workers, each sending its next order when the last answers).
//! Warm-up requests are sent but kept out of the statistics.
//!
//! A part of a shared-out run ([`Partition`]) sends only its own order indexes, from a start
//! time shared by every part (`start_at`), and an open loop's later wave picks the schedule up
//! where the last one ended (`schedule_from`): the parts together send the orders, at the
//! instants, of one process running the whole load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::connection::Connection;
use crate::orders::{Order, OrderGenerator};
use crate::partition::Partition;
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
    /// Share of orders traced (see [`OrderGenerator::with_sample_rate`]).
    pub sample_rate: f64,
    /// `annotation.run_id`.
    pub run_id: String,
    /// `annotation.scenario`.
    pub scenario: String,
    /// Per-request timeout (how long a second of the series can still receive requests).
    pub timeout: Duration,
    /// Which orders this process sends ([`Partition::WHOLE`]: all of them).
    pub partition: Partition,
    /// The wall-clock instant the schedule starts at, shared by the parts of a run (`None`: at
    /// once). A part that gets there late starts at once, its first requests late.
    pub start_at: Option<SystemTime>,
    /// Open loop: where in the schedule this run starts (a later wave of a run split in time).
    pub schedule_from: Duration,
    /// Closed loop: the order index this run counts from (a later wave's).
    pub first_index: u64,
    /// Keep each second's histogram in the series (a part's series merge exactly).
    pub second_histograms: bool,
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
    /// Wall-clock start of the run (the shared start time when there is one).
    pub started: SystemTime,
    /// How long after the shared start time the load really began (zero when on time).
    pub start_lag: Duration,
    /// Wall-clock end.
    pub ended: SystemTime,
    /// Length of the measured part.
    pub measured: Duration,
    /// Open loop: the rate actually dispatched in the measured part, per second.
    pub dispatched_rate: Option<f64>,
    /// Open loop: requests dispatched in the measured part, and from its start to the last of
    /// them (what `dispatched_rate` is made of: the parts of a run add up from these).
    pub dispatched_measured: Option<(u64, Duration)>,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Per second of the measured part.
    pub series: Vec<SecondStats>,
    /// Every request's HTTP status, warm-up included (what the target's own logs should show).
    pub all_statuses: std::collections::BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer, warm-up included.
    pub unanswered: u64,
    /// Requests sent traced (`Sampled=1`), warm-up included.
    pub traced: u64,
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
    /// The run's start: the series counts its seconds from here.
    started: Instant,
    measure_from: Instant,
    orders: OrderGenerator,
}

struct Finished {
    sample: Sample,
    warmup: bool,
    traced: bool,
}

/// Sends `order` on the worker's own `connection`, or on any idle one when `None` (open loop).
async fn one_order(
    shared: &Shared,
    connection: Option<&mut Option<Connection>>,
    order: Order,
    intended: Instant,
) -> Finished {
    let trace = OrderTrace::new();
    let header = if order.traced {
        trace.header()
    } else {
        trace.unsampled_header()
    };
    let started_wall = SystemTime::now();
    let sent_at = Instant::now();
    let result = match connection {
        Some(connection) => shared.target.send(connection, order.body, &header).await,
        None => shared.target.send_pooled(order.body, &header).await,
    };
    let done = Instant::now();
    let ended_wall = SystemTime::now();
    let (status, error, detail) = match &result {
        Ok(status) => (Some(*status), ErrorKind::from_status(*status), None),
        Err(e) => (None, Some(e.kind), Some(e.detail.as_str())),
    };
    if order.traced {
        shared.sink.send(&trace.document(
            &shared.run_id,
            &shared.scenario,
            shared.target.url(),
            epoch(started_wall),
            epoch(ended_wall),
            status,
            detail,
        ));
    }
    let warmup = intended < shared.measure_from;
    Finished {
        sample: Sample {
            corrected: done.saturating_duration_since(intended),
            uncorrected: done.saturating_duration_since(sent_at),
            status,
            error,
            second: intended.saturating_duration_since(shared.started).as_secs(),
        },
        warmup,
        traced: order.traced,
    }
}

/// Samples a recorder keeps before adding them to the shared per-second series: one lock per
/// batch instead of one per request. The series is read once, at the end of the run.
const SERIES_BATCH: usize = 64;

/// Records finished requests: one worker's statistics, plus the shared series and progress.
struct Recorder {
    stats: RunStats,
    warmup: u64,
    all_statuses: std::collections::BTreeMap<u16, u64>,
    unanswered: u64,
    traced: u64,
    series: Arc<Mutex<Series>>,
    for_series: Vec<Sample>,
    live: Arc<Live>,
}

impl Recorder {
    fn new(live: Arc<Live>, series: Arc<Mutex<Series>>) -> Self {
        Self {
            stats: RunStats::default(),
            warmup: 0,
            all_statuses: std::collections::BTreeMap::new(),
            unanswered: 0,
            traced: 0,
            series,
            for_series: Vec::with_capacity(SERIES_BATCH),
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
        self.traced += u64::from(finished.traced);
        // The series shows the warm-up too (its seconds marked); the statistics leave it out.
        self.for_series.push(finished.sample);
        if self.for_series.len() >= SERIES_BATCH {
            self.flush();
        }
        if finished.warmup {
            self.warmup += 1;
            return;
        }
        self.stats.record(&finished.sample);
        if self.stats.requests().is_multiple_of(64) {
            self.live.p99_us.store(
                self.stats.corrected.value_at_quantile(0.99),
                Ordering::Relaxed,
            );
        }
    }

    /// Hands the batched samples to the series.
    fn flush(&mut self) {
        if self.for_series.is_empty() {
            return;
        }
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for sample in self.for_series.drain(..) {
            series.record(&sample);
        }
    }

    /// Takes in another recorder's counts (flushing both first).
    fn merge(&mut self, mut other: Recorder) {
        other.flush();
        self.flush();
        self.stats.merge(&other.stats);
        self.warmup += other.warmup;
        self.unanswered += other.unanswered;
        self.traced += other.traced;
        for (status, n) in other.all_statuses {
            *self.all_statuses.entry(status).or_default() += n;
        }
    }
}

/// What every closed-loop worker shares.
#[derive(Clone)]
struct ClosedLoop {
    shared: Arc<Shared>,
    issued: Arc<AtomicU64>,
    /// This process's first order index; then every `step`-th.
    first: u64,
    step: u64,
    limit: Option<u64>,
    deadline: Option<Instant>,
    interrupted: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
    live: Arc<Live>,
    series: Arc<Mutex<Series>>,
    /// Turns true (or is dropped) once every thread's counts are in: until then each thread's
    /// runtime keeps running, because an AWS SDK client's pooled connection runs as a task on
    /// the runtime that opened it and may be in use by another thread's worker.
    release: watch::Receiver<bool>,
}

impl ClosedLoop {
    /// One worker: its own connection and histograms; the next order as soon as the last
    /// answered.
    async fn worker(mut self) -> Recorder {
        let mut recorder = Recorder::new(Arc::clone(&self.live), Arc::clone(&self.series));
        let mut connection = None;
        loop {
            if *self.stop.borrow_and_update() {
                self.interrupted.store(true, Ordering::Relaxed);
                break;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let index = self.first + self.issued.fetch_add(1, Ordering::Relaxed) * self.step;
            if self.limit.is_some_and(|n| index >= n) {
                break;
            }
            let order = self.shared.orders.order(index);
            let finished =
                one_order(&self.shared, Some(&mut connection), order, Instant::now()).await;
            recorder.record(finished);
        }
        recorder.flush();
        recorder
    }

    /// `workers` workers on a runtime of their own on a thread of its own: each thread's
    /// workers send, receive and record without waking another thread.
    fn spawn_thread(
        &self,
        name: String,
        workers: usize,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<std::io::Result<Recorder>>> {
        let (done, recorder) = tokio::sync::oneshot::channel();
        let this = self.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = done.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..workers)
                    .map(|_| tokio::spawn(this.clone().worker()))
                    .collect();
                let mut merged = Recorder::new(Arc::clone(&this.live), Arc::clone(&this.series));
                for task in tasks {
                    if let Ok(recorder) = task.await {
                        merged.merge(recorder);
                    }
                }
                let _ = done.send(Ok(merged));
                // Waiting here keeps this runtime's tasks running meanwhile.
                let mut release = this.release;
                let _ = release.wait_for(|released| *released).await;
            });
        })?;
        Ok(recorder)
    }
}

/// Runs the load until the limits are reached or `stop` turns true (Ctrl-C).
///
/// The closed loop runs its workers on one thread per CPU (at most one per worker), each with a
/// single-threaded runtime; the open loop's scheduled requests run on the caller's runtime.
pub async fn drive(
    target: Arc<Target>,
    sink: Arc<SegmentSink>,
    config: &DriveConfig,
    mut stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> std::io::Result<DriveOutcome> {
    let Some((started, t0, start_lag)) = start(config.start_at, &mut stop).await else {
        return Ok(DriveOutcome::stopped_before_start(config));
    };
    let measure_from = t0 + config.warmup;
    let deadline = config.duration.map(|d| measure_from + d);
    let shared = Arc::new(Shared {
        target,
        sink,
        run_id: config.run_id.clone(),
        scenario: config.scenario.clone(),
        started: t0,
        measure_from,
        orders: OrderGenerator::new(config.seed, &config.run_id)
            .with_sample_rate(config.sample_rate),
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut series = Series::new(config.timeout, config.warmup);
    if config.second_histograms {
        series = series.keeping_histograms();
    }
    let series = Arc::new(Mutex::new(series));
    let (mut late, mut dropped, mut sent, mut dispatched_rate) = (0u64, 0u64, 0u64, None);
    let mut dispatched_measured = None;
    let mut recorder = match &config.model {
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
            let first = config
                .partition
                .first_at_or_after(schedule.first_at(config.schedule_from));
            for index in (first..).step_by(config.partition.of() as usize) {
                if config.orders.is_some_and(|n| index >= n) {
                    break;
                }
                let Some(offset) = schedule.offset(index) else {
                    break;
                };
                let intended = t0 + offset.saturating_sub(config.schedule_from);
                if deadline.is_some_and(|d| intended >= d) {
                    break;
                }
                // Built before the wait: nothing but signing and sending is timed.
                let order = shared.orders.order(index);
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
                    let finished = one_order(&shared, None, order, intended).await;
                    inflight.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send(finished).await;
                });
            }
            let span = last_dispatch.saturating_duration_since(measure_from);
            dispatched_measured = Some((measured_sent, span));
            let window = span.as_secs_f64();
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
            let concurrency = (*concurrency).max(1);
            // Dropped on every way out of this block, which releases the threads too.
            let release = watch::Sender::new(false);
            let threads = std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .min(concurrency);
            let closed = ClosedLoop {
                shared: Arc::clone(&shared),
                issued: Arc::new(AtomicU64::new(0)),
                first: config.partition.first_at_or_after(config.first_index),
                step: config.partition.step(),
                limit: config.orders,
                deadline,
                interrupted: Arc::clone(&interrupted),
                stop: stop.clone(),
                live: Arc::clone(&live),
                series: Arc::clone(&series),
                release: release.subscribe(),
            };
            let mut running = Vec::with_capacity(threads);
            for thread in 0..threads {
                let workers = concurrency / threads + usize::from(thread < concurrency % threads);
                running.push(closed.spawn_thread(format!("loadgen-{thread}"), workers)?);
            }
            let mut merged = Recorder::new(Arc::clone(&live), Arc::clone(&series));
            for thread in running {
                let recorder = thread.await.map_err(|_| {
                    std::io::Error::other("a load thread ended without its counts")
                })??;
                merged.merge(recorder);
            }
            release.send_replace(true);
            sent = merged.stats.requests() + merged.warmup;
            merged
        }
    };
    recorder.flush();
    let ended = SystemTime::now();
    let seconds = series.lock().unwrap_or_else(|p| p.into_inner()).seconds();
    let measured = Instant::now().saturating_duration_since(measure_from);
    Ok(DriveOutcome {
        sent,
        warmup_requests: recorder.warmup,
        all_statuses: std::mem::take(&mut recorder.all_statuses),
        unanswered: recorder.unanswered,
        traced: recorder.traced,
        stats: std::mem::take(&mut recorder.stats),
        late,
        dropped,
        started,
        start_lag,
        ended,
        measured: deadline.map_or(measured, |d| measured.min(d - measure_from)),
        dispatched_rate,
        dispatched_measured,
        interrupted: interrupted.load(Ordering::Relaxed),
        series: seconds,
    })
}

/// Waits for the shared start time `start_at` (or Ctrl-C: `None`). The run's wall-clock start,
/// the `Instant` its schedule counts from and how late the load began: a part that reaches the
/// start time late keeps the shared schedule, so its first requests are late, not shifted.
async fn start(
    start_at: Option<SystemTime>,
    stop: &mut watch::Receiver<bool>,
) -> Option<(SystemTime, Instant, Duration)> {
    let Some(start_at) = start_at else {
        return Some((SystemTime::now(), Instant::now(), Duration::ZERO));
    };
    if let Ok(ahead) = start_at.duration_since(SystemTime::now()) {
        tokio::select! {
            _ = tokio::time::sleep(ahead) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
    let late = SystemTime::now()
        .duration_since(start_at)
        .unwrap_or_default();
    let t0 = Instant::now()
        .checked_sub(late)
        .unwrap_or_else(Instant::now);
    Some((start_at, t0, late))
}

impl DriveOutcome {
    /// Ctrl-C before the shared start time: nothing sent.
    fn stopped_before_start(config: &DriveConfig) -> Self {
        let now = SystemTime::now();
        let started = config.start_at.unwrap_or(now).min(now);
        Self {
            stats: RunStats::default(),
            sent: 0,
            warmup_requests: 0,
            late: 0,
            dropped: 0,
            started,
            start_lag: Duration::ZERO,
            ended: now,
            measured: Duration::ZERO,
            dispatched_rate: None,
            dispatched_measured: None,
            interrupted: true,
            series: Vec::new(),
            all_statuses: std::collections::BTreeMap::new(),
            unanswered: 0,
            traced: 0,
        }
    }
}
