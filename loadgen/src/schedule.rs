//! When each request should start. Open-loop runs give request `i` the intended start
//! `t0 + offset(i)`; latency is measured from that instant, so a slow system cannot hide its
//! queueing by slowing the sender (wrk2's coordinated-omission correction). Stages ramp the rate
//! piecewise (`50/s:30s,200/s:60s`, k6-style).

use std::time::Duration;

/// One constant-rate stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// Requests per second.
    pub rate: f64,
    /// How long; `None` for the last stage of a run bounded by `--orders` or `--duration`.
    pub duration: Option<Duration>,
}

/// Why a `--stages` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--stages: {0} (expected e.g. 50/s:30s,200/s:60s)")]
pub struct StageError(String);

/// Parses `RATE/s:DURATION[,…]`.
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, StageError> {
    text.split(',')
        .map(|part| {
            let (rate, duration) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| StageError(format!("{part:?} has no ':'")))?;
            let rate = rate
                .strip_suffix("/s")
                .ok_or_else(|| StageError(format!("{rate:?} must end in /s")))?
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| StageError(format!("{rate:?} is not a positive rate")))?;
            let duration = humantime::parse_duration(duration)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| StageError(format!("{duration:?} is not a duration")))?;
            Ok(Stage {
                rate,
                duration: Some(duration),
            })
        })
        .collect()
}

/// The open-loop schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    stages: Vec<Stage>,
}

impl Schedule {
    /// A schedule over `stages` (an empty list never schedules anything).
    pub fn new(stages: Vec<Stage>) -> Self {
        Self { stages }
    }

    /// One rate for ever (bounded by the caller's `--orders`/`--duration`).
    pub fn constant(rate: f64) -> Self {
        Self::new(vec![Stage {
            rate,
            duration: None,
        }])
    }

    /// Total length, when every stage has one.
    pub fn length(&self) -> Option<Duration> {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Intended start of request `index` after `t0`, or `None` past the last stage.
    pub fn offset(&self, index: u64) -> Option<Duration> {
        let mut before = 0.0f64; // requests scheduled by earlier stages
        let mut start = Duration::ZERO;
        let wanted = index as f64;
        for stage in &self.stages {
            match stage.duration {
                None => {
                    return Some(start + Duration::from_secs_f64((wanted - before) / stage.rate))
                }
                Some(length) => {
                    let count = stage.rate * length.as_secs_f64();
                    if wanted < before + count {
                        return Some(
                            start + Duration::from_secs_f64((wanted - before) / stage.rate),
                        );
                    }
                    before += count;
                    start += length;
                }
            }
        }
        None
    }

    /// The first request whose intended start is at or after `from`: where a later wave of a
    /// run split in time ([`crate::fanout`]) picks the schedule up. Past the schedule's end, the
    /// index one past its last request.
    pub fn first_at(&self, from: Duration) -> u64 {
        if from.is_zero() {
            return 0;
        }
        let starts_before = |index: u64| self.offset(index).is_some_and(|o| o < from);
        // Offsets grow with the index: widen until past `from`, then bisect.
        let mut high = 1u64;
        while starts_before(high) {
            high = high.saturating_mul(2);
        }
        let mut low = 0u64;
        while low < high {
            let middle = low + (high - low) / 2;
            if starts_before(middle) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_spaces_requests_evenly() {
        let schedule = Schedule::constant(200.0);
        assert_eq!(schedule.offset(0), Some(Duration::ZERO));
        assert_eq!(schedule.offset(1), Some(Duration::from_millis(5)));
        assert_eq!(schedule.offset(1000), Some(Duration::from_secs(5)));
        assert_eq!(schedule.length(), None);
    }

    #[test]
    fn stages_ramp_and_end() {
        let schedule = Schedule::new(parse_stages("10/s:2s, 100/s:1s").unwrap());
        assert_eq!(schedule.length(), Some(Duration::from_secs(3)));
        assert_eq!(schedule.offset(19), Some(Duration::from_millis(1900)));
        // The 21st request is the first of stage two.
        assert_eq!(schedule.offset(20), Some(Duration::from_secs(2)));
        assert_eq!(schedule.offset(21), Some(Duration::from_millis(2010)));
        assert_eq!(schedule.offset(119), Some(Duration::from_millis(2990)));
        assert_eq!(schedule.offset(120), None);
        // Exactly rate × duration requests per stage.
        let count = (0..).take_while(|i| schedule.offset(*i).is_some()).count();
        assert_eq!(count, 120);
    }

    #[test]
    fn a_later_wave_picks_the_schedule_up_at_its_first_request() {
        let schedule = Schedule::new(parse_stages("10/s:2s, 100/s:1s").unwrap());
        assert_eq!(schedule.first_at(Duration::ZERO), 0);
        assert_eq!(schedule.first_at(Duration::from_millis(50)), 1);
        assert_eq!(schedule.first_at(Duration::from_secs(1)), 10);
        assert_eq!(schedule.first_at(Duration::from_secs(2)), 20);
        assert_eq!(schedule.first_at(Duration::from_millis(2_005)), 21);
        assert_eq!(
            schedule.first_at(Duration::from_secs(60)),
            120,
            "past the end"
        );
        // Every index is in exactly one of two consecutive windows.
        let constant = Schedule::constant(333.0);
        let split = constant.first_at(Duration::from_secs(7));
        assert!(constant.offset(split).unwrap() >= Duration::from_secs(7));
        assert!(constant.offset(split - 1).unwrap() < Duration::from_secs(7));
    }

    #[test]
    fn bad_stages_are_refused_with_the_reason() {
        for bad in [
            "",
            "50:30s",
            "50/s",
            "0/s:1s",
            "-5/s:1s",
            "50/s:0s",
            "50/s:soon",
        ] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_stages("x/s:1s").unwrap_err().to_string(),
            "--stages: \"x/s\" is not a positive rate (expected e.g. 50/s:30s,200/s:60s)"
        );
    }
}
