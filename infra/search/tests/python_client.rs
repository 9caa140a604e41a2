//! A client nobody here wrote, from another language: opensearch-py (PyPI) with its bulk helper
//! and its SigV4 signer (`AWSV4SignerAuth` over botocore) runs `tests/python/opensearch_client.py`
//! against the engine; the exact hits, totals, per-item bulk errors and aggregation values it got
//! back are asserted here.
//!
//! opensearch-py comes from `tests/python/requirements.txt` into the project's venv,
//! `target/ci-tools/venv`, which `.ci/run` fills; a run without it installs it first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use local_search::{Auth, SearchConfig, SearchServer};
use serde_json::{json, Value};
use sigv4_verify::{PrincipalKey, SigningRules, Verifier};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The venv's python with opensearch-py and botocore (installing them when missing).
/// Made once per test binary: its tests run in parallel, and two of them creating the venv and
/// pip-installing into it at once broke the first run on a fresh machine.
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(install_python).clone()
}

fn install_python() -> PathBuf {
    let venv = here().join("../../target/ci-tools/venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import opensearchpy, botocore"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(made.success(), "python3 -m venv {}", venv.display());
    }
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(here().join("tests/python/requirements.txt"))
        .arg("-r")
        .arg(here().join("../local/tests/python/requirements.txt"))
        .status()
        .expect("pip runs");
    assert!(status.success(), "pip install of the test requirements");
    python
}

async fn run(auth: Auth, extra: &[&str]) -> Value {
    let server = SearchServer::start(SearchConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        auth,
    })
    .await
    .unwrap();
    let url = server.url();
    let python = python();
    let script = here().join("tests/python/opensearch_client.py");
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(url)
            .args(extra)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.stop().await;
    assert!(
        output.status.success(),
        "opensearch_client.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn expected() -> Value {
    json!({
        "info": "opensearch",
        "indexed": 4,
        "errors": [{"id": "e4", "status": 400, "type": "mapper_parsing_exception"}],
        "total": {"value": 3, "relation": "eq"},
        "ids": ["e0", "e1", "e2"],
        "per_minute": [
            {"key": "2026-12-01T10:00:00.000Z", "count": 2, "services": {"order": 2}},
            {"key": "2026-12-01T10:01:00.000Z", "count": 1, "services": {"order": 1}}
        ],
        "stats": {"count": 3, "min": 20.0, "max": 90.0, "avg": 50.0, "sum": 150.0},
        "count": 1,
        "missing": 404
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_py_indexes_searches_and_aggregates() {
    assert_eq!(run(Auth::default(), &[]).await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_py_signs_with_sigv4() {
    let (key, secret) = ("AKIDPYTHONCLIENT0001", "python-client-secret");
    let keys = HashMap::from([(
        key.to_owned(),
        PrincipalKey {
            principal: "arn:aws:iam::123456789012:role/analyst".into(),
            access_key_id: key.into(),
            secret_access_key: secret.into(),
        },
    )]);
    let auth = Auth {
        basic: None,
        sigv4: Some(Verifier::new(keys, "us-east-1", SigningRules::opensearch())),
    };
    assert_eq!(run(auth, &["sigv4", key, secret]).await, expected());
}
