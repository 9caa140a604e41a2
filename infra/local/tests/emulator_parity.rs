//! The same built order binary under two Lambda runtimes: this project's local Lambda service
//! (its Runtime API and Invoke API) and cargo-lambda's own emulator (`cargo lambda watch
//! --only-lambda-apis`, then `cargo lambda invoke --data-file`). Replaying `aws_lambda_events`'
//! Lattice V2 fixtures (plain, base64 body, Roles Anywhere identity) and a real order through
//! both must give the same responses: status, headers and body, apart from the trace header
//! each runtime starts. Both calls reach the same payment function, which is idempotent by
//! order id, so the payment id must match too.
//!
//! cargo-lambda comes from PyPI into the project's venv (`target/ci-tools/venv`, filled by
//! `.ci/run`; this test installs it there if it is missing).

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use local_stack::binaries::service_binary;
use local_stack::stack::function_role;
use serde_json::Value;
use support::start;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's cargo-lambda (installing it when missing).
fn cargo_lambda() -> PathBuf {
    let venv = repository().join("target/ci-tools/venv");
    let binary = venv.join("bin/cargo-lambda");
    if !binary.exists() {
        if !venv.join("bin/python").exists() {
            assert!(Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 is needed for this test")
                .success());
        }
        let requirements =
            std::fs::read_to_string(repository().join("infra/aws/requirements-ci.txt")).unwrap();
        let pin = requirements
            .lines()
            .find(|l| l.starts_with("cargo-lambda=="))
            .expect("cargo-lambda is pinned");
        assert!(Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", pin])
            .status()
            .unwrap()
            .success());
    }
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child's output, failing the test (instead of hanging it) if it takes longer than `limit`:
/// `cargo lambda invoke` waits for ever when no function picks the event up.
fn output_within(mut child: Child, limit: Duration, what: &str) -> std::process::Output {
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: no answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A response with what differs by nature between two invocations taken out: the trace header
/// (each runtime starts its own trace; both must send one). The body is compared as JSON.
fn comparable(mut response: Value) -> Value {
    let headers = response["headers"].as_object_mut().expect("headers");
    let trace = headers.remove("x-amzn-trace-id").expect("a trace header");
    assert!(trace.as_str().unwrap().starts_with("Root=1-"), "{trace}");
    if let Some(body) = response["body"].as_str() {
        if let Ok(body) = serde_json::from_str::<Value>(body) {
            response["body"] = body;
        }
    }
    response
}

fn fixtures() -> Vec<(&'static str, String)> {
    let shared = repository().join("shared/tests/fixtures");
    let mut fixtures: Vec<(&'static str, String)> = [
        "example-vpc-lattice-v2-request.json",
        "example-vpc-lattice-v2-request-base64.json",
        "example-vpc-lattice-v2-request-roles-anywhere.json",
    ]
    .into_iter()
    .map(|name| (name, std::fs::read_to_string(shared.join(name)).unwrap()))
    .collect();
    fixtures.push((
        "lattice-v2-post-order.json",
        std::fs::read_to_string(
            repository().join("services/order/tests/fixtures/lattice-v2-post-order.json"),
        )
        .unwrap(),
    ));
    fixtures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_lambda_service_and_cargo_lambdas_emulator_answer_alike() {
    let cargo_lambda = cargo_lambda();
    let stack = start("emulator-parity", &[], |_| {}).await;
    let invoke_url = format!(
        "{}/2015-03-31/functions/order/invocations",
        stack.lambda_endpoint()
    );
    let client = reqwest::Client::new();
    let mut ours = Vec::new();
    for (name, event) in fixtures() {
        let response = client.post(&invoke_url).body(event).send().await.unwrap();
        assert_eq!(
            response.headers().get("x-amz-function-error"),
            None,
            "{name}"
        );
        let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        ours.push((name, answer));
    }

    // cargo-lambda's emulator, with the same binary given the same environment.
    let port = free_port();
    let _emulator = KillOnDrop(
        Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(repository().join("services/order"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let began = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the emulator never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let key = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let _function = KillOnDrop(
        Command::new(service_binary("order").unwrap())
            .env_clear()
            // cargo-lambda serves the Runtime API under a path, so the variable carries a scheme
            // (lambda_runtime accepts both forms; real Lambda gives host:port).
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "order")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_REGION", &stack.state.region)
            .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
            .env("AWS_XRAY_DAEMON_ADDRESS", stack.xray_daemon().to_string())
            .env(
                "INVENTORY_SERVICE_URL",
                stack.service_url("inventory").unwrap(),
            )
            .env("PAYMENT_SERVICE_URL", stack.service_url("payment").unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let emulator_answers = tokio::task::spawn_blocking(move || {
        let mut answers = Vec::new();
        for (name, event) in fixtures() {
            let file =
                std::env::temp_dir().join(format!("emulator-parity-{}-{name}", std::process::id()));
            std::fs::write(&file, event).unwrap();
            let invoke = Command::new(&cargo_lambda)
                .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
                .args([
                    "--invoke-port",
                    &port.to_string(),
                    "--output-format",
                    "json",
                ])
                .arg("--data-file")
                .arg(&file)
                .current_dir(repository().join("services/order"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let output = output_within(invoke, Duration::from_secs(60), name);
            assert!(
                output.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            answers.push((
                name,
                serde_json::from_slice::<Value>(&output.stdout).unwrap(),
            ));
        }
        answers
    })
    .await
    .unwrap();

    for ((name, ours), (_, theirs)) in ours.into_iter().zip(emulator_answers) {
        assert_eq!(comparable(ours), comparable(theirs), "{name}");
    }
    stack.shutdown().await;
}
