//! One function: its execution environments (real processes) and synchronous `invoke`.
//!
//! An invocation takes an idle environment or starts one, as Lambda does, with one difference
//! this machine forces: every environment shares its CPUs, so at most one environment per CPU
//! initialises at a time, and an invocation waiting for an init slot takes the first environment
//! another invocation frees instead. Without that bound a rise in load starts dozens of cold
//! processes at once, they starve each other past the function timeout, the timed-out
//! environments are replaced by more cold starts, and the stack never recovers (measured: a step
//! from 125 to 250 orders/s on 2 vCPUs, p99 over 12 s with throttling until the load stopped).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};

use super::facade::{Facade, InvocationRecord};
use super::runtime_api::{Invocation, Outcome, RuntimeApi};

/// Lambda's limit on an environment's init phase.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a function runs.
#[derive(Clone, Debug)]
pub struct FunctionConfig {
    /// Function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The bootstrap binary.
    pub binary: PathBuf,
    /// Extra environment (peers' URLs, credentials, knobs).
    pub env: Vec<(String, String)>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
    /// Invocation timeout.
    pub timeout: Duration,
    /// Most environments at once (reserved concurrency).
    pub concurrency: usize,
    /// `AWS_REGION`.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// `AWS_XRAY_DAEMON_ADDRESS`, when tracing is active.
    pub xray_daemon: Option<String>,
    /// Let the processes' stdout/stderr through (otherwise discarded).
    pub show_logs: bool,
}

impl FunctionConfig {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.name
        )
    }
}

/// Why an invocation produced no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// Every environment is busy and the concurrency limit is reached.
    #[error("TooManyRequestsException: Rate Exceeded.")]
    Throttled,
    /// The invocation ran past the function's timeout; the environment was shut down.
    #[error("{0}")]
    Timeout(String),
    /// The function reported an error (`FunctionError` in Lambda's invoke response).
    #[error("function error ({error_type})")]
    Function {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: String,
        /// The error document.
        body: Bytes,
    },
    /// The environment's process exited during the invocation.
    #[error("Runtime exited: {0}")]
    EnvironmentExited(String),
    /// The environment could not start (spawn failure, init error or init timeout).
    #[error("init failed: {0}")]
    InitFailed(String),
}

/// A successful invocation.
#[derive(Clone, Debug)]
pub struct InvokeOutput {
    /// The response payload.
    pub payload: Bytes,
    /// Lambda's request id.
    pub request_id: String,
    /// The new environment's init duration, when this invocation was a cold start.
    pub init_duration: Option<Duration>,
    /// Time from handing the event over to the response.
    pub duration: Duration,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionStats {
    /// Environments started.
    pub environments_started: u64,
    /// Environments shut down after a timeout or found exited.
    pub environments_lost: u64,
    /// Init durations of the environments started.
    pub init_durations: Vec<Duration>,
    /// Invocations throttled.
    pub throttled: u64,
}

/// Kill switches of the live environments, by environment number, so the function can stop
/// every process at shutdown even while an invocation still holds its environment.
type KillSwitches = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

struct Environment {
    api: RuntimeApi,
    next: mpsc::Sender<Invocation>,
    exited: watch::Receiver<Option<String>>,
    number: u64,
    kills: KillSwitches,
}

impl Environment {
    fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let kill = self
            .kills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.number);
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
    }
}

/// A function and its environments.
pub struct Function {
    config: FunctionConfig,
    idle: Mutex<Vec<Environment>>,
    /// Signalled each time an environment goes back to `idle`.
    freed: Notify,
    /// One per CPU: environments initialising at once.
    init_slots: Semaphore,
    permits: Arc<Semaphore>,
    request_counter: AtomicU64,
    stats: Mutex<FunctionStats>,
    pids: Arc<Mutex<Vec<u32>>>,
    kills: KillSwitches,
    environment_counter: AtomicU64,
    stopped: std::sync::atomic::AtomicBool,
    facade: Option<Arc<Facade>>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// A function with no environment yet (they start on demand).
    pub fn new(config: FunctionConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self {
            config,
            idle: Mutex::default(),
            freed: Notify::new(),
            init_slots: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            permits,
            request_counter: AtomicU64::new(1),
            stats: Mutex::default(),
            pids: Arc::default(),
            kills: Arc::default(),
            environment_counter: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            facade: None,
        }
    }

    /// Turns on Active tracing: the Lambda service's own segments go through `facade`.
    pub fn with_facade(mut self, facade: Arc<Facade>) -> Self {
        self.facade = Some(facade);
        self
    }

    /// At most `slots` environments initialising at once (default: one per CPU).
    pub fn with_init_slots(mut self, slots: usize) -> Self {
        self.init_slots = Semaphore::new(slots.max(1));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> FunctionStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Environments waiting for work.
    pub fn idle_environments(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Process ids of the environments alive now (busy or idle).
    pub fn process_ids(&self) -> Vec<u32> {
        self.pids.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops every environment's process, busy or idle; later invocations start new ones.
    /// Returns once the processes are gone (or after 2 seconds).
    pub async fn shutdown(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let kills: Vec<oneshot::Sender<()>> = self
            .kills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, kill)| kill)
            .collect();
        for kill in kills {
            let _ = kill.send(());
        }
        for _ in 0..200 {
            if self.process_ids().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn bump(&self, f: impl FnOnce(&mut FunctionStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn start_environment(&self) -> Result<Environment, InvokeError> {
        let (api, next) = RuntimeApi::start()
            .await
            .map_err(|e| InvokeError::InitFailed(e.to_string()))?;
        let config = &self.config;
        let mut command = Command::new(&config.binary);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local/[$LATEST]0")
            .env("AWS_REGION", &config.region)
            .env("AWS_DEFAULT_REGION", &config.region)
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env(
                "LAMBDA_TASK_ROOT",
                config.binary.parent().unwrap_or(&config.binary),
            )
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(daemon) = &config.xray_daemon {
            command.env("AWS_XRAY_DAEMON_ADDRESS", daemon);
        }
        if !config.show_logs {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let mut child = command
            .spawn()
            .map_err(|e| InvokeError::InitFailed(format!("{}: {e}", config.binary.display())))?;
        let (exited_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel::<()>();
        let pid = child.id();
        let pids = Arc::clone(&self.pids);
        if let Some(pid) = pid {
            pids.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
        }
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "shut down".to_owned()
                }
            };
            if let Some(pid) = pid {
                pids.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|p| *p != pid);
            }
            let _ = exited_tx.send(Some(status));
        });
        let number = self.environment_counter.fetch_add(1, Ordering::Relaxed);
        self.kills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(number, kill);
        let environment = Environment {
            api,
            next,
            exited,
            number,
            kills: Arc::clone(&self.kills),
        };
        let mut exited = environment.exited.clone();
        tokio::select! {
            _ = environment.api.ready() => {}
            _ = exited.changed() => {
                let why = exited.borrow().clone().unwrap_or_default();
                return Err(InvokeError::InitFailed(format!("process exited during init: {why}")));
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => {
                return Err(InvokeError::InitFailed("init timed out after 10 seconds".to_owned()));
            }
        }
        if let Some(error) = environment.api.init_error() {
            return Err(InvokeError::InitFailed(
                String::from_utf8_lossy(&error).into_owned(),
            ));
        }
        let init = environment.api.init_duration().unwrap_or_default();
        self.bump(|s| {
            s.environments_started += 1;
            s.init_durations.push(init);
        });
        Ok(environment)
    }

    /// An idle environment, or, whichever comes first, one freed by another invocation or a new
    /// one this invocation starts once an init slot is free (then with its init duration).
    async fn environment(&self) -> Result<(Environment, Option<Duration>), InvokeError> {
        loop {
            if let Some(environment) = self.take_idle() {
                return Ok((environment, None));
            }
            tokio::select! {
                // `notify_one` keeps a permit when nobody waits, so a release between
                // `take_idle` and here is not missed.
                _ = self.freed.notified() => continue,
                slot = self.init_slots.acquire() => {
                    let _slot = slot.map_err(|e| InvokeError::InitFailed(e.to_string()))?;
                    let environment = self.start_environment().await?;
                    let init = environment.api.init_duration();
                    return Ok((environment, init));
                }
            }
        }
    }

    fn take_idle(&self) -> Option<Environment> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(environment) = idle.pop() {
            if environment.is_alive() {
                return Some(environment);
            }
            self.bump(|s| s.environments_lost += 1);
        }
        None
    }

    /// Invokes the function synchronously (`RequestResponse`) with `event`. A `trace_id` given
    /// by the caller is handed to the function as is; otherwise, with Active tracing, the
    /// invocation gets a new facade trace.
    pub async fn invoke(
        &self,
        event: Bytes,
        trace_id: Option<String>,
    ) -> Result<InvokeOutput, InvokeError> {
        let Ok(_permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.bump(|s| s.throttled += 1);
            return Err(InvokeError::Throttled);
        };
        let arrived = SystemTime::now();
        let facade = match (&self.facade, &trace_id) {
            (Some(facade), None) => Some((facade, facade.begin())),
            _ => None,
        };
        let trace_id =
            trace_id.or_else(|| facade.as_ref().map(|(_, trace)| trace.runtime_header()));
        let result = self.invoke_in_environment(event, trace_id).await;
        if let Some((facade, trace)) = facade {
            let epoch = |t: SystemTime| {
                t.duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            };
            let (request_id, init, error) = match &result {
                Ok(output) => (output.request_id.clone(), output.init_duration, None),
                Err(InvokeError::Function { error_type, .. }) => {
                    (String::new(), None, Some(error_type.clone()))
                }
                Err(other) => (String::new(), None, Some(other.to_string())),
            };
            facade.finish(
                &trace,
                &InvocationRecord {
                    function_name: &self.config.name,
                    function_arn: &self.config.arn(),
                    request_id: &request_id,
                    start: epoch(arrived),
                    init,
                    end: epoch(SystemTime::now()),
                    error: error.as_deref(),
                },
            );
        }
        result
    }

    async fn invoke_in_environment(
        &self,
        event: Bytes,
        trace_id: Option<String>,
    ) -> Result<InvokeOutput, InvokeError> {
        let (environment, init_duration) = self.environment().await?;
        let request_id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            self.request_counter.fetch_add(1, Ordering::Relaxed)
        );
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d + self.config.timeout).as_millis() as u64);
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.clone(),
            event,
            deadline_ms,
            function_arn: self.config.arn(),
            trace_id,
            reply,
        };
        let started = Instant::now();
        if environment.next.send(invocation).await.is_err() {
            self.bump(|s| s.environments_lost += 1);
            return Err(InvokeError::EnvironmentExited(
                "runtime API closed".to_owned(),
            ));
        }
        let mut exited = environment.exited.clone();
        let result = tokio::select! {
            outcome = outcome => match outcome {
                Ok(Outcome::Response(payload)) => Ok(InvokeOutput { payload, request_id, init_duration, duration: started.elapsed() }),
                Ok(Outcome::FunctionError { error_type, body }) => Err(InvokeError::Function { error_type, body }),
                Err(_) => Err(InvokeError::EnvironmentExited("no response".to_owned())),
            },
            _ = tokio::time::sleep(self.config.timeout) => {
                // Lambda's message, with the timeout to two decimals.
                Err(InvokeError::Timeout(format!("Task timed out after {:.2} seconds", self.config.timeout.as_secs_f64())))
            }
            _ = exited.changed() => {
                let why = exited.borrow().clone().unwrap_or_default();
                Err(InvokeError::EnvironmentExited(why))
            }
        };
        match &result {
            Ok(_) | Err(InvokeError::Function { .. })
                if environment.is_alive() && !self.stopped.load(Ordering::Relaxed) =>
            {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(environment);
                self.freed.notify_one();
            }
            _ => {
                // Timed out or exited: the environment is not reused (dropping it kills the process).
                self.bump(|s| s.environments_lost += 1);
            }
        }
        result
    }
}
