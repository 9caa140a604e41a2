//! `loadgen --runner` end to end on the local stack, which hosts the real `loadgen-runner` binary
//! the way the AWS stack does (a Lambda function running as the loadgen role, told order's URL):
//! the laptop side invokes it through the Lambda Invoke API, the runner drives orders through
//! Lattice and sends its segments to the daemon, the laptop side inspects X-Ray, and the report
//! is complete and agrees with the access log.

use aws_sdk_lambda::primitives::Blob;
use clap::Parser;
use indicatif::ProgressBar;
use loadgen::cli::Cli;
use loadgen::runner::RunnerRequest;
use local_stack::stack::{LocalStack, RUNNER_FUNCTION};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_the_runner_function_comes_back_complete() {
    let dir = std::env::temp_dir().join(format!("loadgen-runner-test-{}", std::process::id()));
    let config = support::runner_stack_config(&dir);
    let stack = LocalStack::start(config).await.expect("the stack starts");
    let lambda = support::lambda_client(&stack);

    let cli = Cli::try_parse_from([
        "loadgen",
        "--runner",
        RUNNER_FUNCTION,
        "--orders",
        "80",
        "--concurrency",
        "4",
        "--run-id",
        "runner-run",
        "--wait",
        "30s",
    ])
    .unwrap();
    let xray = loadgen::clients::xray_client(
        Some(&stack.xray_endpoint()),
        &stack.state.region,
        Some(support::loadgen_credentials(&stack)),
        None,
    );
    let report = loadgen::pipeline::run_through_runners(
        &cli.run,
        RUNNER_FUNCTION,
        &lambda,
        &xray,
        &ProgressBar::hidden(),
    )
    .await
    .expect("the runner answers with a report, then X-Ray is inspected");

    assert_eq!(report.run_id, "runner-run");
    let fanout = report.fanout.as_ref().expect("the runner's line");
    assert_eq!((fanout.runners, fanout.waves, fanout.answered), (1, 1, 1));
    assert_eq!(fanout.invocations[0].partition, "1/1");
    assert_eq!(
        report.target,
        format!("{}/orders", stack.service_url("order").unwrap())
    );
    assert_eq!(report.requests.sent, 80);
    // The runner's histograms came back whole: every request, the report's own percentiles.
    let corrected = loadgen::hdr::decode(&report.histograms.corrected).unwrap();
    assert_eq!(corrected.len(), 80);
    assert_eq!(
        loadgen::stats::percentiles(&corrected),
        report.latency.corrected
    );
    assert_eq!(report.statuses.values().sum::<u64>(), 80);
    let inspection = report.inspection.as_ref().expect("X-Ray was inspected");
    assert_eq!(inspection.traces_found, 80);
    assert_eq!(
        inspection.complete_percent, 100.0,
        "{:#?}",
        inspection.incomplete
    );
    assert_eq!(inspection.by_service["loadgen"].segments, 80);
    // Lattice saw exactly the runner's orders, signed as the loadgen role.
    let order_arn = &stack.state.services["order"].service_arn;
    let order_lines: u64 = stack
        .access_log
        .counts()
        .iter()
        .filter(|((arn, _), _)| arn == order_arn)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(order_lines, 80);

    // An option the runner does not take comes back as the runtime's error document.
    let refused = lambda
        .invoke()
        .function_name(RUNNER_FUNCTION)
        .payload(Blob::new(
            serde_json::to_vec(&RunnerRequest {
                args: vec!["--json".into(), "/tmp/report.json".into()],
            })
            .unwrap(),
        ))
        .send()
        .await
        .expect("the invoke API answers");
    assert_eq!(refused.function_error(), Some("Unhandled"));
    let error: serde_json::Value =
        serde_json::from_slice(refused.payload().unwrap().as_ref()).unwrap();
    assert_eq!(error["errorType"], "RefusedOption");
    assert_eq!(
        error["errorMessage"],
        "the runner does not take --json: it runs against its own stack's order service and returns the report instead of writing files"
    );
    stack.shutdown().await;
}
