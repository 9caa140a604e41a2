//! The order of the init steps, for `main`: configuration (never fatal), registration through
//! `lambda-extension`, the listener, the Telemetry API subscription, then the crate's event loop.
//! Nothing talks to OpenSearch or Secrets Manager here: a backend outage must not fail the
//! function's init. A listener or subscription failure is one line, and the extension goes on
//! as a no-op that still calls `next`, so the function runs as if it were not there.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_extension::{service_fn, Extension, LambdaEvent};
use sha2::{Digest, Sha256};

use crate::auth::{Auth, BasicFromSecret, SecretsManager, SigV4};
use crate::backend::HttpBackend;
use crate::config::Config;
use crate::counters::Counters;
use crate::dispatch::Dispatcher;
use crate::documents::DocumentContext;
use crate::extension::{Parts, TelemetryExtension};
use crate::intake::Intake;
use crate::listener::{listen_address, Listener, PORT};
use crate::queue::{PostQueue, DEFAULT_MAX_QUEUED_BYTES};
use crate::say::{self, OnceLog};
use crate::subscribe::subscribe;
use crate::templates::{self, Installer};

/// Runs the extension until SHUTDOWN (which exits the process) or until the Extensions API fails.
pub async fn run() -> ExitCode {
    let (config, warnings) = Config::from_env();
    warnings.iter().for_each(say::line);
    let counters = Arc::new(Counters::new());
    let queue = Arc::new(PostQueue::new(
        DEFAULT_MAX_QUEUED_BYTES,
        Arc::clone(&counters),
    ));
    let processor_cell: Arc<OnceLock<TelemetryExtension>> = Arc::new(OnceLock::new());
    let cell = Arc::clone(&processor_cell);
    let processor = service_fn(move |event: LambdaEvent| on_event(Arc::clone(&cell), event));
    let events = ["INVOKE", "SHUTDOWN"];
    let registered = match Extension::new()
        .with_events(&events)
        .with_events_processor(processor)
        .register()
        .await
    {
        Ok(registered) => registered,
        Err(error) => {
            say::line(format!("registration failed: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let subscribed = listen_and_subscribe(&config, &registered.extension_id, &queue).await;
    let context = DocumentContext {
        extension_id: registered.extension_id.clone(),
        function_name: config
            .function_name
            .clone()
            .unwrap_or(registered.function_name.clone()),
        function_version: config
            .function_version
            .clone()
            .or(Some(registered.function_version.clone())),
        indices: config.indices.clone(),
    };
    let log = Arc::new(OnceLog::new());
    let dispatcher = dispatcher(&config, &registered.extension_id, &counters, &log);
    let extension = TelemetryExtension::new(Parts {
        queue,
        intake: Intake::new(context, Arc::clone(&counters)),
        counters,
        queue_max_events: config.queue_max_events,
        dispatcher,
        min_batch_events: config.min_batch_events,
        dispatch_timeout: config.dispatch_timeout,
        subscribed,
    });
    let _ = processor_cell.set(extension);
    match registered.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say::line(format!("the Extensions API failed: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// The events processor: the extension's handling once it is built (always, before `run`);
/// after SHUTDOWN, the summary line and the exit. Never an error.
async fn on_event(
    cell: Arc<OnceLock<TelemetryExtension>>,
    event: LambdaEvent,
) -> Result<(), Infallible> {
    let Some(extension) = cell.get() else {
        return Ok(());
    };
    if let Some(summary) = extension.handle(&event.next).await {
        say::line(summary);
        std::process::exit(0);
    }
    Ok(())
}

/// Starts the listener, then subscribes; whether telemetry will arrive.
async fn listen_and_subscribe(config: &Config, extension_id: &str, queue: &Arc<PostQueue>) -> bool {
    let Some(runtime_api) = config.runtime_api.as_deref() else {
        say::line("AWS_LAMBDA_RUNTIME_API is not set: not subscribing");
        return false;
    };
    let Some(address) = listen_address(Some(runtime_api), PORT).await else {
        say::line(format!("no address to listen on (neither sandbox.localdomain nor {runtime_api} resolves): not subscribing"));
        return false;
    };
    // Kept running for the life of the process.
    if let Err(error) = Listener::start(address, Arc::clone(queue)).await {
        say::line(format!(
            "cannot listen on {address}: {error}; not subscribing"
        ));
        return false;
    }
    match subscribe(runtime_api, extension_id).await {
        Ok(()) => true,
        Err(error) => {
            say::line(format!("{error}; shipping nothing"));
            false
        }
    }
}

/// The dispatcher for the configured endpoint, or `None` without one.
fn dispatcher(
    config: &Config,
    extension_id: &str,
    counters: &Arc<Counters>,
    log: &Arc<OnceLog>,
) -> Option<Dispatcher> {
    let url = config.url.as_deref()?;
    let auth = match &config.auth_secret {
        Some(secret_id) => Auth::Basic(BasicFromSecret::new(
            secret_id,
            Arc::new(SecretsManager::new()),
        )),
        None => Auth::SigV4(SigV4::from_environment(config.region.clone())),
    };
    let backend = match HttpBackend::new(url, auth, Arc::clone(log)) {
        Ok(backend) => backend,
        Err(error) => {
            say::line(format!("no HTTP client ({error}): shipping nothing"));
            return None;
        }
    };
    let installer = Installer::new(templates::all(&config.indices));
    Some(Dispatcher::new(
        Arc::new(backend),
        installer,
        Arc::clone(counters),
        Arc::clone(log),
        jitter_seed(extension_id),
    ))
}

/// A seed that differs between environments and starts, so their retries do not align.
fn jitter_seed(extension_id: &str) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::new()
        .chain_update(extension_id.as_bytes())
        .chain_update(nanos.to_le_bytes())
        .finalize();
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(seed)
}
