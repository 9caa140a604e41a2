//! loadgen interrupted with Ctrl-C (SIGINT) in the middle of a run: it stops the load, shuts the
//! local stack down (no function process left behind) and still writes the report of what ran.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[test]
fn ctrl_c_stops_the_load_and_still_writes_the_report() {
    let run_id = format!("ctrl-c-{}", std::process::id());
    let json = std::env::temp_dir().join(format!("{run_id}.json"));
    let state = std::env::temp_dir()
        .join(format!("loadgen-{run_id}"))
        .join("state.json");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&state);
    let mut loadgen = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--local", "--no-build", "--quiet", "--no-simulation"])
        .args([
            "--duration",
            "10m",
            "--concurrency",
            "2",
            "--run-id",
            &run_id,
        ])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Let the stack come up and orders flow for a moment.
    let began = Instant::now();
    while !state.exists() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the stack never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stack: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let interrupted = Command::new("kill")
        .args(["-INT", &loadgen.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let began = Instant::now();
    let status = loop {
        if let Some(status) = loadgen.try_wait().unwrap() {
            break status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "loadgen did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = loadgen.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["interrupted"], true);
    let sent = report["requests"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "orders ran before the interrupt");
    // Answered orders are all in the statistics; at most the in-flight ones went unanswered.
    let measured = report["requests"]["measured"].as_u64().unwrap();
    assert!(sent - measured <= 2, "sent {sent}, measured {measured}");
    assert_eq!(
        report["inspection"],
        Value::Null,
        "no inspection after an interrupt"
    );
    assert_eq!(report["local"]["access_log"]["order"]["requests"], sent);
    assert!(stdout.contains(&format!("run {run_id} ")), "{stdout}");
    assert!(stdout.contains(&format!("report written to {}", json.display())));

    // The stack is gone: its state file removed, its port closed.
    assert!(!state.exists());
    let order_url = stack["services"]["order"]["url"].as_str().unwrap();
    let address = order_url.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "order's listener is closed"
    );
}
