//! `AWS/VpcLattice` metrics per minute, per Service and per TargetGroup (each with
//! AvailabilityZone), written as CloudWatch Embedded Metric Format lines — the form CloudWatch
//! turns into metrics when they reach a log group (CloudWatch guide, "Embedded metric format
//! specification").
//!
//! Names, units and dimensions are Lattice's (VPC Lattice guide, "CloudWatch metrics"):
//! `TotalRequestCount`, `RequestTime` (milliseconds), `RequestTimeoutCount`,
//! `HTTPCode_2XX_Count` … `HTTPCode_5XX_Count`. EMF has no way to state a percentile, so
//! `RequestTime` carries the minute's average and a `RequestTimeStatistics` property (not a
//! metric) carries avg, p50, p99 and max.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::network::LOCAL_AZ;

/// The namespace (not `AWS/VPC-Lattice`, not `AWS/VPCLattice`).
pub const NAMESPACE: &str = "AWS/VpcLattice";

/// What a metric line is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// `Service` = the service id.
    Service(String),
    /// `TargetGroup` = the target group id.
    TargetGroup(String),
}

impl Dimension {
    fn key(&self) -> (&'static str, &str) {
        match self {
            Self::Service(id) => ("Service", id),
            Self::TargetGroup(id) => ("TargetGroup", id),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    total: u64,
    by_class: [u64; 4],
    timeouts: u64,
    sum_us: u64,
    times_us: Histogram<u64>,
}

impl Bucket {
    fn new() -> Self {
        Self {
            total: 0,
            by_class: [0; 4],
            timeouts: 0,
            sum_us: 0,
            // 1 µs to 1 hour at 3 significant digits: a few tens of KiB per bucket.
            times_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

/// One request, as the metrics see it.
#[derive(Clone, Copy, Debug)]
pub struct RequestSample {
    /// Status sent to the caller.
    pub status: u16,
    /// Time from the first byte in to the last byte out.
    pub duration: Duration,
    /// Whether it ended in a target timeout.
    pub timed_out: bool,
    /// When it arrived.
    pub at: SystemTime,
}

/// Per-minute aggregation.
#[derive(Debug, Default)]
pub struct MetricsRecorder {
    buckets: Mutex<BTreeMap<(u64, Dimension), Bucket>>,
}

fn minute_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl MetricsRecorder {
    /// Counts `sample` under every dimension in `dimensions`.
    pub fn record(&self, dimensions: &[Dimension], sample: RequestSample) {
        let minute = minute_of(sample.at);
        let micros = u64::try_from(sample.duration.as_micros()).unwrap_or(u64::MAX);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for dimension in dimensions {
            let bucket = buckets
                .entry((minute, dimension.clone()))
                .or_insert_with(Bucket::new);
            bucket.total += 1;
            if (200..600).contains(&sample.status) {
                bucket.by_class[usize::from(sample.status / 100 - 2)] += 1;
            }
            bucket.timeouts += u64::from(sample.timed_out);
            bucket.sum_us = bucket.sum_us.saturating_add(micros);
            bucket.times_us.saturating_record(micros.max(1));
        }
    }

    /// EMF lines for every minute that ended before `now`, removed from the recorder.
    pub fn drain_completed(&self, now: SystemTime) -> Vec<String> {
        let current = minute_of(now);
        self.drain(|minute| minute < current)
    }

    /// EMF lines for everything recorded (at shutdown).
    pub fn drain_all(&self) -> Vec<String> {
        self.drain(|_| true)
    }

    fn drain(&self, take: impl Fn(u64) -> bool) -> Vec<String> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<(u64, Dimension)> =
            buckets.keys().filter(|(m, _)| take(*m)).cloned().collect();
        keys.into_iter()
            .filter_map(|key| {
                let bucket = buckets.remove(&key)?;
                Some(emf_line(key.0, &key.1, &bucket).to_string())
            })
            .collect()
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn emf_line(minute: u64, dimension: &Dimension, bucket: &Bucket) -> Value {
    let (dimension_name, dimension_value) = dimension.key();
    let average_us = bucket.sum_us.checked_div(bucket.total).unwrap_or(0);
    let metric = |name: &str, unit: &str| json!({"Name": name, "Unit": unit});
    json!({
        "_aws": {
            "Timestamp": minute * 60_000,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dimension_name, "AvailabilityZone"]],
                "Metrics": [
                    metric("TotalRequestCount", "Count"),
                    metric("RequestTime", "Milliseconds"),
                    metric("RequestTimeoutCount", "Count"),
                    metric("HTTPCode_2XX_Count", "Count"),
                    metric("HTTPCode_3XX_Count", "Count"),
                    metric("HTTPCode_4XX_Count", "Count"),
                    metric("HTTPCode_5XX_Count", "Count"),
                ],
            }],
        },
        dimension_name: dimension_value,
        "AvailabilityZone": LOCAL_AZ,
        "TotalRequestCount": bucket.total,
        "RequestTime": ms(average_us),
        "RequestTimeoutCount": bucket.timeouts,
        "HTTPCode_2XX_Count": bucket.by_class[0],
        "HTTPCode_3XX_Count": bucket.by_class[1],
        "HTTPCode_4XX_Count": bucket.by_class[2],
        "HTTPCode_5XX_Count": bucket.by_class[3],
        "RequestTimeStatistics": {
            "avg": ms(average_us),
            "p50": ms(bucket.times_us.value_at_quantile(0.50)),
            "p99": ms(bucket.times_us.value_at_quantile(0.99)),
            "max": ms(bucket.times_us.max()),
            "samples": bucket.total,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_aggregated_per_dimension_and_emitted_once_complete() {
        let recorder = MetricsRecorder::default();
        let minute = UNIX_EPOCH + Duration::from_secs(29_000_000 * 60);
        let service = Dimension::Service("svc-0123".into());
        let target = Dimension::TargetGroup("tg-0123".into());
        for (i, status) in [200u16, 201, 404, 502, 504].iter().enumerate() {
            recorder.record(
                &[service.clone(), target.clone()],
                RequestSample {
                    status: *status,
                    duration: Duration::from_millis(10 * (i as u64 + 1)),
                    timed_out: *status == 504,
                    at: minute + Duration::from_secs(i as u64),
                },
            );
        }
        // A denied request counts for the service only.
        recorder.record(
            std::slice::from_ref(&service),
            RequestSample {
                status: 403,
                duration: Duration::from_millis(1),
                timed_out: false,
                at: minute,
            },
        );
        assert!(recorder
            .drain_completed(minute + Duration::from_secs(59))
            .is_empty());
        let lines = recorder.drain_completed(minute + Duration::from_secs(60));
        assert_eq!(lines.len(), 2);
        assert!(
            recorder.drain_all().is_empty(),
            "each minute is emitted once"
        );
        let service_line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(service_line["_aws"]["Timestamp"], 29_000_000u64 * 60_000);
        assert_eq!(
            service_line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "AWS/VpcLattice"
        );
        assert_eq!(
            service_line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Service", "AvailabilityZone"]])
        );
        assert_eq!(service_line["Service"], "svc-0123");
        assert_eq!(service_line["TotalRequestCount"], 6);
        assert_eq!(service_line["HTTPCode_2XX_Count"], 2);
        assert_eq!(service_line["HTTPCode_4XX_Count"], 2);
        assert_eq!(service_line["HTTPCode_5XX_Count"], 2);
        assert_eq!(service_line["RequestTimeoutCount"], 1);
        // (10+20+30+40+50+1)/6 ms.
        assert_eq!(service_line["RequestTime"], 25.166);
        let target_line: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(target_line["TargetGroup"], "tg-0123");
        assert_eq!(target_line["TotalRequestCount"], 5);
        let p99 = target_line["RequestTimeStatistics"]["p99"]
            .as_f64()
            .unwrap();
        assert!((49.9..=50.1).contains(&p99), "{p99}");
        // Every declared metric is present as a number.
        for metric in service_line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = metric["Name"].as_str().unwrap();
            assert!(service_line[name].is_number(), "{name}");
        }
    }
}
