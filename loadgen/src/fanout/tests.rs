use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Parser;
use rand::{Rng, SeedableRng};

use super::*;
use crate::cli::Cli;
use crate::report::{PartFacts, RunFacts};
use crate::stats::{ErrorKind, RunStats, Sample, Series};

/// A fan-out run's arguments: `loadgen --runner loadgen-runner` and `extra`.
pub(super) fn args(extra: &[&str]) -> RunArgs {
    Cli::try_parse_from(
        ["loadgen", "--runner", "loadgen-runner"]
            .iter()
            .chain(extra),
    )
    .unwrap()
    .run
}

/// A run's requests: latencies over three orders of magnitude, one in 20 a 503, over 6 s.
fn samples(count: u64, seed: u64) -> Vec<(u64, Sample)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|index| {
            let corrected = Duration::from_micros(rng.random_range(200..200_000));
            let status = if index % 20 == 7 { 503 } else { 201 };
            let sample = Sample {
                corrected,
                uncorrected: corrected / 2,
                status: Some(status),
                error: ErrorKind::from_status(status),
                second: index * 6 / count,
            };
            (index, sample)
        })
        .collect()
}

/// The report a part (or, with `partition` `None`, the whole run) would make of `samples`.
fn report_of(samples: &[(u64, Sample)], partition: Option<Partition>, run_id: &str) -> Report {
    let mut stats = RunStats::default();
    let mut series = Series::new(Duration::from_secs(10), Duration::ZERO).keeping_histograms();
    let mine: Vec<&Sample> = samples
        .iter()
        .filter(|(index, _)| partition.is_none_or(|p| p.owns(*index)))
        .map(|(_, s)| s)
        .collect();
    for sample in &mine {
        stats.record(sample);
        series.record(sample);
    }
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    Report::new(
        RunFacts {
            run_id: run_id.to_owned(),
            scenario: "steady".into(),
            target: "https://order.example/orders".into(),
            model: "closed 8".into(),
            started_at: start,
            ended_at: start + Duration::from_secs(6),
            interrupted: false,
            sent: mine.len() as u64,
            traced: mine.len() as u64,
            warmup: 0,
            late: 0,
            dropped: 0,
            warmup_length: Duration::ZERO,
            measured_seconds: 6.0,
            dispatched_rps: None,
            segments_not_sent: 0,
            series: series.seconds(),
            part: partition.map(|p| PartFacts {
                partition: p.to_string(),
                start_at: humantime::format_rfc3339_millis(start).to_string(),
                start_lag_ms: 0.0,
                schedule_from_seconds: 0.0,
                first_index: 0,
                dispatched_measured: None,
                dispatch_span_seconds: None,
            }),
        },
        &stats,
    )
}

#[test]
fn four_parts_merge_to_exactly_the_whole_run() {
    let all = samples(20_000, 3);
    let whole = report_of(&all, None, "r-1");
    let parts: Vec<PartReport> = (1..=4)
        .map(|k| PartReport {
            wave: 1,
            schedule_from: Duration::ZERO,
            report: report_of(&all, Some(Partition::new(k, 4).unwrap()), "r-1"),
        })
        .collect();
    let merged = merge::merge(&parts, "closed 8 over 4 runners".into(), Duration::ZERO).unwrap();

    assert_eq!(
        crate::hdr::decode(&merged.histograms.corrected).unwrap(),
        crate::hdr::decode(&whole.histograms.corrected).unwrap()
    );
    assert_eq!(
        crate::hdr::decode(&merged.histograms.uncorrected).unwrap(),
        crate::hdr::decode(&whole.histograms.uncorrected).unwrap()
    );
    assert_eq!(merged.latency, whole.latency);
    assert_eq!(merged.requests, whole.requests);
    assert_eq!(merged.statuses, whole.statuses);
    assert_eq!(merged.statuses["503"], 1_000);
    assert_eq!(merged.errors, whole.errors);
    // Every second merged from the parts' histograms: the whole run's counts and percentiles.
    let strip = |series: &[crate::stats::SecondStats]| -> Vec<_> {
        series
            .iter()
            .map(|s| (s.second, s.requests, s.errors, s.p50_ms, s.p99_ms))
            .collect()
    };
    assert_eq!(strip(&merged.series), strip(&whole.series));
    assert_eq!(merged.series.len(), 6);
    assert!(merged.series.iter().all(|s| s.histogram.is_none()));
    // The average of the parts' p99s is a different number.
    let mean_p99 = parts
        .iter()
        .map(|p| p.report.latency.corrected.p99_ms)
        .sum::<f64>()
        / 4.0;
    assert_ne!(mean_p99, merged.latency.corrected.p99_ms);
    assert_eq!(merged.model, "closed 8 over 4 runners");
}

#[test]
fn a_part_without_per_second_histograms_is_refused() {
    let all = samples(100, 1);
    let mut report = report_of(&all, Some(Partition::new(1, 1).unwrap()), "r");
    report.series[0].histogram = None;
    let part = PartReport {
        wave: 1,
        schedule_from: Duration::ZERO,
        report,
    };
    let error = merge::merge(&[part], String::new(), Duration::ZERO).unwrap_err();
    assert_eq!(
        error.to_string(),
        "runner 1/1 of wave 1's series has no per-second histograms to merge"
    );
}

/// A fake runner function: answers each part's report from `all`, except the parts in `lost`,
/// which end with the error given; records the options each invocation got.
fn fake_runners(
    all: Vec<(u64, Sample)>,
    lost: Vec<(u32, RunnerError)>,
    seen: Arc<Mutex<Vec<RunArgs>>>,
) -> impl Fn(RunArgs) -> std::pin::Pin<Box<dyn Future<Output = Result<Report, RunnerError>> + Send>>
{
    let lost = Arc::new(Mutex::new(lost));
    move |part: RunArgs| {
        seen.lock().unwrap().push(part.clone());
        let partition = part.partition.unwrap();
        let mut lost = lost.lock().unwrap();
        let answer = match lost.iter().position(|(k, _)| *k == partition.number()) {
            Some(at) => Err(lost.remove(at).1),
            None => Ok(report_of(
                &all,
                Some(partition),
                part.run_id.as_deref().unwrap(),
            )),
        };
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn every_runner_gets_its_part_and_a_runner_that_died_is_named() {
    let load = args(&[
        "--runners",
        "4",
        "--concurrency",
        "8",
        "--orders",
        "20000",
        "--run-id",
        "r-9",
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let died = RunnerError::Failed(
        "Unhandled error: Runtime.ExitError: Runtime exited: signal: 9 (SIGKILL)".into(),
    );
    let invoke = fake_runners(samples(20_000, 5), vec![(3, died)], Arc::clone(&seen));
    let report = run(&load, "loadgen-runner", invoke, |_| {}).await.unwrap();

    let seen = seen.lock().unwrap();
    let mut partitions: Vec<String> = seen
        .iter()
        .map(|a| a.partition.unwrap().to_string())
        .collect();
    partitions.sort();
    assert_eq!(partitions, ["1/4", "2/4", "3/4", "4/4"]);
    assert!(seen.iter().all(|a| a.start_at == seen[0].start_at
        && a.start_at.is_some()
        && a.run_id.as_deref() == Some("r-9")
        && a.concurrency == Some(2)
        && a.orders == Some(20_000)));

    let fanout = report.fanout.as_ref().unwrap();
    assert_eq!(
        (fanout.answered, fanout.failed, fanout.timed_out),
        (3, 1, 0)
    );
    assert!(!fanout.complete());
    let dead = &fanout.invocations[2];
    assert_eq!(
        (dead.partition.as_str(), dead.outcome),
        ("3/4", Outcome::Failed)
    );
    assert_eq!(
        dead.message.as_deref(),
        Some("the run failed: Unhandled error: Runtime.ExitError: Runtime exited: signal: 9 (SIGKILL)")
    );
    assert_eq!(dead.figures, None);
    // The figures are the three answering parts' requests, exactly.
    assert_eq!(report.requests.measured, 15_000);
    let answered: u64 = fanout
        .invocations
        .iter()
        .filter_map(|l| l.figures.as_ref().map(|f| f.measured))
        .sum();
    assert_eq!(answered, 15_000);
    assert_eq!(report.model, "closed 8 over 4 runners");
    let text = report.render();
    assert!(text.contains("runners: 4 × loadgen-runner;"), "{text}");
    assert!(
        text.contains("1 of 4 runner invocations failed and 0 timed out: their requests are NOT in these figures"),
        "{text}"
    );
    assert!(
        text.contains(
            "   1 3/4       FAILED    the run failed: Unhandled error: Runtime.ExitError"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_timed_out_runner_is_told_apart_and_no_answer_at_all_is_an_error() {
    let load = args(&["--runners", "2", "--rate", "100", "--orders", "400"]);
    let timed_out = RunnerError::TimedOut(
        "Unhandled error: RequestId: r-1 Error: Task timed out after 900.00 seconds".into(),
    );
    let sdk_timeout = RunnerError::TimedOut("no answer from loadgen-runner within 930 s".into());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let invoke = fake_runners(samples(400, 1), vec![(2, timed_out)], Arc::clone(&seen));
    let report = run(&load, "loadgen-runner", invoke, |_| {}).await.unwrap();
    let fanout = report.fanout.unwrap();
    assert_eq!(
        (fanout.answered, fanout.failed, fanout.timed_out),
        (1, 0, 1)
    );
    assert_eq!(fanout.invocations[1].outcome, Outcome::TimedOut);
    assert!(seen.lock().unwrap().iter().all(|a| a.max_inflight == 500));

    let refused = RunnerError::Refused("--json".into());
    let invoke = fake_runners(
        samples(400, 1),
        vec![(1, refused), (2, sdk_timeout)],
        Arc::new(Mutex::new(Vec::new())),
    );
    let error = run(&load, "loadgen-runner", invoke, |_| {})
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no runner answered (2 invoked): the runner does not take --json: it runs against its own stack's order service and returns the report instead of writing files"
    );
}

#[tokio::test]
async fn a_run_longer_than_a_wave_runs_in_waves_and_their_seconds_follow_each_other() {
    let load = args(&[
        "--runners",
        "2",
        "--rate",
        "50",
        "--duration",
        "8s",
        "--wave-length",
        "4s",
        "--start-lead",
        "0s",
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let invoke = fake_runners(samples(400, 2), Vec::new(), Arc::clone(&seen));
    let report = run(&load, "loadgen-runner", invoke, |_| {}).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "2 waves × 2 runners");
    let from: Vec<u64> = seen.iter().map(|a| a.schedule_from.as_secs()).collect();
    assert_eq!(from.iter().filter(|f| **f == 0).count(), 2);
    assert_eq!(from.iter().filter(|f| **f == 4).count(), 2);
    assert!(seen
        .iter()
        .all(|a| a.duration == Some(Duration::from_secs(4))));
    let fanout = report.fanout.as_ref().unwrap();
    assert_eq!(fanout.waves, 2);
    // Wave 2's seconds 0-5 are the run's seconds 4-9.
    let seconds: Vec<u64> = report.series.iter().map(|s| s.second).collect();
    assert_eq!(seconds, (0..10).collect::<Vec<u64>>());
    // Where the fake's reports (6 s each) overlap, the run's second holds both waves' requests.
    let one = report_of(&samples(400, 2), None, "r");
    assert_eq!(report.series[0].requests, one.series[0].requests);
    assert_eq!(
        report.series[4].requests,
        one.series[4].requests + one.series[0].requests
    );
    assert_eq!(report.series[9].requests, one.series[5].requests);
    assert_eq!(report.model, "open 50/s over 2 runners × 2 waves");
    assert!(report
        .render()
        .contains("in 2 consecutive waves of up to 4s"));
}

#[test]
fn outcomes_from_errors() {
    for (error, outcome) in [
        (
            RunnerError::TimedOut("no answer from f within 930 s".into()),
            Outcome::TimedOut,
        ),
        // A run that failed on its own timeouts is a failed runner, not a timed-out one.
        (
            RunnerError::Failed("the run failed: connecting: operation timed out".into()),
            Outcome::Failed,
        ),
        (
            RunnerError::Failed("Unhandled error: Runtime.ExitError: exited".into()),
            Outcome::Failed,
        ),
        (RunnerError::NoOrderUrl, Outcome::Failed),
    ] {
        assert_eq!(outcome_of(&error), outcome, "{error}");
    }
}
