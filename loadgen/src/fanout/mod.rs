//! A run through runner functions (`--runner F --runners N`): N invocations at once, each with
//! its share of the load and its part of the order indexes ([`Partition`]), all from one shared
//! start time; a run longer than one invocation runs as consecutive waves ([`plan`]). Each
//! runner answers with its report, histograms included (HdrHistogram's V2 encoding, per run
//! and per second); the reports merged ([`merge`]) are the run's figures: the percentiles of
//! the union of the requests, never an average of percentiles. A runner that failed or timed
//! out is counted and named in the report, never left out silently.
//!
//! Invoking is the caller's (a closure: the Lambda Invoke API in [`crate::pipeline`], the local
//! stack's in the tests), so this module is the plan, the barrier, the bookkeeping and the merge.

pub mod merge;
pub mod plan;

use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;
use crate::partition::Partition;
use crate::report::Report;
use crate::runner::RunnerError;
use merge::PartReport;

/// Most runners one run invokes at once (Lambda's default account concurrency is 1,000).
pub const MAX_RUNNERS: u32 = 1_000;

/// The longest wave: the runner's 15-minute limit less a minute for its start, the last
/// requests' timeout and the answer.
pub const MAX_WAVE: Duration = Duration::from_secs(14 * 60);

/// How one runner invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It answered with its report, which is in the merged figures.
    Answered,
    /// It failed (the function's error, or an answer that is not its part's report): its
    /// requests are not in the merged figures.
    Failed,
    /// It did not answer in time: its requests are not in the merged figures.
    TimedOut,
}

/// An answering runner's own figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerFigures {
    /// Requests sent (warm-up included).
    pub sent: u64,
    /// Measured requests.
    pub measured: u64,
    /// Of which failed.
    pub failed: u64,
    /// Its corrected p50, ms.
    pub p50_ms: f64,
    /// Its corrected p99, ms.
    pub p99_ms: f64,
    /// How long after the shared start time its load began, ms.
    pub start_lag_ms: f64,
}

/// One runner invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerLine {
    /// Its wave (1-based).
    pub wave: u32,
    /// Its part, `K/N`.
    pub partition: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or timed out.
    pub message: Option<String>,
    /// What it measured, when it answered.
    pub figures: Option<RunnerFigures>,
}

/// The runners of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    /// The runner function.
    pub function: String,
    /// Runners per wave.
    pub runners: u32,
    /// Consecutive waves (more than one when the run is longer than one invocation).
    pub waves: u32,
    /// The longest a wave lasts, s.
    pub wave_length_seconds: f64,
    /// Every invocation, wave by wave, part by part.
    pub invocations: Vec<RunnerLine>,
    /// Invocations that answered (their requests are the merged figures).
    pub answered: u64,
    /// Invocations that failed.
    pub failed: u64,
    /// Invocations that timed out.
    pub timed_out: u64,
}

impl FanOut {
    /// Every runner answered: the merged figures are the whole run's.
    pub fn complete(&self) -> bool {
        self.failed == 0 && self.timed_out == 0
    }

    /// The report's runner section, as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let waves = if self.waves == 1 {
            String::new()
        } else {
            format!(
                " in {} consecutive waves of up to {}",
                self.waves,
                humantime::format_duration(Duration::from_secs_f64(self.wave_length_seconds))
            )
        };
        let _ = writeln!(
            out,
            "runners: {} × {}{waves}; the figures are their requests merged (histograms added, not percentiles averaged)",
            self.runners, self.function
        );
        let _ = writeln!(
            out,
            "  wave part      outcome       sent measured   failed   p50 ms   p99 ms  start lag ms"
        );
        for line in &self.invocations {
            let outcome = match line.outcome {
                Outcome::Answered => "answered",
                Outcome::Failed => "FAILED",
                Outcome::TimedOut => "TIMED OUT",
            };
            match &line.figures {
                Some(f) => {
                    let _ = writeln!(
                        out,
                        "  {:>4} {:<9} {outcome:<9} {:>8} {:>8} {:>8} {:>8.2} {:>8.2} {:>13.1}",
                        line.wave,
                        line.partition,
                        f.sent,
                        f.measured,
                        f.failed,
                        f.p50_ms,
                        f.p99_ms,
                        f.start_lag_ms
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {:>4} {:<9} {outcome:<9} {}",
                        line.wave,
                        line.partition,
                        line.message.as_deref().unwrap_or("")
                    );
                }
            }
        }
        if !self.complete() {
            let _ = writeln!(
                out,
                "  {} of {} runner invocations failed and {} timed out: their requests are NOT in these figures",
                self.failed,
                self.invocations.len(),
                self.timed_out
            );
        }
        out
    }
}

/// Failed or timed out, from the error an invocation ended with.
fn outcome_of(error: &RunnerError) -> Outcome {
    match error {
        RunnerError::TimedOut(_) => Outcome::TimedOut,
        _ => Outcome::Failed,
    }
}

/// The line of an invocation that answered with `report`.
fn answered(wave: u32, partition: Partition, report: &Report) -> RunnerLine {
    RunnerLine {
        wave,
        partition: partition.to_string(),
        outcome: Outcome::Answered,
        message: None,
        figures: Some(RunnerFigures {
            sent: report.requests.sent,
            measured: report.requests.measured,
            failed: report.requests.failed,
            p50_ms: report.latency.corrected.p50_ms,
            p99_ms: report.latency.corrected.p99_ms,
            start_lag_ms: report.part.as_ref().map_or(0.0, |p| p.start_lag_ms),
        }),
    }
}

fn lost(wave: u32, partition: Partition, outcome: Outcome, message: String) -> RunnerLine {
    RunnerLine {
        wave,
        partition: partition.to_string(),
        outcome,
        message: Some(message),
        figures: None,
    }
}

/// Why `report` is not the answer of `partition` of run `run_id` (`None`: it is).
fn not_its_answer(report: &Report, partition: Partition, run_id: &str) -> Option<String> {
    let answered = report.part.as_ref().map(|p| p.partition.as_str());
    let expected = partition.to_string();
    if report.run_id != run_id || answered != Some(expected.as_str()) {
        return Some(format!(
            "answered the report of run {} part {}, not run {run_id} part {expected}",
            report.run_id,
            answered.unwrap_or("(none)")
        ));
    }
    None
}

/// The shared start time, `lead` from now, to the millisecond (what `--start-at` carries).
fn shared_start(lead: Duration) -> SystemTime {
    let at = SystemTime::now() + lead;
    let text = humantime::format_rfc3339_millis(at).to_string();
    humantime::parse_rfc3339(&text).unwrap_or(at)
}

/// Runs the load `args` describe (`--runner`, `--runners`, `--wave-length`) through `invoke`,
/// which runs one part's options in one runner invocation and returns its report. The merged
/// report, with its [`FanOut`]; an error only when no runner answered at all.
pub async fn run<F, Fut>(
    args: &RunArgs,
    function: &str,
    invoke: F,
    progress: impl Fn(String),
) -> anyhow::Result<Report>
where
    F: Fn(RunArgs) -> Fut,
    Fut: Future<Output = Result<Report, RunnerError>> + Send + 'static,
{
    let waves = plan::waves(args)?;
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(crate::orders::random_run_id);
    let (mut parts, mut lines) = (Vec::new(), Vec::new());
    for wave in &waves {
        progress(format!(
            "wave {}/{}: {} × {function} running the load (each answers when done, up to 15 min)…",
            wave.number,
            waves.len(),
            args.runners
        ));
        let start_at = shared_start(args.start_lead);
        let mut invocations = Vec::new();
        for number in 1..=args.runners {
            let partition = Partition::new(number, args.runners)?;
            let answer = invoke(plan::part_args(args, &run_id, wave, partition, start_at));
            invocations.push((partition, tokio::spawn(answer)));
        }
        for (partition, invocation) in invocations {
            let answer = invocation.await.unwrap_or_else(|e| {
                Err(RunnerError::Failed(format!(
                    "the invocation's task ended: {e}"
                )))
            });
            match answer {
                Ok(report) => match not_its_answer(&report, partition, &run_id) {
                    None => {
                        lines.push(answered(wave.number, partition, &report));
                        parts.push(PartReport {
                            wave: wave.number,
                            schedule_from: wave.schedule_from,
                            report,
                        });
                    }
                    Some(why) => lines.push(lost(wave.number, partition, Outcome::Failed, why)),
                },
                Err(error) => lines.push(lost(
                    wave.number,
                    partition,
                    outcome_of(&error),
                    error.to_string(),
                )),
            }
        }
    }
    if parts.is_empty() {
        let why = lines
            .first()
            .and_then(|l| l.message.clone())
            .unwrap_or_default();
        anyhow::bail!("no runner answered ({} invoked): {why}", lines.len());
    }
    let count = |outcome| lines.iter().filter(|l| l.outcome == outcome).count() as u64;
    let fanout = FanOut {
        function: function.to_owned(),
        runners: args.runners,
        waves: waves.len() as u32,
        wave_length_seconds: args.wave_length.as_secs_f64(),
        answered: count(Outcome::Answered),
        failed: count(Outcome::Failed),
        timed_out: count(Outcome::TimedOut),
        invocations: lines,
    };
    let model = format!(
        "{} over {} runner{}{}",
        args.model_text(),
        args.runners,
        if args.runners == 1 { "" } else { "s" },
        if fanout.waves == 1 {
            String::new()
        } else {
            format!(" × {} waves", fanout.waves)
        }
    );
    let mut report = merge::merge(&parts, model, args.warmup)?;
    report.fanout = Some(fanout);
    Ok(report)
}

#[cfg(test)]
mod tests;
