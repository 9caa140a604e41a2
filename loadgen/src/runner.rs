//! loadgen run from inside the VPC. A Lattice caller must sit in a VPC associated with the service
//! network, and a laptop does not. The runner is this same loadgen packaged as a Lambda function
//! in that VPC (`loadgen-runner` in infra/aws/template.yaml): `loadgen --runner loadgen-runner …`
//! invokes it with the load options, it drives the order service through Lattice exactly as
//! `loadgen --url` would and returns its report; the caller then inspects X-Ray (a function in a
//! VPC without NAT reaches Lattice but not the X-Ray API) and prints and writes the report.
//!
//! This module owns the contract between the two ends: the request the laptop sends, the argument
//! line the runner builds from it (the target comes from the runner's environment; options naming
//! files or other targets are refused), the invocation and the reading of its answer. The
//! function's handler (`src/bin/loadgen-runner.rs`) runs those options through the same
//! [pipeline](crate::pipeline) as `loadgen` itself.

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, RunArgs};
use crate::report::{FormatError, Report};

/// Where the runner finds the order service (set by the template).
pub const ORDER_URL_VARIABLE: &str = "ORDER_SERVICE_URL";

/// Longest a runner invocation can take: Lambda's 15-minute limit, plus the trip.
pub const INVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60 + 30);

/// Options the runner refuses: it targets its own stack's order service, signs as its own role in
/// its own Region, and returns the report rather than writing files.
const REFUSED: &[&str] = &[
    "--local",
    "--url",
    "--lambda",
    "--runner",
    "--region",
    "--json",
    "--html",
    "--map-file",
    "--map-format",
    "--xray-endpoint",
    "--no-simulation",
    "--no-build",
    "inspect",
];

/// The event the runner is invoked with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerRequest {
    /// loadgen options, as on the command line (see [`RunArgs::forwarded`]).
    pub args: Vec<String>,
}

/// Why a runner run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The runner's environment lacks the order URL.
    #[error(
        "{ORDER_URL_VARIABLE} is not set: the runner does not know where the order service is"
    )]
    NoOrderUrl,
    /// An option the runner does not take.
    #[error("the runner does not take {0}: it runs against its own stack's order service and returns the report instead of writing files")]
    Refused(String),
    /// Options that do not parse.
    #[error("bad options: {0}")]
    Options(String),
    /// The run itself failed (in the runner), or the runner answered with an error.
    #[error("the run failed: {0}")]
    Failed(String),
    /// The invocation ran out of time: Lambda's own timeout (`Sandbox.Timedout`, "Task timed
    /// out after …") or the client's.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The invocation did not happen or its answer could not be read.
    #[error("invoking {function}: {message}")]
    Invoke {
        /// The runner function.
        function: String,
        /// What went wrong.
        message: String,
    },
}

impl From<RunnerError> for lambda_runtime::Diagnostic {
    fn from(error: RunnerError) -> Self {
        let error_type = match error {
            RunnerError::NoOrderUrl => "NoOrderUrl",
            RunnerError::Refused(_) => "RefusedOption",
            RunnerError::Options(_) => "BadOptions",
            RunnerError::Failed(_) => "RunFailed",
            RunnerError::TimedOut(_) => "TimedOut",
            RunnerError::Invoke { .. } => "InvokeFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The options the runner runs with: `--url <order_url> --quiet` and the request's options.
pub fn runner_args(order_url: &str, request: &RunnerRequest) -> Result<RunArgs, RunnerError> {
    for arg in &request.args {
        let name = arg.split('=').next().unwrap_or(arg);
        if REFUSED.contains(&name) {
            return Err(RunnerError::Refused(name.to_owned()));
        }
    }
    let argv = ["loadgen", "--url", order_url, "--quiet"]
        .into_iter()
        .map(str::to_owned)
        .chain(request.args.iter().cloned());
    let cli = <Cli as clap::Parser>::try_parse_from(argv)
        .map_err(|e| RunnerError::Options(e.render().to_string().trim().to_owned()))?;
    Ok(cli.run)
}

/// The caller's side: invokes `function` with the load options of `args`; the runner's report.
pub async fn run_remotely(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    args: &RunArgs,
) -> Result<Report, RunnerError> {
    let invoke_error = |message: String| RunnerError::Invoke {
        function: function.to_owned(),
        message,
    };
    let request = RunnerRequest {
        args: args.forwarded(),
    };
    let payload = serde_json::to_vec(&request).map_err(|e| invoke_error(e.to_string()))?;
    let output = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| match e {
            aws_sdk_lambda::error::SdkError::TimeoutError(_) => RunnerError::TimedOut(format!(
                "no answer from {function} within {} s",
                INVOKE_TIMEOUT.as_secs()
            )),
            other => invoke_error(DisplayErrorContext(other).to_string()),
        })?;
    let body = output.payload().map(Blob::as_ref).unwrap_or_default();
    read_answer(output.function_error(), body).map_err(|e| match e {
        RunnerError::Invoke { message, .. } => invoke_error(message),
        other => other,
    })
}

/// What an invocation answered: Lambda's `X-Amz-Function-Error` (with the runtime's error
/// document as the body) or the report.
pub fn read_answer(function_error: Option<&str>, body: &[u8]) -> Result<Report, RunnerError> {
    if let Some(kind) = function_error {
        let diagnostic: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            diagnostic
                .as_ref()
                .and_then(|d| d.get(name))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (error_type, error_message) = (field("errorType"), field("errorMessage"));
        // Lambda's timeout: errorType Sandbox.Timedout, or (older runtimes) only the message.
        if error_type == "Sandbox.Timedout" || error_message.contains("Task timed out after") {
            return Err(RunnerError::TimedOut(format!(
                "{kind} error: {error_message}"
            )));
        }
        let message = if diagnostic.is_some() {
            format!("{error_type}: {error_message}")
        } else {
            String::from_utf8_lossy(body).into_owned()
        };
        return Err(RunnerError::Failed(format!("{kind} error: {message}")));
    }
    let not_a_report = |why: String| RunnerError::Invoke {
        function: String::new(),
        message: format!("the answer is not a loadgen report: {why}"),
    };
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| not_a_report(e.to_string()))?;
    // A runner deployed from another version answers in its own format: say so, by name.
    Report::from_json(answer).map_err(|e| match e {
        FormatError::OtherVersion(other) => RunnerError::Failed(format!(
            "the runner answered a {other} report and this loadgen reads {}: deploy the runner from this version",
            crate::report::SCHEMA
        )),
        FormatError::NoSchema => not_a_report("no schema".into()),
        FormatError::Incomplete(e) => not_a_report(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn laptop(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(["loadgen", "--runner", "loadgen-runner"].iter().chain(args))
            .unwrap()
            .run
    }

    fn on_runner(args: &RunArgs) -> RunArgs {
        let request = RunnerRequest {
            args: args.forwarded(),
        };
        runner_args(
            "https://order-0a1b.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
            &request,
        )
        .unwrap()
    }

    #[test]
    fn the_runner_runs_the_same_load_against_its_own_order_service() {
        let here = laptop(&[
            "--rate",
            "250",
            "--duration",
            "45s",
            "--warmup",
            "5s",
            "--max-inflight",
            "64",
            "--seed",
            "9",
            "--sample-rate",
            "0.05",
            "--run-id",
            "r-1",
            "--scenario",
            "spike",
            "--timeout",
            "2s",
            "--wait",
            "2m",
            "--check-limit",
            "50",
            "--json",
            "report.json",
            "--map-file",
            "map.mmd",
            "--html",
            "report.html",
            "--region",
            "eu-west-1",
            "--partition",
            "2/4",
            "--start-at",
            "2026-12-03T19:00:00.123Z",
            "--schedule-from",
            "14m",
            "--first-index",
            "1099511627776",
        ]);
        let there = on_runner(&here);
        assert_eq!(
            there.url.as_deref(),
            Some("https://order-0a1b.7d67968.vpc-lattice-svcs.us-east-1.on.aws")
        );
        assert_eq!(there.runner, None);
        assert!(there.output.quiet);
        assert_eq!(there.output.json, None, "files are written by the caller");
        assert_eq!(there.output.map_file, None);
        assert_eq!(there.output.html, None);
        assert_eq!(there.region, None, "the runner signs in its own Region");
        assert_eq!(
            (there.rate, there.duration, there.warmup, there.max_inflight),
            (here.rate, here.duration, here.warmup, here.max_inflight)
        );
        assert_eq!(
            (there.seed, &there.run_id, &there.scenario, there.timeout),
            (here.seed, &here.run_id, &here.scenario, here.timeout)
        );
        assert_eq!((there.sample_rate, here.sample_rate), (0.05, 0.05));
        assert!(
            there.no_inspect,
            "the runner cannot reach X-Ray: the caller inspects"
        );
        assert_eq!(there.orders_limit(), here.orders_limit());
        // A fanned-out part's place in the run survives the trip exactly.
        assert_eq!(
            there.partition.map(|p| p.to_string()).as_deref(),
            Some("2/4")
        );
        assert_eq!(there.start_at, here.start_at);
        assert_eq!(
            there.start_at,
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_324_400_123))
        );
        assert_eq!(there.schedule_from, std::time::Duration::from_secs(14 * 60));
        assert_eq!(there.first_index, 1 << 40);
    }

    #[test]
    fn stages_closed_loops_and_flags_survive_the_trip() {
        let here = laptop(&["--stages", "50/s:30s,200/s:1m 30s", "--orders", "900"]);
        let there = on_runner(&here);
        assert_eq!(there.stages, here.stages);
        assert_eq!(there.orders, Some(900));
        let here = laptop(&["--concurrency", "32", "--unsigned"]);
        let there = on_runner(&here);
        assert_eq!(there.concurrency, Some(32));
        assert!(there.unsigned);
        assert_eq!(there.orders_limit(), Some(500));
    }

    #[test]
    fn options_naming_other_targets_or_files_are_refused_by_name() {
        for (args, refused) in [
            (vec!["--local"], "--local"),
            (vec!["--url", "https://elsewhere"], "--url"),
            (vec!["--url=https://elsewhere"], "--url"),
            (vec!["--lambda", "order"], "--lambda"),
            (vec!["--runner", "loadgen-runner"], "--runner"),
            (vec!["--json", "/tmp/r.json"], "--json"),
            (vec!["--html", "/tmp/r.html"], "--html"),
            (vec!["inspect", "--run-id", "x"], "inspect"),
        ] {
            let request = RunnerRequest {
                args: args.iter().map(|a| a.to_string()).collect(),
            };
            match runner_args("https://order", &request) {
                Err(RunnerError::Refused(name)) => assert_eq!(name, refused),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let request = RunnerRequest {
            args: vec!["--rate".into(), "fast".into()],
        };
        match runner_args("https://order", &request) {
            Err(RunnerError::Options(message)) => {
                assert!(
                    message.contains("\"fast\" is not a positive rate"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_function_error_becomes_the_runtime_error_and_a_report_is_read_back() {
        let body =
            br#"{"errorType":"RefusedOption","errorMessage":"the runner does not take --json"}"#;
        match read_answer(Some("Unhandled"), body) {
            Err(RunnerError::Failed(message)) => assert_eq!(
                message,
                "Unhandled error: RefusedOption: the runner does not take --json"
            ),
            other => panic!("{other:?}"),
        }
        for timeout in [
            &br#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: r-1 Error: Task timed out after 900.00 seconds"}"#[..],
            br#"{"errorMessage":"2026-12-03T19:00:00.000Z r-1 Task timed out after 900.00 seconds"}"#,
        ] {
            match read_answer(Some("Unhandled"), timeout) {
                Err(RunnerError::TimedOut(message)) => {
                    assert!(message.starts_with("Unhandled error: "), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        let diagnostic = lambda_runtime::Diagnostic::from(RunnerError::NoOrderUrl);
        assert_eq!(diagnostic.error_type, "NoOrderUrl");
        assert!(matches!(
            read_answer(None, b"{\"not\":\"a report\"}"),
            Err(RunnerError::Invoke { .. })
        ));
        match read_answer(None, br#"{"schema":"loadgen-report/3","run_id":"r"}"#) {
            Err(RunnerError::Failed(message)) => assert_eq!(
                message,
                format!(
                    "the runner answered a loadgen-report/3 report and this loadgen reads {}: deploy the runner from this version",
                    crate::report::SCHEMA
                )
            ),
            other => panic!("{other:?}"),
        }
    }
}
