//! The reports of a run's parts made one: counts added, latency histograms added (the
//! percentiles of the union of every part's requests, never an average of the parts'
//! percentiles), each second of the series merged the same way from the parts' per-second
//! histograms. Pure: reports in, a report out.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::hdr::{self, HdrError};
use crate::report::{Report, RunFacts};
use crate::stats::{second_histogram, RunStats, SecondStats};

/// One part's report and where its wave sits in the run's schedule.
#[derive(Clone, Debug)]
pub struct PartReport {
    /// The wave (1-based).
    pub wave: u32,
    /// Where the wave starts in the schedule: its seconds are the run's from there.
    pub schedule_from: Duration,
    /// The part's report.
    pub report: Report,
}

/// Why the parts' reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no runner answered with a report")]
    Nothing,
    /// A histogram that does not decode.
    #[error("runner {part}'s histograms: {error}")]
    Histogram {
        /// `wave/part`.
        part: String,
        /// Why.
        error: HdrError,
    },
    /// A part's series without its per-second histograms (a runner of another version).
    #[error("runner {0}'s series has no per-second histograms to merge")]
    NoSecondHistogram(String),
    /// A time that does not parse.
    #[error("runner {part}'s {field} {value:?} is not an RFC 3339 time")]
    Time {
        /// `wave/part`.
        part: String,
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

fn name(part: &PartReport) -> String {
    let partition = part
        .report
        .part
        .as_ref()
        .map_or("?", |p| p.partition.as_str());
    format!("{partition} of wave {}", part.wave)
}

/// The statistics of every part together: histograms, statuses and the error taxonomy.
fn stats_of(parts: &[PartReport]) -> Result<RunStats, MergeError> {
    let mut stats = RunStats::default();
    for part in parts {
        let histogram_error = |error| MergeError::Histogram {
            part: name(part),
            error,
        };
        let (corrected, uncorrected) =
            hdr::merge([&part.report.histograms]).map_err(histogram_error)?;
        let mut one = RunStats {
            corrected,
            uncorrected,
            ..RunStats::default()
        };
        for (status, count) in &part.report.statuses {
            if let Ok(status) = status.parse::<u16>() {
                one.statuses.insert(status, *count);
            }
        }
        for error in &part.report.errors {
            *one.errors.entry((error.kind, error.status)).or_default() += error.count;
        }
        stats.merge(&one);
    }
    Ok(stats)
}

/// The run's series: each part's seconds placed at its wave's offset, the parts' seconds that
/// coincide merged from their histograms.
fn series_of(parts: &[PartReport]) -> Result<Vec<SecondStats>, MergeError> {
    let mut seconds: BTreeMap<u64, (bool, u64, u64, hdrhistogram::Histogram<u64>)> =
        BTreeMap::new();
    for part in parts {
        let offset = part.schedule_from.as_secs();
        for second in &part.report.series {
            let encoded = second
                .histogram
                .as_deref()
                .ok_or_else(|| MergeError::NoSecondHistogram(name(part)))?;
            let histogram = hdr::decode(encoded).map_err(|error| MergeError::Histogram {
                part: name(part),
                error,
            })?;
            let entry = seconds
                .entry(offset + second.second)
                .or_insert_with(|| (false, 0, 0, second_histogram()));
            entry.0 |= second.warmup;
            entry.1 += second.requests;
            entry.2 += second.errors;
            entry.3.add(histogram).map_err(|e| MergeError::Histogram {
                part: name(part),
                error: HdrError::Add(e),
            })?;
        }
    }
    Ok(seconds
        .into_iter()
        .map(|(second, (warmup, requests, errors, h))| {
            SecondStats::of(second, warmup, requests, errors, &h, false)
        })
        .collect())
}

fn time(part: &PartReport, field: &'static str, value: &str) -> Result<SystemTime, MergeError> {
    humantime::parse_rfc3339_weak(value).map_err(|_| MergeError::Time {
        part: name(part),
        field,
        value: value.to_owned(),
    })
}

/// The measured length of the run: each wave's longest part, wave after wave.
fn measured_seconds(parts: &[PartReport]) -> f64 {
    let mut by_wave: BTreeMap<u32, f64> = BTreeMap::new();
    for part in parts {
        let longest = by_wave.entry(part.wave).or_default();
        *longest = longest.max(part.report.measured_seconds);
    }
    by_wave.values().sum()
}

/// Open loop: the rate dispatched, as one process counts it (n requests over the span from
/// the measured part's start to the last of them: n-1 intervals), from the parts' counts and
/// spans, the waves weighted by their spans. (Adding the parts' own rates would count N-1
/// intervals too few.)
fn dispatched_rps(parts: &[PartReport]) -> Option<f64> {
    let mut by_wave: BTreeMap<u32, (u64, f64)> = BTreeMap::new();
    for part in parts {
        let facts = part.report.part.as_ref()?;
        let (count, span) = (facts.dispatched_measured?, facts.dispatch_span_seconds?);
        let wave = by_wave.entry(part.wave).or_default();
        wave.0 += count;
        wave.1 = wave.1.max(span);
    }
    let rated: Vec<(f64, f64)> = by_wave
        .values()
        .filter(|(count, span)| *count > 1 && *span > 0.0)
        .map(|(count, span)| ((count - 1) as f64 / span, *span))
        .collect();
    let spans: f64 = rated.iter().map(|(_, span)| span).sum();
    (spans > 0.0).then(|| rated.iter().map(|(rate, span)| rate * span).sum::<f64>() / spans)
}

/// The report of every part together, described as `model`, the run's warm-up `warmup`.
pub fn merge(parts: &[PartReport], model: String, warmup: Duration) -> Result<Report, MergeError> {
    let first = parts.first().ok_or(MergeError::Nothing)?;
    let mut started_at = time(first, "started_at", &first.report.started_at)?;
    let mut ended_at = time(first, "ended_at", &first.report.ended_at)?;
    for part in parts {
        started_at = started_at.min(time(part, "started_at", &part.report.started_at)?);
        ended_at = ended_at.max(time(part, "ended_at", &part.report.ended_at)?);
    }
    let sum = |field: fn(&Report) -> u64| parts.iter().map(|p| field(&p.report)).sum::<u64>();
    let facts = RunFacts {
        run_id: first.report.run_id.clone(),
        scenario: first.report.scenario.clone(),
        target: first.report.target.clone(),
        model,
        started_at,
        ended_at,
        interrupted: parts.iter().any(|p| p.report.interrupted),
        sent: sum(|r| r.requests.sent),
        traced: sum(|r| r.requests.traced),
        warmup: sum(|r| r.requests.warmup),
        late: sum(|r| r.requests.late),
        dropped: sum(|r| r.requests.dropped),
        warmup_length: warmup,
        measured_seconds: measured_seconds(parts),
        dispatched_rps: dispatched_rps(parts),
        segments_not_sent: sum(|r| r.segments_not_sent),
        series: series_of(parts)?,
        part: None,
    };
    Ok(Report::new(facts, &stats_of(parts)?))
}
