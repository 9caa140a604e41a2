//! What a run measured: latency histograms (HdrHistogram, µs; corrected = from the intended start,
//! uncorrected = from the actual send), a table of statuses, an error taxonomy (each worker keeps
//! its own [`RunStats`]; they are merged at the end), and a per-second [`Series`] shared by all.
//! Memory does not grow with the run's length: histograms have fixed bounds, the tables are keyed
//! by bounded sets, and the series keeps a histogram only for the last few seconds, compacting
//! older ones into three numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded exactly (longer ones saturate at it): 10 minutes.
pub const MAX_LATENCY_US: u64 = 600_000_000;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection (refused, unreachable, DNS).
    Connect,
    /// TLS handshake.
    Tls,
    /// No answer in time.
    Timeout,
    /// 403: Lattice's auth denied it (or a signature problem).
    AuthDenied,
    /// 429, or Lambda's TooManyRequestsException.
    Throttled,
    /// Any other 4xx.
    Client4xx,
    /// A 5xx.
    Server5xx,
    /// Lambda answered with FunctionError (direct invoke).
    FunctionError,
    /// Anything else (bad response, …).
    Other,
}

impl ErrorKind {
    /// The kind for an HTTP status, `None` for success.
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            200..=399 => None,
            403 => Some(Self::AuthDenied),
            429 => Some(Self::Throttled),
            400..=499 => Some(Self::Client4xx),
            _ => Some(Self::Server5xx),
        }
    }
}

/// One finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Since the intended start (open loop) or the send (closed loop).
    pub corrected: Duration,
    /// Since the actual send.
    pub uncorrected: Duration,
    /// HTTP status, if any answer came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<ErrorKind>,
    /// Second of the run it finished in.
    pub second: u64,
}

/// One second of the run, warm-up included: the requests whose intended start fell in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    /// Seconds since the run's start.
    pub second: u64,
    /// The second began before the warm-up ended: its requests are not in the statistics.
    pub warmup: bool,
    /// Requests finished in it.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Median of their corrected latency, ms.
    pub p50_ms: f64,
    /// 99th percentile of their corrected latency, ms.
    pub p99_ms: f64,
    /// Their corrected latency histogram itself (µs, 2 significant digits; HdrHistogram's V2
    /// compressed encoding), kept by a part of a fanned-out run ([`Series::keeping_histograms`])
    /// so the parts' seconds merge exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

impl SecondStats {
    /// `second` of the run from its counts and corrected-latency histogram `h`.
    pub fn of(
        second: u64,
        warmup: bool,
        requests: u64,
        errors: u64,
        h: &Histogram<u64>,
        keep_histogram: bool,
    ) -> Self {
        Self {
            second,
            warmup,
            requests,
            errors,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            histogram: keep_histogram.then(|| crate::hdr::encode(h)),
        }
    }
}

/// An empty histogram of one second of the series (2 significant digits: ~25 KiB each, and
/// only the series' horizon of them live).
pub fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static bounds are valid")
}

/// One point of a histogram's percentile distribution (HdrHistogram's percentile output: the
/// steps halve the distance to 100 % every `DISTRIBUTION_TICKS` points).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentilePoint {
    /// The share of requests at or below `value_ms`, percent.
    pub percentile: f64,
    /// The latency, ms.
    pub value_ms: f64,
    /// Requests at or below it.
    pub count: u64,
}

/// Points per halving of the distance to 100 % (HdrHistogram's own default is 5).
pub const DISTRIBUTION_TICKS: u32 = 5;

/// `histogram`'s percentile distribution, from its lowest value to its highest (empty when it
/// holds nothing).
pub fn distribution(histogram: &Histogram<u64>) -> Vec<PercentilePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut count = 0;
    for step in histogram.iter_quantiles(DISTRIBUTION_TICKS) {
        count += step.count_since_last_iteration();
        points.push(PercentilePoint {
            percentile: (step.quantile_iterated_to() * 100.0 * 1e6).round() / 1e6,
            value_ms: ms(step.value_iterated_to()),
            count,
        });
    }
    points
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// p50.
    pub p50_ms: f64,
    /// p90.
    pub p90_ms: f64,
    /// p95.
    pub p95_ms: f64,
    /// p99.
    pub p99_ms: f64,
    /// p99.9.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static bounds are valid")
}

/// Milliseconds from µs.
fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// `histogram`'s percentiles.
pub fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    let at = |q: f64| ms(histogram.value_at_quantile(q));
    Percentiles {
        count: histogram.len(),
        mean_ms: (histogram.mean() / 1000.0 * 1000.0).round() / 1000.0,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: ms(histogram.max()),
    }
}

/// Everything measured.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// From the intended start.
    pub corrected: Histogram<u64>,
    /// From the send.
    pub uncorrected: Histogram<u64>,
    /// Requests per HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Failures per kind (with status where there was one).
    pub errors: BTreeMap<(ErrorKind, Option<u16>), u64>,
}

impl Default for RunStats {
    fn default() -> Self {
        Self {
            corrected: histogram(),
            uncorrected: histogram(),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl RunStats {
    /// Records one request.
    pub fn record(&mut self, sample: &Sample) {
        let us = |d: Duration| (d.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.corrected.saturating_record(us(sample.corrected));
        self.uncorrected.saturating_record(us(sample.uncorrected));
        if let Some(status) = sample.status {
            *self.statuses.entry(status).or_default() += 1;
        }
        if let Some(kind) = sample.error {
            *self.errors.entry((kind, sample.status)).or_default() += 1;
        }
    }

    /// Adds `other` (another worker's) into this one.
    pub fn merge(&mut self, other: &RunStats) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        for (key, n) in &other.errors {
            *self.errors.entry(*key).or_default() += n;
        }
    }

    /// Requests recorded.
    pub fn requests(&self) -> u64 {
        self.corrected.len()
    }

    /// Requests that failed.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The per-second series: a histogram per second while the second can still receive requests
/// (`horizon` seconds back), then just its count, errors and p99.
#[derive(Debug)]
pub struct Series {
    live: BTreeMap<u64, (u64, u64, Histogram<u64>)>,
    done: BTreeMap<u64, SecondStats>,
    horizon: u64,
    warmup: Duration,
    keep_histograms: bool,
}

impl Series {
    /// A series keeping histograms for the last `horizon` seconds (the request timeout, plus
    /// margin: no request can finish later than that), its seconds before `warmup` marked.
    pub fn new(horizon: Duration, warmup: Duration) -> Self {
        Self {
            live: BTreeMap::new(),
            done: BTreeMap::new(),
            horizon: horizon.as_secs() + 2,
            warmup,
            keep_histograms: false,
        }
    }

    /// Each second also keeps its histogram, encoded (a few hundred bytes), when it leaves the
    /// horizon: what a part of a fanned-out run reports, so the parts merge exactly.
    pub fn keeping_histograms(mut self) -> Self {
        self.keep_histograms = true;
        self
    }

    fn second_stats(
        &self,
        second: u64,
        requests: u64,
        errors: u64,
        h: &Histogram<u64>,
    ) -> SecondStats {
        let warmup = Duration::from_secs(second) < self.warmup;
        SecondStats::of(second, warmup, requests, errors, h, self.keep_histograms)
    }

    /// Records one request.
    pub fn record(&mut self, sample: &Sample) {
        let failed = u64::from(sample.error.is_some());
        if let Some(done) = self.done.get_mut(&sample.second) {
            // Later than the horizon: counted, but its latency no longer moves that second's p99.
            done.requests += 1;
            done.errors += failed;
            return;
        }
        let entry = self
            .live
            .entry(sample.second)
            .or_insert_with(|| (0, 0, second_histogram()));
        entry.0 += 1;
        entry.1 += failed;
        entry
            .2
            .saturating_record((sample.corrected.as_micros() as u64).clamp(1, MAX_LATENCY_US));
        let newest = *self.live.keys().next_back().unwrap_or(&0);
        while let Some((&oldest, _)) = self.live.first_key_value() {
            if oldest + self.horizon >= newest {
                break;
            }
            self.compact(oldest);
        }
    }

    fn compact(&mut self, second: u64) {
        if let Some((requests, errors, h)) = self.live.remove(&second) {
            let stats = self.second_stats(second, requests, errors, &h);
            self.done.insert(second, stats);
        }
    }

    /// Histograms held now (bounded by the horizon).
    pub fn live_seconds(&self) -> usize {
        self.live.len()
    }

    /// Every second so far, in order.
    pub fn seconds(&self) -> Vec<SecondStats> {
        let mut out: Vec<SecondStats> = self.done.values().cloned().collect();
        out.extend(self.live.iter().map(|(second, (requests, errors, h))| {
            self.second_stats(*second, *requests, *errors, h)
        }));
        out.sort_by_key(|s| s.second);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, status: u16, second: u64) -> Sample {
        Sample {
            corrected: Duration::from_millis(ms),
            uncorrected: Duration::from_millis(ms / 2),
            status: Some(status),
            error: ErrorKind::from_status(status),
            second,
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut stats = RunStats::default();
        for i in 1..=1000 {
            stats.record(&sample(i, 201, 0));
        }
        let p = percentiles(&stats.corrected);
        assert_eq!(p.count, 1000);
        // HdrHistogram at 3 significant digits: values within 0.1 %.
        assert!((p.p50_ms - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.p999_ms - 999.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() <= 1.0, "{p:?}");
        assert!((p.mean_ms - 500.5).abs() <= 0.5, "{p:?}");
        let u = percentiles(&stats.uncorrected);
        assert!((u.p50_ms - 250.0).abs() <= 0.5, "{u:?}");
    }

    #[test]
    fn the_distribution_climbs_to_the_maximum_and_counts_every_request() {
        let mut stats = RunStats::default();
        for i in 1..=1000 {
            stats.record(&sample(i, 201, 0));
        }
        let points = distribution(&stats.corrected);
        let last = points.last().unwrap();
        assert_eq!(last.percentile, 100.0);
        assert_eq!(last.count, 1000);
        assert!((last.value_ms - 1000.0).abs() <= 1.0, "{last:?}");
        assert!(points.windows(2).all(|w| w[0].percentile <= w[1].percentile
            && w[0].value_ms <= w[1].value_ms
            && w[0].count <= w[1].count));
        // Five points per halving: 50 %, 75 %, 87.5 % … each reached within its tick.
        let at = |q: f64| points.iter().find(|p| p.percentile >= q).unwrap();
        assert!((at(50.0).value_ms - 500.0).abs() <= 1.0, "{:?}", at(50.0));
        assert!((at(99.0).value_ms - 990.0).abs() <= 2.0, "{:?}", at(99.0));
        assert!(distribution(&RunStats::default().corrected).is_empty());
    }

    #[test]
    fn merging_workers_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            RunStats::default(),
            RunStats::default(),
            RunStats::default(),
        );
        for i in 0..500u64 {
            let s = sample(i % 97 + 1, if i % 10 == 0 { 502 } else { 201 }, i / 100);
            all.record(&s);
            if i % 2 == 0 {
                a.record(&s)
            } else {
                b.record(&s)
            }
        }
        a.merge(&b);
        assert_eq!(a.corrected, all.corrected);
        assert_eq!(a.uncorrected, all.uncorrected);
        assert_eq!(a.statuses, all.statuses);
        assert_eq!(a.errors, all.errors);
        assert_eq!(a.requests(), 500);
        assert_eq!(a.failures(), 50);
        assert_eq!(a.statuses[&502], 50);
        assert_eq!(a.errors[&(ErrorKind::Server5xx, Some(502))], 50);
    }

    #[test]
    fn the_series_compacts_old_seconds_and_keeps_their_numbers() {
        let mut series = Series::new(Duration::from_secs(3), Duration::from_secs(2));
        for second in 0..1000u64 {
            for i in 0..10u64 {
                series.record(&sample(i + 1, if i == 0 { 503 } else { 201 }, second));
            }
            assert!(series.live_seconds() <= 6, "{}", series.live_seconds());
        }
        let seconds = series.seconds();
        assert_eq!(seconds.len(), 1000);
        assert!(seconds.iter().all(|s| s.requests == 10 && s.errors == 1));
        assert!(
            seconds.iter().all(|s| (s.p99_ms - 10.0).abs() < 0.1),
            "{:?}",
            &seconds[0]
        );
        // Latencies 1..=10 ms: the median is 5 ms (within the 2 significant digits' bucket).
        assert!(
            seconds.iter().all(|s| (s.p50_ms - 5.0).abs() < 0.1),
            "{:?}",
            &seconds[0]
        );
        let warmup: Vec<u64> = seconds
            .iter()
            .filter(|s| s.warmup)
            .map(|s| s.second)
            .collect();
        assert_eq!(warmup, [0, 1]);
        // A straggler for a compacted second is still counted.
        series.record(&sample(50, 201, 0));
        assert_eq!(series.seconds()[0].requests, 11);
    }

    #[test]
    fn statuses_map_to_the_taxonomy() {
        assert_eq!(ErrorKind::from_status(201), None);
        assert_eq!(ErrorKind::from_status(403), Some(ErrorKind::AuthDenied));
        assert_eq!(ErrorKind::from_status(429), Some(ErrorKind::Throttled));
        assert_eq!(ErrorKind::from_status(409), Some(ErrorKind::Client4xx));
        assert_eq!(ErrorKind::from_status(504), Some(ErrorKind::Server5xx));
    }
}
