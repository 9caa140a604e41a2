//! One run, stage by stage: **target** ([`setup`]: the local stack or AWS, the signed client,
//! the sink for loadgen's own segments, the X-Ray to read back), **drive** (the load, with a
//! progress line and Ctrl-C), **inspect** (X-Ray), **checks** ([`local_checks`]: a local run's
//! own records), giving the **report**.
//!
//! [`execute`] is the whole pipeline. `loadgen` calls it and writes the report it returns
//! ([`crate::app`]); the runner function calls it too, with the options it was invoked with
//! (`src/bin/loadgen-runner.rs`). With `--runner`, the drive stage is the runner's invocation
//! ([`run_through_runner`]): the target and the load are the runner's, the inspection here.

mod local_checks;
pub mod setup;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indicatif::ProgressBar;
use tokio::sync::watch;

use crate::analytics::local_run;
use crate::cli::{OutputArgs, RunArgs};
use crate::clients::{lambda_client, region, xray_client};
use crate::driver::{drive, DriveConfig, DriveOutcome, Live, LoadModel};
use crate::fanout;
use crate::inspect::{inspect, InspectConfig, Inspection};
use crate::partition::Partition;
use crate::report::{PartFacts, Report, RunFacts};
use crate::runner;
use setup::Setup;

/// The whole run `args` describe, reported (nothing written: the caller does that).
pub async fn execute(args: &RunArgs, bar: &ProgressBar) -> anyhow::Result<Report> {
    if let Some(function) = &args.runner {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let region = region(args.region.as_deref(), &config)?;
        let lambda = lambda_client(None, &region, None, Some(&config), runner::INVOKE_TIMEOUT);
        let xray = xray_client(
            args.output.xray_endpoint.as_deref(),
            &region,
            None,
            Some(&config),
        );
        return run_through_runners(args, function, &lambda, &xray, bar).await;
    }
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(crate::orders::random_run_id);
    let model = args.model();
    // target
    let setup = setup::prepare(args, &run_id, &model, bar).await?;
    // drive
    let outcome = drive_load(args, &run_id, &model, &setup, bar).await?;
    let searchable_after = match &setup.stack {
        Some(stack) => {
            bar.set_message("waiting for the access log's documents to be searchable…");
            local_run::time_to_searchable(stack, local_run::SEARCHABLE_WAIT).await
        }
        None => None,
    };
    let mut report = report_of(args, &run_id, &setup, &outcome);
    // inspect
    if !args.no_inspect && !outcome.interrupted {
        report.inspection =
            Some(inspect_run(&setup.xray, &report, outcome.started, &args.output, bar).await?);
    }
    bar.finish_and_clear();
    // checks
    if let Some(stack) = setup.stack {
        local_checks::run(
            args,
            stack,
            &setup.xray,
            &outcome,
            searchable_after,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

/// `--runner`: runner functions drive the load inside the VPC, `--runners` of them at once,
/// in waves when the run is longer than one invocation ([`fanout`]); their reports merged are
/// the run's. X-Ray is inspected from here (a function in a VPC without NAT reaches Lattice,
/// not the X-Ray API). The clients are the caller's: AWS's from the config chain, or the local
/// stack's in tests.
pub async fn run_through_runners(
    args: &RunArgs,
    function: &str,
    lambda: &aws_sdk_lambda::Client,
    xray: &aws_sdk_xray::Client,
    bar: &ProgressBar,
) -> anyhow::Result<Report> {
    bar.enable_steady_tick(Duration::from_millis(120));
    let invoke = |part_args: RunArgs| {
        let (lambda, function) = (lambda.clone(), function.to_owned());
        async move { runner::run_remotely(&lambda, &function, &part_args).await }
    };
    let mut report = fanout::run(args, function, invoke, |m| bar.set_message(m)).await?;
    if !args.no_inspect && !report.interrupted {
        let started = humantime::parse_rfc3339(&report.started_at)
            .map_err(|e| anyhow::anyhow!("the runners' started_at {:?}: {e}", report.started_at))?;
        report.inspection = Some(inspect_run(xray, &report, started, &args.output, bar).await?);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// The drive stage: the load, with Ctrl-C stopping it (what ran is still reported) and the
/// progress line updated four times a second.
async fn drive_load(
    args: &RunArgs,
    run_id: &str,
    model: &LoadModel,
    setup: &Setup,
    bar: &ProgressBar,
) -> anyhow::Result<DriveOutcome> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    let live = Arc::new(Live::default());
    let ticker = tokio::spawn(progress(Arc::clone(&live), bar.clone()));
    bar.enable_steady_tick(Duration::from_millis(120));
    let config = DriveConfig {
        model: model.clone(),
        orders: args.orders_limit(),
        duration: args.duration,
        warmup: args.warmup,
        seed: args.seed,
        sample_rate: args.sample_rate,
        run_id: run_id.to_owned(),
        scenario: args.scenario.clone(),
        timeout: args.timeout,
        partition: args.partition.unwrap_or(Partition::WHOLE),
        start_at: args.start_at,
        schedule_from: args.schedule_from,
        first_index: args.first_index,
        second_histograms: args.partition.is_some(),
    };
    let outcome = drive(
        Arc::clone(&setup.target),
        Arc::clone(&setup.sink),
        &config,
        stop_rx,
        live,
    )
    .await;
    ticker.abort();
    ctrl_c.abort();
    Ok(outcome?)
}

/// The progress line: orders done, their rate, p99 and errors.
async fn progress(live: Arc<Live>, bar: ProgressBar) {
    let (mut last, mut at) = (0u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let done = live.completed.load(Ordering::Relaxed);
        let rate = (done - last) as f64 / at.elapsed().as_secs_f64();
        (last, at) = (done, Instant::now());
        bar.set_message(format!(
            "{done} orders, {rate:.0}/s, p99 {:.1} ms, {} errors",
            live.p99_us.load(Ordering::Relaxed) as f64 / 1000.0,
            live.errors.load(Ordering::Relaxed)
        ));
    }
}

/// The report of what the drive stage measured (no inspection, no checks yet).
fn report_of(args: &RunArgs, run_id: &str, setup: &Setup, outcome: &DriveOutcome) -> Report {
    Report::new(
        RunFacts {
            run_id: run_id.to_owned(),
            scenario: args.scenario.clone(),
            target: setup.target.url().to_owned(),
            model: args.model_text(),
            started_at: outcome.started,
            ended_at: outcome.ended,
            interrupted: outcome.interrupted,
            sent: outcome.sent,
            traced: outcome.traced,
            warmup: outcome.warmup_requests,
            late: outcome.late,
            dropped: outcome.dropped,
            warmup_length: args.warmup,
            measured_seconds: outcome.measured.as_secs_f64(),
            dispatched_rps: outcome.dispatched_rate,
            segments_not_sent: setup.sink.failed(),
            series: outcome.series.clone(),
            part: args.partition.map(|partition| PartFacts {
                partition: partition.to_string(),
                start_at: humantime::format_rfc3339_millis(outcome.started).to_string(),
                start_lag_ms: outcome.start_lag.as_secs_f64() * 1e3,
                schedule_from_seconds: args.schedule_from.as_secs_f64(),
                first_index: args.first_index,
                dispatched_measured: outcome.dispatched_measured.map(|(n, _)| n),
                dispatch_span_seconds: outcome
                    .dispatched_measured
                    .map(|(_, span)| span.as_secs_f64()),
            }),
        },
        &outcome.stats,
    )
}

/// The inspect stage: X-Ray's view of the run in `report`, which started at `started`.
async fn inspect_run(
    xray: &aws_sdk_xray::Client,
    report: &Report,
    started: SystemTime,
    output: &OutputArgs,
    bar: &ProgressBar,
) -> anyhow::Result<Inspection> {
    let config = InspectConfig {
        run_id: Some(report.run_id.clone()),
        start: started - Duration::from_secs(5),
        end: SystemTime::now() + Duration::from_secs(5),
        expected: report
            .requests
            .traced
            .saturating_sub(report.segments_not_sent),
        wait: output.wait,
        check_limit: output.check_limit,
    };
    inspect(xray, &config, |m| bar.set_message(m.to_owned())).await
}
