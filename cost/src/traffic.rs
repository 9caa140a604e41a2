//! How each service performed over the window, beside what it used: the access log's latency
//! distribution and status classes, bytes each way, and from the Lambda reports the cold starts
//! and the peak memory against the configured size (what memory right-sizing reads).
//!
//! Latency is either recorded here, entry by entry (the local access log), or reported as
//! percentiles by a source that computed them (CloudWatch's `RequestTime` p50/p90/p99).

use hdrhistogram::Histogram;

use serde::Serialize;

/// Requests, latency and statuses of one Lattice service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatticeMetrics {
    /// `TotalRequestCount`.
    pub requests: u64,
    /// `RequestTime` p50, p90, p99 in ms; `None` without requests.
    pub p50_ms: Option<f64>,
    /// 〃
    pub p90_ms: Option<f64>,
    /// 〃
    pub p99_ms: Option<f64>,
    /// Requests by status class (`HTTPCode_2XX_Count` … `HTTPCode_5XX_Count` on AWS, which
    /// publishes no 1XX or 3XX count): index 1 is 1xx … 5 is 5xx; 0 holds
    /// responses of no class (no response at all).
    pub status_classes: [u64; 6],
}

/// A service's latency.
#[derive(Clone, Debug)]
pub enum Latency {
    /// Every request's duration (ms), 1 ms to 1 hour at 3 significant figures.
    Recorded(Histogram<u64>),
    /// Percentiles a source computed, ms.
    Reported {
        /// p50.
        p50: Option<f64>,
        /// p90.
        p90: Option<f64>,
        /// p99.
        p99: Option<f64>,
    },
}

/// One service's performance.
#[derive(Clone, Debug)]
pub struct ServiceTraffic {
    /// Request latency.
    pub latency: Latency,
    /// Requests by status class: index 1 is 1xx … 5 is 5xx; 0 holds anything else.
    pub status_classes: [u64; 6],
    /// `bytesReceived`.
    pub bytes_in: u64,
    /// `bytesSent`.
    pub bytes_out: u64,
    /// Reports with an init duration.
    pub cold_starts: u64,
    /// Lambda reports seen.
    pub reports: u64,
    /// The highest `Max Memory Used`.
    pub max_memory_used_mb: u32,
    /// The configured memory (the highest seen, should it change mid-window).
    pub memory_mb: u32,
}

impl Default for ServiceTraffic {
    fn default() -> Self {
        Self {
            latency: Latency::Recorded(
                Histogram::new_with_bounds(1, 3_600_000, 3)
                    .expect("static histogram bounds are valid"),
            ),
            status_classes: [0; 6],
            bytes_in: 0,
            bytes_out: 0,
            cold_starts: 0,
            reports: 0,
            max_memory_used_mb: 0,
            memory_mb: 0,
        }
    }
}

impl ServiceTraffic {
    /// One access-log entry's figures.
    pub fn add_request(&mut self, duration_ms: u64, status: u64, bytes_in: u64, bytes_out: u64) {
        if let Latency::Recorded(histogram) = &mut self.latency {
            histogram.saturating_record(duration_ms.max(1));
        }
        let class = (status / 100) as usize;
        self.status_classes[if (1..=5).contains(&class) { class } else { 0 }] += 1;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
    }

    /// One Lambda report's figures.
    pub fn add_report(&mut self, cold: bool, max_memory_used_mb: u32, memory_mb: u32) {
        self.reports += 1;
        self.cold_starts += u64::from(cold);
        self.max_memory_used_mb = self.max_memory_used_mb.max(max_memory_used_mb);
        self.memory_mb = self.memory_mb.max(memory_mb);
    }

    /// A source's metrics: its percentiles and status classes replace what was recorded.
    pub fn set_metrics(&mut self, metrics: &LatticeMetrics) {
        self.latency = Latency::Reported {
            p50: metrics.p50_ms,
            p90: metrics.p90_ms,
            p99: metrics.p99_ms,
        };
        self.status_classes = metrics.status_classes;
    }

    /// Requests seen.
    pub fn requests(&self) -> u64 {
        self.status_classes.iter().sum()
    }

    /// The share of requests in status class `class` (2 for 2xx), in percent.
    pub fn status_percent(&self, class: usize) -> f64 {
        percent(self.status_classes[class], self.requests())
    }

    /// The share of reports that were cold starts, in percent.
    pub fn cold_start_percent(&self) -> f64 {
        percent(self.cold_starts, self.reports)
    }

    /// The latency at `quantile` (0.5 for p50), in ms; `None` with no requests, or when a
    /// source reported other percentiles than this one.
    pub fn latency_at(&self, quantile: f64) -> Option<f64> {
        match &self.latency {
            Latency::Recorded(histogram) => {
                (!histogram.is_empty()).then(|| histogram.value_at_quantile(quantile) as f64)
            }
            Latency::Reported { p50, p90, p99 } => match quantile {
                0.5 => *p50,
                0.9 => *p90,
                0.99 => *p99,
                _ => None,
            },
        }
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_latency_and_cold_starts_are_counted() {
        let mut traffic = ServiceTraffic::default();
        for (ms, status) in [(10, 201), (20, 201), (30, 404), (1000, 503)] {
            traffic.add_request(ms, status, 100, 200);
        }
        assert_eq!(traffic.requests(), 4);
        assert_eq!(traffic.status_percent(2), 50.0);
        assert_eq!(traffic.status_percent(4), 25.0);
        assert_eq!(traffic.status_percent(5), 25.0);
        assert_eq!((traffic.bytes_in, traffic.bytes_out), (400, 800));
        assert_eq!(traffic.latency_at(0.5), Some(20.0));
        assert_eq!(traffic.latency_at(0.99), Some(1000.0));
        traffic.add_report(true, 30, 128);
        traffic.add_report(false, 41, 128);
        traffic.add_report(false, 35, 128);
        assert_eq!((traffic.max_memory_used_mb, traffic.memory_mb), (41, 128));
        assert!((traffic.cold_start_percent() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(ServiceTraffic::default().latency_at(0.5), None);
    }

    #[test]
    fn reported_metrics_replace_the_recorded_percentiles_and_statuses() {
        let mut traffic = ServiceTraffic::default();
        traffic.add_request(10, 201, 100, 200);
        traffic.set_metrics(&LatticeMetrics {
            requests: 7,
            p50_ms: Some(12.5),
            p90_ms: Some(30.0),
            p99_ms: None,
            status_classes: [0, 0, 6, 0, 0, 1],
        });
        assert_eq!(traffic.latency_at(0.5), Some(12.5));
        assert_eq!(traffic.latency_at(0.9), Some(30.0));
        assert_eq!(traffic.latency_at(0.99), None);
        assert_eq!(traffic.latency_at(0.75), None, "not among the reported");
        assert_eq!(traffic.requests(), 7);
        assert_eq!(
            (traffic.bytes_in, traffic.bytes_out),
            (100, 200),
            "bytes stay"
        );
    }
}
