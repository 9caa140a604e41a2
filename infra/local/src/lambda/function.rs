//! One function: its execution environments (real processes) and synchronous `invoke`.
//!
//! An invocation takes an idle environment or starts one, as Lambda does, with one difference
//! this machine forces: every environment shares its CPUs, so at most one environment per CPU
//! initialises at a time, and an invocation waiting for an init slot takes the first environment
//! another invocation frees instead. Without that bound a rise in load starts dozens of cold
//! processes at once, they starve each other past the function timeout, the timed-out
//! environments are replaced by more cold starts, and the stack never recovers (measured: a step
//! from 125 to 250 orders/s on 2 vCPUs, p99 over 12 s with throttling until the load stopped).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};

use super::environment::{self, Control, Environment, FunctionShared};
use super::extensions_api::ShutdownReason;
use super::facade::{Facade, InvocationRecord};
use super::function_log::{FunctionLog, ReportLine};
use super::platform_records::{self as records, Report, Status};
use super::runtime_api::{Invocation, Outcome};
use super::telemetry_api::{RecordKind, TelemetryStats};

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
    /// The external extensions each environment starts first (a layer's `extensions/*`).
    pub extensions: Vec<PathBuf>,
    /// Its log group ([`FunctionLog`]): `START`/`END`/`REPORT` per invocation and the
    /// processes' output. `None`: not kept.
    pub log: Option<Arc<FunctionLog>>,
}

impl FunctionConfig {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.name
        )
    }

    /// The environment of an environment's processes (the runtime and its extensions).
    pub fn process_env(&self, runtime_api: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local/[$LATEST]0".to_owned()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
            (
                "LAMBDA_TASK_ROOT",
                self.binary
                    .parent()
                    .unwrap_or(&self.binary)
                    .display()
                    .to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.env.iter().cloned());
        if let Some(daemon) = &self.xray_daemon {
            env.push(("AWS_XRAY_DAEMON_ADDRESS".to_owned(), daemon.clone()));
        }
        env
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
    /// Invocations handed to an environment.
    pub invocations: u64,
}

/// The environments waiting for work, and the counters: shared with the tasks that finish an
/// invocation after its response went back (while extensions still work).
#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Environment>>,
    /// Signalled each time an environment goes back to `idle`.
    freed: Notify,
    stats: Mutex<FunctionStats>,
    stopped: AtomicBool,
}

impl Pool {
    fn bump(&self, f: impl FnOnce(&mut FunctionStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Back to `idle`, or retired when it cannot be reused.
    fn release(&self, environment: Environment, reusable: bool) {
        if reusable && environment.is_alive() && !self.stopped.load(Ordering::Relaxed) {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(environment);
            self.freed.notify_one();
        } else {
            // Timed out or exited: not reused.
            self.bump(|s| s.environments_lost += 1);
            let reason = if environment.is_alive() {
                ShutdownReason::Timeout
            } else {
                ShutdownReason::Failure
            };
            environment.retire(reason);
        }
    }

    fn take_idle(&self) -> Option<Environment> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(environment) = idle.pop() {
            if environment.is_alive() {
                return Some(environment);
            }
            self.bump(|s| s.environments_lost += 1);
        }
        None
    }
}

/// A function and its environments.
pub struct Function {
    config: FunctionConfig,
    pool: Arc<Pool>,
    /// One per CPU: environments initialising at once.
    init_slots: Semaphore,
    permits: Arc<Semaphore>,
    request_counter: AtomicU64,
    shared: FunctionShared,
    environment_counter: AtomicU64,
    facade: Option<Arc<Facade>>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// How the runtime's part of an invocation ended.
struct RuntimePart {
    result: Result<InvokeOutput, InvokeError>,
    status: Status,
    error_type: Option<String>,
}

impl Function {
    /// A function with no environment yet (they start on demand).
    pub fn new(config: FunctionConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self {
            config,
            pool: Arc::default(),
            init_slots: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            permits,
            request_counter: AtomicU64::new(1),
            shared: FunctionShared::default(),
            environment_counter: AtomicU64::new(0),
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
        self.pool
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Environments waiting for work.
    pub fn idle_environments(&self) -> usize {
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Process ids of the runtimes alive now (busy or idle environments).
    pub fn process_ids(&self) -> Vec<u32> {
        self.shared
            .runtime_pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Telemetry counters over every environment so far.
    pub fn telemetry_stats(&self) -> TelemetryStats {
        *self
            .shared
            .telemetry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The extensions' last lines (up to 200), oldest first.
    pub fn extension_lines(&self) -> Vec<String> {
        self.shared
            .extension_lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Pids of every process of the idle environments (runtimes and extensions).
    pub fn idle_environment_pids(&self) -> Vec<u32> {
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flat_map(Environment::pids)
            .collect()
    }

    /// Stops every environment, busy or idle: extensions get `SHUTDOWN` and up to 2 s, then
    /// every process is killed. Later invocations start new environments. Returns once the
    /// processes are gone (or after 2 more seconds).
    pub async fn shutdown(&self) {
        self.pool.stopped.store(true, Ordering::Relaxed);
        let idle: Vec<Environment> = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        let controls: Vec<Control> = self
            .shared
            .controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, control)| control)
            .collect();
        let shutdowns: Vec<_> = controls
            .into_iter()
            .map(|control| tokio::spawn(control.shut_down(ShutdownReason::Spindown)))
            .collect();
        for shutdown in shutdowns {
            let _ = shutdown.await;
        }
        drop(idle);
        for _ in 0..200 {
            if self.process_ids().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// An idle environment, or, whichever comes first, one freed by another invocation or a new
    /// one this invocation starts once an init slot is free (then with its init duration).
    async fn environment(&self) -> Result<(Environment, Option<Duration>), InvokeError> {
        loop {
            if let Some(environment) = self.pool.take_idle() {
                return Ok((environment, None));
            }
            tokio::select! {
                // `notify_one` keeps a permit when nobody waits, so a release between
                // `take_idle` and here is not missed.
                () = self.pool.freed.notified() => continue,
                slot = self.init_slots.acquire() => {
                    let _slot = slot.map_err(|e| InvokeError::InitFailed(e.to_string()))?;
                    let number = self.environment_counter.fetch_add(1, Ordering::Relaxed);
                    let environment =
                        environment::start(&self.config, number, &self.shared).await?;
                    let init = environment.init_duration;
                    self.pool.bump(|s| {
                        s.environments_started += 1;
                        s.init_durations.push(init);
                    });
                    return Ok((environment, Some(init)));
                }
            }
        }
    }

    /// Invokes the function synchronously (`RequestResponse`) with `event`. A `trace_id` given
    /// by the caller is handed to the function as is; otherwise, with Active tracing, the
    /// invocation gets a new facade trace.
    pub async fn invoke(
        &self,
        event: Bytes,
        trace_id: Option<String>,
    ) -> Result<InvokeOutput, InvokeError> {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.pool.bump(|s| s.throttled += 1);
            return Err(InvokeError::Throttled);
        };
        let arrived = SystemTime::now();
        let facade = match (&self.facade, &trace_id) {
            (Some(facade), None) => Some((facade, facade.begin())),
            _ => None,
        };
        let trace_id =
            trace_id.or_else(|| facade.as_ref().map(|(_, trace)| trace.runtime_header()));
        let result = self.invoke_in_environment(event, trace_id, permit).await;
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
        permit: OwnedSemaphorePermit,
    ) -> Result<InvokeOutput, InvokeError> {
        let (environment, init_duration) = self.environment().await?;
        self.pool.bump(|s| s.invocations += 1);
        let request_id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            self.request_counter.fetch_add(1, Ordering::Relaxed)
        );
        let deadline = Instant::now() + self.config.timeout;
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d + self.config.timeout).as_millis() as u64);
        let telemetry = Arc::clone(&environment.telemetry);
        telemetry.emit(
            RecordKind::Platform,
            "platform.start",
            &records::start(&request_id, trace_id.as_deref()),
        );
        if let Some(log) = &self.config.log {
            log.start(&request_id);
        }
        environment.extensions.deliver_invoke(
            &request_id,
            deadline_ms,
            &self.config.arn(),
            trace_id.as_deref(),
        );
        let started = Instant::now();
        let part = self
            .run_runtime(
                &environment,
                event,
                &request_id,
                deadline_ms,
                trace_id.clone(),
                init_duration,
            )
            .await;
        telemetry.emit(
            RecordKind::Platform,
            "platform.runtimeDone",
            &records::runtime_done(
                &request_id,
                part.status,
                part.error_type.as_deref(),
                started.elapsed(),
                part.result.as_ref().map_or(0, |o| o.payload.len()),
                trace_id.as_deref(),
            ),
        );
        let finish = Finish {
            pool: Arc::clone(&self.pool),
            log: self.config.log.clone(),
            memory_mb: self.config.memory_mb,
            request_id,
            trace_id,
            init_duration,
            started,
            deadline,
            status: part.status,
            error_type: part.error_type,
        };
        if environment.extensions.any_registered() && part.status != Status::Timeout {
            // As on AWS the response goes back now; the environment is busy until every
            // extension has called `next` again.
            tokio::spawn(finish.after_extensions(environment, permit));
        } else {
            finish.report(&environment);
            let reusable = matches!(part.status, Status::Success | Status::Error);
            self.pool.release(environment, reusable);
            drop(permit);
        }
        part.result
    }

    async fn run_runtime(
        &self,
        environment: &Environment,
        event: Bytes,
        request_id: &str,
        deadline_ms: u64,
        trace_id: Option<String>,
        init_duration: Option<Duration>,
    ) -> RuntimePart {
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.to_owned(),
            event,
            deadline_ms,
            function_arn: self.config.arn(),
            trace_id,
            reply,
        };
        let started = Instant::now();
        let failure = |error: InvokeError| RuntimePart {
            error_type: Some("Runtime.ExitError".to_owned()),
            result: Err(error),
            status: Status::Failure,
        };
        if environment.next.send(invocation).await.is_err() {
            return failure(InvokeError::EnvironmentExited(
                "runtime API closed".to_owned(),
            ));
        }
        let mut exited = environment.exited.clone();
        tokio::select! {
            outcome = outcome => match outcome {
                Ok(Outcome::Response(payload)) => RuntimePart {
                    result: Ok(InvokeOutput { payload, request_id: request_id.to_owned(), init_duration, duration: started.elapsed() }),
                    status: Status::Success,
                    error_type: None,
                },
                Ok(Outcome::FunctionError { error_type, body }) => RuntimePart {
                    status: Status::Error,
                    error_type: Some(error_type.clone()),
                    result: Err(InvokeError::Function { error_type, body }),
                },
                Err(_) => failure(InvokeError::EnvironmentExited("no response".to_owned())),
            },
            () = tokio::time::sleep(self.config.timeout) => RuntimePart {
                // Lambda's message, with the timeout to two decimals.
                result: Err(InvokeError::Timeout(format!("Task timed out after {:.2} seconds", self.config.timeout.as_secs_f64()))),
                status: Status::Timeout,
                error_type: Some("Sandbox.Timedout".to_owned()),
            },
            why = exited.wait_for(Option::is_some) => {
                let why = why.map(|why| why.clone().unwrap_or_default()).unwrap_or_default();
                failure(InvokeError::EnvironmentExited(why))
            }
        }
    }
}

/// The end of an invocation: its `platform.report` and the environment's release.
struct Finish {
    pool: Arc<Pool>,
    log: Option<Arc<FunctionLog>>,
    memory_mb: u32,
    request_id: String,
    trace_id: Option<String>,
    init_duration: Option<Duration>,
    started: Instant,
    deadline: Instant,
    status: Status,
    error_type: Option<String>,
}

impl Finish {
    fn report(&self, environment: &Environment) {
        let duration = self.started.elapsed();
        let max_memory_used_mb = records::peak_memory_mb(&environment.pids());
        environment.telemetry.emit(
            RecordKind::Platform,
            "platform.report",
            &records::report(&Report {
                request_id: &self.request_id,
                status: self.status,
                error_type: self.error_type.as_deref(),
                duration,
                init: self.init_duration,
                memory_mb: self.memory_mb,
                max_memory_used_mb,
                trace_id: self.trace_id.as_deref(),
            }),
        );
        if let Some(log) = &self.log {
            log.end(&ReportLine {
                request_id: &self.request_id,
                duration,
                billed_ms: records::billed_ms(duration, self.init_duration),
                memory_mb: self.memory_mb,
                max_memory_used_mb,
                init: self.init_duration,
                trace_header: self.trace_id.as_deref(),
            });
        }
    }

    /// Waits (up to the invocation's deadline) for every extension to call `next`, then reports
    /// and releases the environment.
    async fn after_extensions(mut self, environment: Environment, permit: OwnedSemaphorePermit) {
        let mut exited = environment.exited.clone();
        let done = tokio::select! {
            () = environment.extensions.all_ready() => true,
            () = tokio::time::sleep_until(self.deadline.into()) => false,
            _ = exited.wait_for(Option::is_some) => false,
        };
        if !done && self.status == Status::Success {
            self.status = if environment.is_alive() {
                Status::Timeout
            } else {
                Status::Failure
            };
            self.error_type = Some(match self.status {
                Status::Timeout => "Sandbox.Timedout".to_owned(),
                _ => "Extension.Crash".to_owned(),
            });
        }
        self.report(&environment);
        let reusable = done && matches!(self.status, Status::Success | Status::Error);
        self.pool.release(environment, reusable);
        drop(permit);
    }
}
