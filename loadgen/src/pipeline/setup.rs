//! The target stage: where the orders go and how they are signed, where loadgen's own segments
//! go, and which X-Ray is read back: the embedded local stack (started here, its endpoints and
//! loadgen's key), or AWS (the config chain's Region and credentials).

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use local_stack::firehose::FirehoseSetup;
use local_stack::layers::telemetry_layer;
use local_stack::stack::{LocalStack, StackConfig};

use crate::cli::RunArgs;
use crate::clients::{lambda_client, local_stack_credentials, region, xray_client};
use crate::driver::LoadModel;
use crate::segments::SegmentSink;
use crate::target::{LambdaTarget, LatticeTarget, Target};

/// A run's target, ready to drive.
pub struct Setup {
    /// The local stack, on a local run.
    pub stack: Option<LocalStack>,
    /// Where the orders go.
    pub target: Arc<Target>,
    /// Where loadgen's own segments go.
    pub sink: Arc<SegmentSink>,
    /// The X-Ray the run is inspected in.
    pub xray: aws_sdk_xray::Client,
}

/// Connections the load model needs at most.
fn connections(model: &LoadModel) -> usize {
    match model {
        LoadModel::Closed { concurrency } => *concurrency,
        LoadModel::Open { max_inflight, .. } => (*max_inflight).min(1024),
    }
}

/// The target `args` name: the local stack (`--local`, started here) or AWS.
pub async fn prepare(
    args: &RunArgs,
    run_id: &str,
    model: &LoadModel,
    bar: &ProgressBar,
) -> anyhow::Result<Setup> {
    if args.local {
        local(args, run_id, connections(model), bar).await
    } else {
        aws(args).await
    }
}

/// The stack's configuration for this run's options.
fn stack_config(args: &RunArgs, run_id: &str, connections: usize) -> anyhow::Result<StackConfig> {
    let mut config = StackConfig::ephemeral(std::env::temp_dir().join(format!("loadgen-{run_id}")));
    if args.no_simulation {
        config = config.without_simulation();
    }
    config.rebuild_binaries = !args.no_build;
    config.raw_documents = args.raw_documents;
    config.trace_capacity = args.trace_capacity;
    config.concurrency = connections.max(8) + 8;
    if !args.no_analytics {
        config.analytics = Some(FirehoseSetup::default());
    }
    if args.telemetry {
        std::fs::create_dir_all(&config.state_dir)?;
        config.extensions_layer = Some(telemetry_layer(&config.state_dir, !args.no_build)?);
        if let Some(url) = &args.telemetry_url {
            config.service_env.push(("URL".to_owned(), url.clone()));
        }
    }
    Ok(config)
}

/// The embedded local stack, started, and its order service (or `--lambda` function) signed
/// with loadgen's key.
async fn local(
    args: &RunArgs,
    run_id: &str,
    connections: usize,
    bar: &ProgressBar,
) -> anyhow::Result<Setup> {
    bar.set_message("starting the local stack (building the services if needed)…");
    bar.enable_steady_tick(Duration::from_millis(120));
    let stack = LocalStack::start(stack_config(args, run_id, connections)?).await?;
    let credentials = local_stack_credentials(&stack)?;
    let url = format!("{}/orders", stack.service_url("order").unwrap_or_default());
    let target = match &args.lambda {
        Some(function) => {
            let lambda = lambda_client(
                Some(&stack.lambda_endpoint()),
                &stack.state.region,
                Some(credentials.clone()),
                None,
                args.timeout,
            );
            Target::Lambda(LambdaTarget::new(lambda, function, &stack.state.region))
        }
        None => Target::Lattice(Box::new(LatticeTarget::new(
            &url,
            Some(credentials.clone()),
            &stack.state.region,
            args.timeout,
        )?)),
    };
    let sink = SegmentSink::daemon(stack.xray_daemon())?;
    let xray = xray_client(
        Some(&stack.xray_endpoint()),
        &stack.state.region,
        Some(credentials),
        None,
    );
    Ok(Setup {
        stack: Some(stack),
        target: Arc::new(target),
        sink: Arc::new(sink),
        xray,
    })
}

/// A deployed stack: `--url` (or `--lambda`), signed with the config chain's credentials unless
/// `--unsigned`; loadgen's segments to `AWS_XRAY_DAEMON_ADDRESS` when set, else to the X-Ray API.
async fn aws(args: &RunArgs) -> anyhow::Result<Setup> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = region(args.region.as_deref(), &config)?;
    let credentials = if args.unsigned {
        None
    } else {
        Some(
            config
                .credentials_provider()
                .ok_or_else(|| anyhow::anyhow!("no AWS credentials in the standard chain"))?,
        )
    };
    let url = format!(
        "{}/orders",
        args.url.clone().unwrap_or_default().trim_end_matches('/')
    );
    let target = match &args.lambda {
        Some(function) => Target::Lambda(LambdaTarget::new(
            lambda_client(None, &region, None, Some(&config), args.timeout),
            function,
            &region,
        )),
        None => Target::Lattice(Box::new(LatticeTarget::new(
            &url,
            credentials,
            &region,
            args.timeout,
        )?)),
    };
    let xray = xray_client(
        args.output.xray_endpoint.as_deref(),
        &region,
        None,
        Some(&config),
    );
    let sink = match std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok() {
        Some(address) => {
            let udp = address
                .parse::<lattice_xray::daemon_address::DaemonAddress>()
                .and_then(|a| a.udp_socket_addr())
                .map_err(|e| anyhow::anyhow!("AWS_XRAY_DAEMON_ADDRESS: {e}"))?;
            SegmentSink::daemon(udp)?
        }
        None => SegmentSink::api(xray.clone()),
    };
    Ok(Setup {
        stack: None,
        target: Arc::new(target),
        sink: Arc::new(sink),
        xray,
    })
}
