//! How a run is shared out: into waves in time (each at most one runner invocation long) and,
//! in each wave, into `--runners` parts ([`Partition`]). Pure: the options in, each
//! invocation's options out.

use std::time::{Duration, SystemTime};

use crate::cli::RunArgs;
use crate::driver::LoadModel;
use crate::partition::Partition;

/// Where a closed loop's wave `w` (1-based) counts its order indexes from: `(w-1) × 2^40`.
/// A closed loop's parts send as many orders as they can, and a runner that dies answers no
/// count, so a later wave cannot start where the last one ended; far apart, no order is sent
/// twice. (An open loop's indexes follow the schedule, wave after wave.)
pub const CLOSED_WAVE_STRIDE: u64 = 1 << 40;

/// One wave: a window of the run's schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    /// 1-based.
    pub number: u32,
    /// Where in the schedule it starts.
    pub schedule_from: Duration,
    /// Its warm-up (the first wave's only).
    pub warmup: Duration,
    /// How long it measures; `None` when the run is bounded by its orders or stages alone.
    pub duration: Option<Duration>,
}

/// Why a run cannot be shared out as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Fewer closed-loop workers than runners.
    #[error("--concurrency {concurrency} cannot be shared between {runners} runners: each needs a worker at least")]
    TooFewWorkers {
        /// Workers asked for.
        concurrency: usize,
        /// Runners asked for.
        runners: u32,
    },
    /// The warm-up does not fit in a wave.
    #[error("the warm-up ({warmup}) must be shorter than a wave ({wave})")]
    WarmupTooLong {
        /// The warm-up.
        warmup: String,
        /// The wave length.
        wave: String,
    },
    /// A closed loop split into waves cannot also be bounded by an order count.
    #[error("a closed loop longer than one wave is bounded by --duration alone, not --orders (how many orders each wave's runners send is not known before it ends)")]
    ClosedWavesWithOrders,
    /// A wave, its start lead and the requests' timeout do not fit in one invocation.
    #[error("a wave of {wave} with --start-lead {lead} and --timeout {timeout} does not fit in a runner invocation (15 min, less 30 s for its start and answer)")]
    WaveTooLong {
        /// The wave length.
        wave: String,
        /// The start lead.
        lead: String,
        /// The requests' timeout.
        timeout: String,
    },
    /// The options already name a part.
    #[error("--partition and --start-at are set on each runner by --runner; leave them out")]
    AlreadyAPart,
}

/// What one runner invocation may take: Lambda's 15 minutes less 30 s for the runner's start
/// and its answer.
const INVOCATION_BUDGET: Duration = Duration::from_secs(15 * 60 - 30);

/// The run's length in schedule time (warm-up included), when its options bound it in time:
/// `--duration`, the stages' end, or (open loop) the scheduled start of the last of `--orders`,
/// whichever comes first. A closed loop bounded by `--orders` alone has no length known ahead.
fn length(args: &RunArgs) -> Option<Duration> {
    let by_duration = args.duration.map(|duration| args.warmup + duration);
    let (by_schedule, by_orders) = match args.model() {
        LoadModel::Open { schedule, .. } => (
            schedule.length(),
            args.orders
                .and_then(|n| schedule.offset(n.checked_sub(1)?))
                .map(|last| last + Duration::from_millis(1)),
        ),
        LoadModel::Closed { .. } => (None, None),
    };
    [by_duration, by_schedule, by_orders]
        .into_iter()
        .flatten()
        .min()
}

/// The waves of the run `args` describes: one unless it is longer than `--wave-length`.
pub fn waves(args: &RunArgs) -> Result<Vec<Wave>, PlanError> {
    if args.partition.is_some() || args.start_at.is_some() {
        return Err(PlanError::AlreadyAPart);
    }
    if let LoadModel::Closed { concurrency } = args.model() {
        if concurrency < args.runners as usize {
            return Err(PlanError::TooFewWorkers {
                concurrency,
                runners: args.runners,
            });
        }
    }
    let wave = args.wave_length;
    if wave + args.start_lead + args.timeout > INVOCATION_BUDGET {
        return Err(PlanError::WaveTooLong {
            wave: humantime::format_duration(wave).to_string(),
            lead: humantime::format_duration(args.start_lead).to_string(),
            timeout: humantime::format_duration(args.timeout).to_string(),
        });
    }
    let total = match length(args) {
        Some(total) if total > wave => total,
        _ => {
            return Ok(vec![Wave {
                number: 1,
                schedule_from: Duration::ZERO,
                warmup: args.warmup,
                duration: args.duration,
            }])
        }
    };
    if args.warmup >= wave {
        return Err(PlanError::WarmupTooLong {
            warmup: humantime::format_duration(args.warmup).to_string(),
            wave: humantime::format_duration(wave).to_string(),
        });
    }
    if matches!(args.model(), LoadModel::Closed { .. }) && args.orders.is_some() {
        return Err(PlanError::ClosedWavesWithOrders);
    }
    let mut waves = Vec::new();
    let mut from = Duration::ZERO;
    while from < total {
        let end = (from + wave).min(total);
        let number = waves.len() as u32 + 1;
        let warmup = if number == 1 {
            args.warmup
        } else {
            Duration::ZERO
        };
        waves.push(Wave {
            number,
            schedule_from: from,
            warmup,
            duration: Some(end - from - warmup),
        });
        from = end;
    }
    Ok(waves)
}

/// The options runner `partition` of `wave` runs with, from the shared start time `start_at`.
pub fn part_args(
    args: &RunArgs,
    run_id: &str,
    wave: &Wave,
    partition: Partition,
    start_at: SystemTime,
) -> RunArgs {
    let mut part = args.clone();
    part.runner = None;
    part.run_id = Some(run_id.to_owned());
    part.partition = Some(partition);
    part.start_at = Some(start_at);
    part.warmup = wave.warmup;
    part.duration = wave.duration;
    part.orders = args.orders_limit();
    part.max_inflight = partition.share(args.max_inflight).max(1);
    match args.model() {
        LoadModel::Closed { concurrency } => {
            part.concurrency = Some(partition.share(concurrency));
            part.first_index = u64::from(wave.number - 1) * CLOSED_WAVE_STRIDE;
        }
        LoadModel::Open { .. } => part.schedule_from = wave.schedule_from,
    }
    part
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::tests::args;

    #[test]
    fn a_run_within_one_invocation_is_one_wave() {
        let run = args(&["--rate", "100", "--duration", "10m", "--warmup", "30s"]);
        assert_eq!(
            waves(&run).unwrap(),
            [Wave {
                number: 1,
                schedule_from: Duration::ZERO,
                warmup: Duration::from_secs(30),
                duration: Some(Duration::from_secs(600)),
            }]
        );
        assert_eq!(waves(&args(&["--orders", "100"])).unwrap().len(), 1);
    }

    #[test]
    fn a_longer_run_is_consecutive_waves_covering_its_schedule_once() {
        let run = args(&["--rate", "100", "--duration", "30m", "--warmup", "1m"]);
        let planned = waves(&run).unwrap();
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            planned,
            [
                Wave {
                    number: 1,
                    schedule_from: Duration::ZERO,
                    warmup: minutes(1),
                    duration: Some(minutes(13)),
                },
                Wave {
                    number: 2,
                    schedule_from: minutes(14),
                    warmup: Duration::ZERO,
                    duration: Some(minutes(14)),
                },
                Wave {
                    number: 3,
                    schedule_from: minutes(28),
                    warmup: Duration::ZERO,
                    duration: Some(minutes(3)),
                },
            ]
        );
        let measured: Duration = planned.iter().filter_map(|w| w.duration).sum();
        assert_eq!(measured, minutes(30));
        // Stages bound the run too.
        let staged = args(&["--stages", "10/s:10m,50/s:10m", "--wave-length", "10m"]);
        assert_eq!(waves(&staged).unwrap().len(), 2);
        // So does an open loop's --orders: 2,000 orders at 1/s start over 33 min 20 s.
        let counted = args(&["--rate", "1", "--orders", "2000"]);
        let planned = waves(&counted).unwrap();
        assert_eq!(planned.len(), 3);
        assert_eq!(planned[2].schedule_from, minutes(28));
        assert_eq!(
            planned[2].duration,
            Some(Duration::from_millis(1999 * 1000 + 1) - minutes(28))
        );
        // ...and the waves stop where the orders do, before --duration would.
        let both = args(&["--rate", "10", "--orders", "100", "--duration", "1h"]);
        assert_eq!(waves(&both).unwrap().len(), 1);
    }

    #[test]
    fn each_part_gets_its_share_and_the_shared_start() {
        let run = args(&["--concurrency", "10", "--runners", "4", "--orders", "1000"]);
        let wave = &waves(&run).unwrap()[0];
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let parts: Vec<RunArgs> = (1..=4)
            .map(|k| part_args(&run, "r-1", wave, Partition::new(k, 4).unwrap(), start))
            .collect();
        let workers: Vec<usize> = parts.iter().map(|p| p.concurrency.unwrap()).collect();
        assert_eq!(workers, [3, 3, 2, 2]);
        assert!(parts.iter().all(|p| p.orders == Some(1000)
            && p.start_at == Some(start)
            && p.run_id.as_deref() == Some("r-1")
            && p.runner.is_none()));
        assert_eq!(parts[1].partition, Some(Partition::new(2, 4).unwrap()));
        assert_eq!(parts[0].max_inflight, 250);
        // A later closed-loop wave counts from its own index range.
        let long = args(&["--concurrency", "4", "--runners", "2", "--duration", "20m"]);
        let second = &waves(&long).unwrap()[1];
        let part = part_args(&long, "r", second, Partition::new(1, 2).unwrap(), start);
        assert_eq!(part.first_index, CLOSED_WAVE_STRIDE);
        assert_eq!(part.orders, None);
        // A later open-loop wave picks the schedule up where the last ended.
        let open = args(&["--rate", "50", "--runners", "2", "--duration", "20m"]);
        let second = &waves(&open).unwrap()[1];
        let part = part_args(&open, "r", second, Partition::new(2, 2).unwrap(), start);
        assert_eq!(part.schedule_from, Duration::from_secs(14 * 60));
        assert_eq!(part.first_index, 0);
    }

    #[test]
    fn runs_that_cannot_be_shared_out_are_refused_with_the_reason() {
        assert_eq!(
            waves(&args(&["--concurrency", "2", "--runners", "4"])),
            Err(PlanError::TooFewWorkers {
                concurrency: 2,
                runners: 4
            })
        );
        assert!(matches!(
            waves(&args(&[
                "--rate",
                "5",
                "--duration",
                "1h",
                "--warmup",
                "15m"
            ])),
            Err(PlanError::WarmupTooLong { .. })
        ));
        assert_eq!(
            waves(&args(&[
                "--concurrency",
                "8",
                "--duration",
                "1h",
                "--orders",
                "9"
            ])),
            Err(PlanError::ClosedWavesWithOrders)
        );
        assert_eq!(
            waves(&args(&["--partition", "1/2"])),
            Err(PlanError::AlreadyAPart)
        );
        assert!(matches!(
            waves(&args(&["--wave-length", "14m", "--timeout", "1m"])),
            Err(PlanError::WaveTooLong { .. })
        ));
    }
}
