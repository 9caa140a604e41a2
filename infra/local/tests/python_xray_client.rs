//! A client nobody here wrote: AWS's X-Ray SDK for Python begins a segment and calls order through
//! the local Lattice with the SDK's own outgoing trace header (its `requests` patch), signed by
//! botocore. The trace in the local X-Ray store must hold the Python segment → order → inventory
//! and payment, every parent linked.
//!
//! The SDK comes from PyPI (`tests/python/requirements.txt`) into the project's venv,
//! `target/ci-tools/venv`, which `.ci/run` fills; a test run without it creates it first.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use local_stack::xray::store::Entity;
use serde_json::Value;
use support::{order, start, wait_for_segments};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The venv's python with the requirements installed (installing them when they are missing).
/// Made once per test binary: its tests run in parallel, and two of them creating the venv and
/// pip-installing into it at once broke the first run on a fresh machine.
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(install_python).clone()
}

fn install_python() -> PathBuf {
    let venv = here().join("../../target/ci-tools/venv");
    let python = venv.join("bin/python");
    let has_sdk = |python: &Path| {
        Command::new(python)
            .args(["-c", "import aws_xray_sdk, requests, botocore"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_sdk(&python) {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for this test");
        assert!(made.success(), "python3 -m venv {}", venv.display());
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(here().join("tests/python/requirements.txt"))
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip install of tests/python/requirements.txt"
    );
    assert!(has_sdk(&python));
    python
}

fn segment<'a>(entities: &'a [Entity], name: &str) -> &'a Entity {
    entities
        .iter()
        .find(|e| e.is_segment && e.fields["name"] == name)
        .unwrap_or_else(|| panic!("no {name} segment"))
}

/// The remote subsegments under `parent` (at any depth), by id.
fn remote_calls_under<'a>(entities: &'a [Entity], parent: &Entity) -> Vec<&'a Entity> {
    let mut found = Vec::new();
    let mut frontier = vec![parent.id.clone()];
    while let Some(id) = frontier.pop() {
        for child in entities
            .iter()
            .filter(|e| !e.is_segment && e.parent_id.as_deref() == Some(id.as_str()))
        {
            if child.fields.get("namespace").and_then(Value::as_str) == Some("remote") {
                found.push(child);
            }
            frontier.push(child.id.clone());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_xray_sdk_client_roots_one_linked_trace_through_all_three_services() {
    let python = python();
    let stack = start("python-client", &[], |_| {}).await;
    let key = stack.loadgen_key().unwrap().clone();
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let output = tokio::task::spawn_blocking({
        let script = here().join("tests/python/xray_client.py");
        let daemon = stack.xray_daemon().to_string();
        let region = stack.state.region.clone();
        move || {
            Command::new(python)
                .arg(script)
                .args([
                    url.as_str(),
                    key.access_key_id.as_str(),
                    key.secret_access_key.as_str(),
                    region.as_str(),
                    daemon.as_str(),
                    &order("ord-python").to_string(),
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], 201, "{result}");
    let trace_id = result["trace_id"].as_str().unwrap();
    assert!(result["answered_trace_header"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Root={trace_id};")));

    let entities = wait_for_segments(
        &stack,
        trace_id,
        &["python-client", "order", "inventory", "payment"],
    )
    .await;
    let client = segment(&entities, "python-client");
    assert_eq!(client.id, result["segment_id"]);
    assert_eq!(client.parent_id, None, "the Python segment is the root");
    assert_eq!(client.fields["annotations"]["client"], "aws-xray-sdk");
    let client_calls = remote_calls_under(&entities, client);
    assert_eq!(client_calls.len(), 1, "the SDK recorded its one call");

    // order continued the SDK's header: its parent is the SDK's subsegment for the call.
    let order = segment(&entities, "order");
    assert_eq!(order.parent_id.as_ref(), Some(&client_calls[0].id));
    assert_eq!(order.fields["origin"], "AWS::Lambda::Function");
    let order_calls = remote_calls_under(&entities, order);
    for service in ["inventory", "payment"] {
        let served = segment(&entities, service);
        let parent = served.parent_id.as_deref().expect("a parent");
        assert!(
            order_calls.iter().any(|call| call.id == parent),
            "{service}'s parent {parent} is one of order's calls"
        );
    }
    stack.shutdown().await;
}
