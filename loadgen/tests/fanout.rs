//! `loadgen --runner loadgen-runner --runners 4` end to end on the local stack, which hosts four
//! instances of the real `loadgen-runner` binary (a Lambda function with reserved concurrency 4,
//! invoked through the Lambda Invoke API as on AWS). It proves what the fan-out promises:
//! - the merged histogram is the histogram of all requests: each runner's own histogram (its
//!   answer, decoded) added up, one value per request the order service logged;
//! - the orders sent are exactly those of a single-machine run with the same seed and run id
//!   (read back from the order service's own `order_id` annotations in the traces);
//! - a runner killed mid-run (SIGKILL to its process) is reported failed, by name, and the
//!   figures are those of the runners that answered.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use loadgen::cli::{Cli, RunArgs};
use loadgen::fanout::{self, Outcome};
use loadgen::orders::OrderGenerator;
use loadgen::report::Report;
use loadgen::runner::run_remotely;
use local_stack::stack::{LocalStack, RUNNER_FUNCTION};
use serde_json::Value;

mod support;

const RUNNERS: usize = 4;
const SCHEMA: &str = include_str!("../report.schema.json");

/// `report` against report.schema.json: every error.
fn schema_errors(report: &Report) -> Vec<String> {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let json = serde_json::to_value(report).unwrap();
    validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect()
}

async fn stack(name: &str) -> LocalStack {
    let dir = std::env::temp_dir().join(format!("loadgen-fanout-{name}-{}", std::process::id()));
    let mut config = support::runner_stack_config(&dir);
    config.runner_instances = RUNNERS;
    LocalStack::start(config).await.expect("the stack starts")
}

fn run_args(args: &[&str]) -> RunArgs {
    Cli::try_parse_from(
        ["loadgen", "--runner", RUNNER_FUNCTION, "--runners", "4"]
            .iter()
            .chain(args),
    )
    .unwrap()
    .run
}

/// Fans `args` out through the stack's runner function; the merged report and every runner's
/// own answer.
async fn fan_out(stack: &LocalStack, args: &RunArgs) -> (Report, Vec<Report>) {
    let lambda = support::lambda_client(stack);
    let answers = Arc::new(Mutex::new(Vec::new()));
    let invoke = |part: RunArgs| {
        let (lambda, answers) = (lambda.clone(), Arc::clone(&answers));
        async move {
            let answer = run_remotely(&lambda, RUNNER_FUNCTION, &part).await;
            if let Ok(report) = &answer {
                answers.lock().unwrap().push(report.clone());
            }
            answer
        }
    };
    let report = fanout::run(args, RUNNER_FUNCTION, invoke, |_| {})
        .await
        .expect("the runners answer");
    let answers = answers.lock().unwrap().clone();
    (report, answers)
}

/// Lines order's Lattice service logged.
fn order_lines(stack: &LocalStack) -> u64 {
    let order_arn = &stack.state.services["order"].service_arn;
    stack
        .access_log
        .counts()
        .iter()
        .filter(|((arn, _), _)| arn == order_arn)
        .map(|(_, n)| n)
        .sum()
}

/// Every `order_id` annotation in the stack's traces (the order service annotates each order).
fn annotated_order_ids(stack: &LocalStack) -> BTreeSet<String> {
    fn collect(value: &Value, into: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(id) = map
                    .get("annotations")
                    .and_then(|a| a.get("order_id"))
                    .and_then(Value::as_str)
                {
                    into.insert(id.to_owned());
                }
                map.values().for_each(|v| collect(v, into));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
            _ => {}
        }
    }
    let mut ids = BTreeSet::new();
    for trace in stack.store.trace_ids() {
        for document in stack.store.documents(&trace).unwrap_or_default() {
            collect(&Value::Object(document), &mut ids);
        }
    }
    ids
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_runners_merge_exactly_and_send_the_single_run_orders() {
    let stack = stack("merge").await;
    let args = run_args(&[
        "--orders",
        "400",
        "--concurrency",
        "8",
        "--seed",
        "11",
        "--run-id",
        "fanout-merge",
    ]);
    let (report, answers) = fan_out(&stack, &args).await;

    let fanout = report.fanout.as_ref().expect("the runners' section");
    assert_eq!(
        (fanout.answered, fanout.failed, fanout.timed_out),
        (4, 0, 0)
    );
    assert_eq!(answers.len(), RUNNERS);
    let parts: BTreeSet<String> = answers
        .iter()
        .map(|a| a.part.as_ref().unwrap().partition.clone())
        .collect();
    assert_eq!(
        parts,
        BTreeSet::from(["1/4", "2/4", "3/4", "4/4"].map(String::from))
    );
    let start: BTreeSet<&str> = answers
        .iter()
        .map(|a| a.part.as_ref().unwrap().start_at.as_str())
        .collect();
    assert_eq!(start.len(), 1, "one shared start time: {start:?}");
    assert!(answers.iter().all(|a| a.run_id == "fanout-merge"));

    // The merged histogram is every runner's histogram added: one value per request logged.
    let mut all = loadgen::hdr::decode(&answers[0].histograms.corrected).unwrap();
    for answer in &answers[1..] {
        all.add(loadgen::hdr::decode(&answer.histograms.corrected).unwrap())
            .unwrap();
    }
    let merged = loadgen::hdr::decode(&report.histograms.corrected).unwrap();
    assert_eq!(merged, all);
    assert_eq!(merged.len(), 400);
    assert_eq!(
        order_lines(&stack),
        400,
        "order's access log: every request"
    );
    assert_eq!(report.requests.sent, 400);
    assert_eq!(loadgen::stats::percentiles(&all), report.latency.corrected);
    let per_second: u64 = report.series.iter().map(|s| s.requests).sum();
    assert_eq!(per_second, 400);

    // The merged report and a runner's answer (per-second histograms, its part) are valid
    // loadgen-report/5 documents, and the schema refuses a runner line without its outcome.
    assert_eq!(schema_errors(&report), Vec::<String>::new());
    assert_eq!(schema_errors(&answers[0]), Vec::<String>::new());
    assert!(answers[0].series.iter().all(|s| s.histogram.is_some()));
    let mut broken = serde_json::to_value(&report).unwrap();
    broken["fanout"]["invocations"][0]
        .as_object_mut()
        .unwrap()
        .remove("outcome");
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    assert!(!jsonschema::validator_for(&schema)
        .unwrap()
        .is_valid(&broken));

    // Exactly the orders one machine would have sent with this seed and run id.
    let single_run: BTreeSet<String> = (0..400)
        .map(|i| OrderGenerator::new(11, "fanout-merge").order(i).order_id)
        .collect();
    assert_eq!(annotated_order_ids(&stack), single_run);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_in_waves_sends_the_single_run_orders_once() {
    let stack = stack("waves").await;
    // 300 orders at 100/s start over 2.99 s: three waves of 1 s, four runners each.
    let args = run_args(&[
        "--rate",
        "100",
        "--orders",
        "300",
        "--wave-length",
        "1s",
        "--start-lead",
        "1s",
        "--seed",
        "5",
        "--run-id",
        "fanout-waves",
    ]);
    let (report, answers) = fan_out(&stack, &args).await;
    let fanout = report.fanout.as_ref().expect("the runners' section");
    assert_eq!((fanout.waves, fanout.answered, fanout.failed), (3, 12, 0));
    assert_eq!(answers.len(), 12);
    assert_eq!(report.requests.sent + report.requests.dropped, 300);
    assert_eq!(order_lines(&stack), report.requests.sent);
    let per_second: u64 = report.series.iter().map(|s| s.requests).sum();
    assert_eq!(per_second, report.requests.sent);
    assert_eq!(report.series.last().map(|s| s.second), Some(2));
    let single_run: BTreeSet<String> = (0..300)
        .map(|i| OrderGenerator::new(5, "fanout-waves").order(i).order_id)
        .collect();
    assert_eq!(
        report.requests.dropped, 0,
        "nothing dropped at --max-inflight"
    );
    // Every order the order function served is one of the single run's, once each (those it
    // never saw were answered by the local Lattice or Lambda service: throttled or timed out
    // while four runners start at once on two cores; they are in the statuses).
    let served = stack.functions["order"].stats().invocations;
    wait_for("every served order's trace", || {
        annotated_order_ids(&stack).len() as u64 >= served
    })
    .await;
    let annotated = annotated_order_ids(&stack);
    assert_eq!(annotated.len() as u64, served);
    assert!(annotated.is_subset(&single_run), "{annotated:?}");
    assert!(
        served >= 200,
        "most orders served: {served} ({:?})",
        report.statuses
    );
    assert!(report
        .render()
        .contains("in 3 consecutive waves of up to 1s"));
    assert_eq!(schema_errors(&report), Vec::<String>::new());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_run_is_reported_and_the_rest_are_merged() {
    let stack = stack("kill").await;
    let args = run_args(&[
        "--rate",
        "40",
        "--duration",
        "6s",
        "--run-id",
        "fanout-kill",
        "--start-lead",
        "1s",
    ]);
    let runner = Arc::clone(&stack.functions[RUNNER_FUNCTION]);
    let killer = tokio::spawn(async move {
        wait_for("four runner environments", || {
            runner.process_ids().len() == RUNNERS
        })
        .await;
        // Into the run: the shared start (1 s ahead) plus 2 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = runner.process_ids()[0];
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        pid
    });
    let (report, answers) = fan_out(&stack, &args).await;
    killer.await.expect("the runner was killed");

    let fanout = report.fanout.as_ref().expect("the runners' section");
    assert_eq!(
        (fanout.answered, fanout.failed, fanout.timed_out),
        (3, 1, 0)
    );
    assert_eq!(answers.len(), 3);
    let dead: Vec<_> = fanout
        .invocations
        .iter()
        .filter(|l| l.outcome == Outcome::Failed)
        .collect();
    assert_eq!(dead.len(), 1);
    let message = dead[0].message.as_deref().unwrap();
    assert!(message.contains("Runtime.ExitError"), "{message}");
    assert!(dead[0].figures.is_none());
    // The figures are the three answering runners' requests, exactly.
    let answered: u64 = answers.iter().map(|a| a.requests.measured).sum();
    assert_eq!(report.requests.measured, answered);
    let text = report.render();
    assert!(
        text.contains(&format!("   1 {:<9} FAILED", dead[0].partition)),
        "{text}"
    );
    assert!(
        text.contains("1 of 4 runner invocations failed and 0 timed out: their requests are NOT in these figures"),
        "{text}"
    );
    assert_eq!(schema_errors(&report), Vec::<String>::new());
    // Lattice saw more than the answers hold: the killed runner's requests.
    assert!(order_lines(&stack) > answered);
    stack.shutdown().await;
}
