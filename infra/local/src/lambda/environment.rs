//! One execution environment: its address, its APIs (Runtime, Extensions, Telemetry), its
//! processes (the extensions, then the runtime), their log lines, the init phase, and shutdown.
//!
//! As on AWS ("Lambda execution environment lifecycle"): the extensions in the layer directory's
//! `extensions/` start first and register; then the runtime starts; the init phase ends when the
//! runtime and every extension have called `next`. At shutdown every extension registered for
//! `SHUTDOWN` gets the event with a deadline 2,000 ms away, the runtime is stopped, and whatever
//! has not exited by the deadline is killed.
//!
//! Each environment listens on its own loopback address (127.64.0.0/10, one address per
//! environment; Linux routes the whole of 127.0.0.0/8 to `lo`), which plays the sandbox's
//! `sandbox.localdomain`: an extension listening on a fixed port, as extensions do, then never
//! collides with the same extension in another environment.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use super::extensions_api::{ExtensionsApi, FunctionMetadata, ShutdownReason};
use super::function::{FunctionConfig, InvokeError, INIT_TIMEOUT};
use super::function_log::FunctionLog;
use super::platform_records::{self as records, Status};
use super::runtime_api::{Invocation, RuntimeApi};
use super::telemetry_api::{RecordKind, TelemetryApi, TelemetryStats};

/// The time extensions get between `SHUTDOWN` and being killed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(2_000);

/// The controls of the live environments, by environment number, so a function can shut every
/// environment down even while an invocation holds it.
pub type Controls = Arc<Mutex<HashMap<u64, Control>>>;

/// How many of the extensions' last lines a function keeps ([`FunctionShared::extension_lines`]).
pub const EXTENSION_LINES_KEPT: usize = 200;

/// What a function's environments share.
#[derive(Default)]
pub struct FunctionShared {
    /// The live environments' controls.
    pub controls: Controls,
    /// The runtimes' pids.
    pub runtime_pids: Arc<Mutex<Vec<u32>>>,
    /// Telemetry counters over every environment.
    pub telemetry: Arc<Mutex<TelemetryStats>>,
    /// The extensions' last stdout/stderr lines (what they report about themselves).
    pub extension_lines: Arc<Mutex<VecDeque<String>>>,
}

/// The time the runtime gets to stop at shutdown (of the 2,000 ms) before extensions get theirs.
pub const RUNTIME_STOP: Duration = Duration::from_millis(300);

/// What a kill switch stops: `KILL_RUNTIME` the runtime only (the start of a shutdown),
/// `KILL_ALL` every process.
const KILL_RUNTIME: u8 = 1;
const KILL_ALL: u8 = 2;

/// What shutting an environment down needs.
pub struct Control {
    kill: watch::Sender<u8>,
    extensions: Arc<ExtensionsApi>,
    telemetry: Arc<TelemetryApi>,
    extensions_alive: watch::Receiver<usize>,
    exited: watch::Receiver<Option<String>>,
}

impl Control {
    /// As Lambda's shutdown phase: the runtime is stopped first (within [`RUNTIME_STOP`]), so
    /// its last lines are in the telemetry stream; then the extensions get their `SHUTDOWN` and
    /// up to [`SHUTDOWN_GRACE`] to exit; then every process left is killed.
    pub async fn shut_down(self, reason: ShutdownReason) {
        if self.extensions.any_registered() {
            let _ = self.kill.send(KILL_RUNTIME);
            let mut exited = self.exited.clone();
            let _ = tokio::time::timeout(RUNTIME_STOP, exited.wait_for(Option::is_some)).await;
            self.telemetry.flush_now();
            let deadline = SystemTime::now() + SHUTDOWN_GRACE;
            let deadline_ms = deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            if self.extensions.deliver_shutdown(reason, deadline_ms) > 0 {
                let mut alive = self.extensions_alive.clone();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive.wait_for(|n| *n == 0)).await;
            }
        }
        let _ = self.kill.send(KILL_ALL);
        let mut alive = self.extensions_alive.clone();
        let _ = tokio::time::timeout(RUNTIME_STOP, alive.wait_for(|n| *n == 0)).await;
    }
}

/// A running environment.
pub struct Environment {
    /// Its Runtime API (and Extensions and Telemetry APIs).
    pub api: RuntimeApi,
    /// Where invocations are handed to the runtime.
    pub next: mpsc::Sender<Invocation>,
    /// Set when any of its processes exits.
    pub exited: watch::Receiver<Option<String>>,
    /// Its extensions.
    pub extensions: Arc<ExtensionsApi>,
    /// Its telemetry.
    pub telemetry: Arc<TelemetryApi>,
    /// How long its init phase took.
    pub init_duration: Duration,
    number: u64,
    controls: Controls,
    runtime_pid: Option<u32>,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Environment {
    /// Whether every process still runs.
    pub fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// The pids of its processes alive now.
    pub fn pids(&self) -> Vec<u32> {
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The runtime's pid.
    pub fn runtime_pid(&self) -> Option<u32> {
        self.runtime_pid
    }

    /// Shuts the environment down in the background, giving its extensions their `SHUTDOWN`.
    pub fn retire(self, reason: ShutdownReason) {
        let control = self.take_control();
        if let Some(control) = control {
            tokio::spawn(control.shut_down(reason));
        }
    }

    fn take_control(&self) -> Option<Control> {
        self.controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.number)
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if let Some(control) = self.take_control() {
            let _ = control.kill.send(KILL_ALL);
        }
    }
}

/// The next environment's loopback address, in 127.64.0.0/10, starting from a point that
/// depends on the process id so two stacks on one machine rarely meet. Where only 127.0.0.1 is
/// configured (macOS's `lo0`), every environment shares it: then only one environment at a time
/// can hold an extension's fixed port, and the others' extensions run without telemetry.
fn sandbox_address() -> IpAddr {
    static NEXT: OnceLock<Option<AtomicU32>> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let whole_range = std::net::TcpListener::bind((Ipv4Addr::new(127, 64, 0, 1), 0)).is_ok();
        whole_range.then(|| AtomicU32::new(std::process::id().wrapping_mul(7_919)))
    });
    match next {
        Some(next) => {
            let n = next.fetch_add(1, Ordering::Relaxed) & 0x003f_ffff;
            IpAddr::V4(Ipv4Addr::from(0x7f40_0000 | n))
        }
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// The extension files of a layer directory (`<dir>/extensions/*`), sorted by name as Lambda
/// starts them.
pub fn extension_files(layer: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(layer.join("extensions"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

struct Spawned {
    pids: Arc<Mutex<Vec<u32>>>,
    kill: watch::Receiver<u8>,
    exited: watch::Sender<Option<String>>,
    extensions_alive: watch::Sender<usize>,
}

/// Starts an environment of `config` numbered `number`: extensions, then the runtime, until
/// the init phase is over.
pub async fn start(
    config: &FunctionConfig,
    number: u64,
    shared: &FunctionShared,
) -> Result<Environment, InvokeError> {
    let controls = &shared.controls;
    let started = Instant::now();
    let failed = |e: &dyn std::fmt::Display| InvokeError::InitFailed(e.to_string());
    let sandbox = sandbox_address();
    let names: Vec<String> = config
        .extensions
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let extensions = Arc::new(ExtensionsApi::new(
        names.clone(),
        FunctionMetadata {
            function_name: config.name.clone(),
            function_version: "$LATEST".to_owned(),
            handler: "bootstrap".to_owned(),
            account_id: config.account_id.clone(),
        },
    ));
    let telemetry = Arc::new(TelemetryApi::new(
        sandbox,
        Arc::clone(&extensions),
        Arc::clone(&shared.telemetry),
    ));
    telemetry.emit(
        RecordKind::Platform,
        "platform.initStart",
        &records::init_start(&config.name, config.memory_mb),
    );
    let (api, next) = RuntimeApi::start(sandbox, Arc::clone(&extensions), Arc::clone(&telemetry))
        .await
        .map_err(|e| failed(&e))?;
    let (kill_tx, kill) = watch::channel(0u8);
    let (exited_tx, exited) = watch::channel(None);
    let (alive_tx, extensions_alive) = watch::channel(0usize);
    let spawned = Spawned {
        pids: Arc::default(),
        kill,
        exited: exited_tx,
        extensions_alive: alive_tx,
    };
    controls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            number,
            Control {
                kill: kill_tx,
                extensions: Arc::clone(&extensions),
                telemetry: Arc::clone(&telemetry),
                extensions_alive,
                exited: exited.clone(),
            },
        );
    let mut environment = Environment {
        api,
        next,
        exited,
        extensions,
        telemetry,
        init_duration: Duration::ZERO,
        number,
        controls: Arc::clone(controls),
        runtime_pid: None,
        pids: Arc::clone(&spawned.pids),
    };
    init(config, &mut environment, &spawned, shared).await?;
    environment.init_duration = started.elapsed();
    finish_init(&environment, &names);
    Ok(environment)
}

async fn init(
    config: &FunctionConfig,
    environment: &mut Environment,
    spawned: &Spawned,
    shared: &FunctionShared,
) -> Result<(), InvokeError> {
    let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    for binary in &config.extensions {
        spawn(
            config,
            binary,
            environment,
            spawned,
            Process::Extension(&shared.extension_lines),
        )?;
    }
    if !config.extensions.is_empty() {
        phase(
            environment,
            deadline,
            environment.extensions.all_registered(),
        )
        .await?;
    }
    environment.runtime_pid = spawn(
        config,
        &config.binary,
        environment,
        spawned,
        Process::Runtime(&shared.runtime_pids),
    )?;
    phase(environment, deadline, async {
        environment.api.ready().await;
        environment.extensions.all_ready().await;
    })
    .await?;
    if let Some(error) = environment.api.init_error() {
        return Err(init_failed(
            environment,
            String::from_utf8_lossy(&error).into_owned(),
        ));
    }
    if let Some(error) = environment.extensions.init_error() {
        return Err(init_failed(
            environment,
            format!(
                "extension {} failed to init: {} {}",
                error.extension, error.error_type, error.body
            ),
        ));
    }
    Ok(())
}

/// Waits for one step of the init phase, failing when a process exits or the init timeout passes.
async fn phase(
    environment: &Environment,
    deadline: tokio::time::Instant,
    step: impl std::future::Future<Output = ()>,
) -> Result<(), InvokeError> {
    let mut exited = environment.exited.clone();
    tokio::select! {
        () = step => Ok(()),
        why = exited.wait_for(Option::is_some) => {
            let why = why.map(|why| why.clone().unwrap_or_default()).unwrap_or_default();
            Err(init_failed(environment, format!("process exited during init: {why}")))
        }
        () = tokio::time::sleep_until(deadline) => {
            Err(init_failed(environment, "init timed out after 10 seconds".to_owned()))
        }
    }
}

fn init_failed(environment: &Environment, why: String) -> InvokeError {
    environment.telemetry.emit(
        RecordKind::Platform,
        "platform.initRuntimeDone",
        &records::init_runtime_done(Status::Failure, Some("Runtime.InitError")),
    );
    InvokeError::InitFailed(why)
}

fn finish_init(environment: &Environment, names: &[String]) {
    environment.extensions.close_registration();
    let telemetry = &environment.telemetry;
    for name in environment.extensions.agents().values() {
        let events: &[&str] = if names.contains(name) {
            &["INVOKE", "SHUTDOWN"]
        } else {
            &["INVOKE"]
        };
        telemetry.emit(
            RecordKind::Platform,
            "platform.extension",
            &records::extension(name, events),
        );
    }
    telemetry.emit(
        RecordKind::Platform,
        "platform.initRuntimeDone",
        &records::init_runtime_done(Status::Success, None),
    );
    telemetry.emit(
        RecordKind::Platform,
        "platform.initReport",
        &records::init_report(Status::Success, environment.init_duration),
    );
    telemetry.end_init();
}

/// Which process of the environment [`spawn`] starts.
enum Process<'a> {
    /// The runtime, whose pid the function lists.
    Runtime(&'a Arc<Mutex<Vec<u32>>>),
    /// An extension, whose last lines the function keeps.
    Extension(&'a Arc<Mutex<VecDeque<String>>>),
}

/// Starts one process of the environment. Its lines go to the Telemetry API when the function
/// has extensions.
fn spawn(
    config: &FunctionConfig,
    binary: &Path,
    environment: &Environment,
    spawned: &Spawned,
    process: Process<'_>,
) -> Result<Option<u32>, InvokeError> {
    let (runtime, function_pids, kept) = match process {
        Process::Runtime(pids) => (true, Some(pids), None),
        Process::Extension(lines) => (false, None, Some(Arc::clone(lines))),
    };
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(config.process_env(&environment.api.addr.to_string()))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Lines are read when something keeps them: the Telemetry API's subscribers (only with
    // extensions) or the function's log.
    let capture = !config.extensions.is_empty() || config.log.is_some();
    if capture {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else if !config.show_logs {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = command
        .spawn()
        .map_err(|e| InvokeError::InitFailed(format!("{}: {e}", binary.display())))?;
    let kind = if runtime {
        RecordKind::Function
    } else {
        RecordKind::Extension
    };
    if capture {
        let sink = LineSink {
            kind,
            telemetry: Arc::downgrade(&environment.telemetry),
            echo: config.show_logs,
            kept,
            log: config.log.clone(),
        };
        pump_lines(child.stdout.take(), sink.clone());
        pump_lines(child.stderr.take(), sink);
    }
    let pid = child.id();
    let lists: Vec<Arc<Mutex<Vec<u32>>>> =
        [Some(Arc::clone(&spawned.pids)), function_pids.cloned()]
            .into_iter()
            .flatten()
            .collect();
    if let Some(pid) = pid {
        for list in &lists {
            list.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(pid);
        }
    }
    if !runtime {
        spawned.extensions_alive.send_modify(|n| *n += 1);
    }
    let what = if runtime {
        "runtime".to_owned()
    } else {
        format!(
            "extension {}",
            binary
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        )
    };
    tokio::spawn(watch_process(
        child,
        (what, if runtime { KILL_RUNTIME } else { KILL_ALL }),
        spawned.kill.clone(),
        spawned.exited.clone(),
        lists,
        (!runtime).then(|| spawned.extensions_alive.clone()),
    ));
    Ok(pid)
}

async fn watch_process(
    mut child: Child,
    (what, killed_at): (String, u8),
    mut kill: watch::Receiver<u8>,
    exited: watch::Sender<Option<String>>,
    lists: Vec<Arc<Mutex<Vec<u32>>>>,
    extensions_alive: Option<watch::Sender<usize>>,
) {
    let pid = child.id();
    let status = tokio::select! {
        status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
        () = async { let _ = kill.wait_for(|level| *level >= killed_at).await; } => {
            let _ = child.kill().await;
            "shut down".to_owned()
        }
    };
    if let Some(pid) = pid {
        for list in &lists {
            list.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|p| *p != pid);
        }
    }
    if let Some(alive) = extensions_alive {
        alive.send_modify(|n| *n = n.saturating_sub(1));
    }
    exited.send_if_modified(|current| {
        if current.is_none() {
            *current = Some(format!("{what}: {status}"));
            true
        } else {
            false
        }
    });
}

/// Where a process's lines go.
#[derive(Clone)]
struct LineSink {
    kind: RecordKind,
    telemetry: std::sync::Weak<TelemetryApi>,
    echo: bool,
    kept: Option<Arc<Mutex<VecDeque<String>>>>,
    /// The function's log group, which holds its extensions' lines too (as on AWS).
    log: Option<Arc<FunctionLog>>,
}

impl LineSink {
    fn take(&self, line: String) {
        if self.echo {
            eprintln!("{line}");
        }
        if let Some(log) = &self.log {
            log.event(&line);
        }
        if let Some(kept) = &self.kept {
            let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() >= EXTENSION_LINES_KEPT {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        let record_type = match self.kind {
            RecordKind::Function => "function",
            _ => "extension",
        };
        if let Some(telemetry) = self.telemetry.upgrade() {
            telemetry.emit(self.kind, record_type, &Value::String(line));
        }
    }
}

/// Sends each line of `stream` to `sink`.
fn pump_lines(stream: Option<impl AsyncRead + Unpin + Send + 'static>, sink: LineSink) {
    let Some(stream) = stream else {
        return;
    };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.take(line);
        }
    });
}
