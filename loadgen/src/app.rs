//! A whole run: pick the target (AWS, or the embedded local stack), drive the load with a progress
//! line and Ctrl-C handling, inspect X-Ray, compare with the local stack's own records, report.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use indicatif::{ProgressBar, ProgressStyle};
use local_stack::firehose::FirehoseSetup;
use local_stack::stack::{LocalStack, StackConfig};
use tokio::sync::watch;

use crate::analytics::{local_run, telemetry_run};
use crate::cli::{InspectArgs, MapFormat, OutputArgs, ReportArgs, RunArgs, SeedStockArgs};
use crate::conservation::{self, StockConservation};
use crate::driver::{drive, DriveConfig, DriveOutcome, Live, LoadModel};
use crate::inspect::{inspect, InspectConfig, Inspection};
use crate::report::{CostSection, LocalCheck, Report, RunFacts, ServiceLog};
use crate::runner;
use crate::segments::SegmentSink;
use crate::target::{LambdaTarget, LatticeTarget, Target};
use local_stack::layers::telemetry_layer;

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
}

pub(crate) fn xray_client(
    endpoint: Option<&str>,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
    base: Option<&aws_config::SdkConfig>,
) -> aws_sdk_xray::Client {
    let mut builder = match base {
        Some(config) => aws_sdk_xray::config::Builder::from(config),
        None => aws_sdk_xray::Config::builder()
            .behavior_version(aws_sdk_xray::config::BehaviorVersion::latest()),
    };
    builder = builder.region(aws_sdk_xray::config::Region::new(region.to_owned()));
    if let Some(credentials) = credentials {
        builder = builder.credentials_provider(credentials);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_xray::Client::from_conf(builder.build())
}

/// `--region`, else the AWS config chain's.
fn region(explicit: Option<&str>, config: &aws_config::SdkConfig) -> anyhow::Result<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| anyhow::anyhow!("no region: pass --region or set AWS_REGION"))
}

fn lambda_client(
    endpoint: Option<&str>,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
    base: Option<&aws_config::SdkConfig>,
    timeout: Duration,
) -> aws_sdk_lambda::Client {
    let mut builder = match base {
        Some(config) => aws_sdk_lambda::config::Builder::from(config),
        None => aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest()),
    };
    builder = builder
        .region(aws_sdk_lambda::config::Region::new(region.to_owned()))
        // loadgen measures throttles rather than hiding them behind retries.
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        );
    if let Some(credentials) = credentials {
        builder = builder.credentials_provider(credentials);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}

fn model_text(model: &LoadModel, args: &RunArgs) -> String {
    match model {
        LoadModel::Open { .. } => match (args.rate, &args.stages) {
            (Some(rate), _) => format!("open {rate}/s"),
            (_, Some(stages)) => format!("open stages {stages}"),
            _ => "open".into(),
        },
        LoadModel::Closed { concurrency } => format!("closed {concurrency}"),
    }
}

fn random_run_id() -> String {
    use rand::Rng;
    format!("run-{:08x}", rand::rng().random::<u32>())
}

/// Writes the JSON report and the map file, prints the human report.
fn emit(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    print!("{}", report.render());
    if let Some(path) = &output.json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = &output.html {
        crate::html::write(report, path)?;
        println!("HTML report written to {}", path.display());
    }
    if let (Some(path), Some(inspection)) = (&output.map_file, &report.inspection) {
        let text = match output.map_format {
            MapFormat::Mermaid => inspection.service_map.to_mermaid(),
            MapFormat::Dot => inspection.service_map.to_dot(),
        };
        std::fs::write(path, text)?;
        println!("service map written to {}", path.display());
    }
    Ok(())
}

/// `loadgen report`: a saved report printed again, and its page written.
pub fn saved_report(args: &ReportArgs) -> anyhow::Result<()> {
    let report = Report::read(&args.from)?;
    print!("{}", report.render());
    if let Some(path) = &args.html {
        crate::html::write(&report, path)?;
        println!("HTML report written to {}", path.display());
    }
    Ok(())
}

/// The local stack's records against loadgen's counts.
fn local_check(stack: &LocalStack, outcome: &DriveOutcome, direct_invoke: bool) -> LocalCheck {
    let mut check = LocalCheck::default();
    let name_of: BTreeMap<&str, &str> = stack
        .state
        .services
        .iter()
        .map(|(name, s)| (s.service_arn.as_str(), name.as_str()))
        .collect();
    for ((arn, code), n) in stack.access_log.counts() {
        let name = name_of.get(arn.as_str()).copied().unwrap_or("?").to_owned();
        let log = check
            .access_log
            .entry(name)
            .or_insert_with(ServiceLog::default);
        log.requests += n;
        *log.statuses.entry(code.to_string()).or_default() += n;
    }
    // Invoked directly, order is not behind Lattice for loadgen's requests: nothing to compare.
    if direct_invoke {
        check.agrees = true;
        record_store(stack, &mut check);
        return check;
    }
    let order = check.access_log.get("order").cloned().unwrap_or_default();
    let ours: BTreeMap<String, u64> = outcome
        .all_statuses
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    if order.statuses != ours {
        check.disagreements.push(format!(
            "order's access log has {:?}, loadgen counted {:?} (+{} unanswered)",
            order.statuses, ours, outcome.unanswered
        ));
    }
    record_store(stack, &mut check);
    check.agrees = check.disagreements.is_empty();
    check
}

/// The inventory table read back after the run, against the stock the stack started with.
async fn stock_conservation(
    stack: &LocalStack,
    run_id: &str,
    created: u64,
) -> anyhow::Result<StockConservation> {
    let dynamodb = &stack.state.dynamodb;
    let contents =
        inventory::table::read_contents(&stack.dynamodb.client(), &dynamodb.inventory_table)
            .await
            .map_err(|e| anyhow::anyhow!("reading table {}: {e}", dynamodb.inventory_table))?;
    stack.access_log.flush();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&stack.state.access_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let inventory_arn = stack
        .state
        .services
        .get("inventory")
        .map(|s| s.service_arn.as_str())
        .unwrap_or_default();
    Ok(conservation::check(
        &dynamodb.initial_stock,
        &contents,
        run_id,
        created,
        conservation::failed_releases(&lines, inventory_arn),
    ))
}

/// The local X-Ray store's and the facade's counts.
fn record_store(stack: &LocalStack, check: &mut LocalCheck) {
    let store = stack.store.stats();
    check.evicted_traces = store.evicted_traces;
    check.rejected_documents = store.rejected;
    check.accepted_documents = store.accepted;
    check.facade_documents_sent = stack.facade_documents_sent();
}

/// TotalRequestCount per service from the EMF file.
fn metric_totals(stack_state: &local_stack::stack::StackState) -> BTreeMap<String, u64> {
    let by_id: BTreeMap<String, String> = stack_state
        .services
        .iter()
        .filter_map(|(name, s)| Some((s.service_arn.rsplit('/').next()?.to_owned(), name.clone())))
        .collect();
    let mut totals = BTreeMap::new();
    for line in std::fs::read_to_string(&stack_state.metrics_log)
        .unwrap_or_default()
        .lines()
    {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(id), Some(n)) = (
            value["Service"].as_str(),
            value["TotalRequestCount"].as_u64(),
        ) else {
            continue;
        };
        if let Some(name) = by_id.get(id) {
            *totals.entry(name.clone()).or_default() += n;
        }
    }
    totals
}

/// X-Ray's view of the run in `report`, which started at `started`.
async fn inspect_run(
    xray: &aws_sdk_xray::Client,
    report: &Report,
    started: SystemTime,
    output: &OutputArgs,
    bar: &ProgressBar,
) -> anyhow::Result<Inspection> {
    let config = InspectConfig {
        run_id: Some(report.run_id.clone()),
        start: started - Duration::from_secs(5),
        end: SystemTime::now() + Duration::from_secs(5),
        expected: report
            .requests
            .traced
            .saturating_sub(report.segments_not_sent),
        wait: output.wait,
        check_limit: output.check_limit,
    };
    inspect(xray, &config, |m| bar.set_message(m.to_owned())).await
}

/// `--runner`: the runner function drives the load inside the VPC; X-Ray is inspected from here
/// (a function in a VPC without NAT reaches Lattice, not the X-Ray API). The clients are the
/// caller's: AWS's from the config chain, or the local stack's in tests.
pub async fn run_through_runner(
    args: &RunArgs,
    function: &str,
    lambda: &aws_sdk_lambda::Client,
    xray: &aws_sdk_xray::Client,
    bar: &ProgressBar,
) -> anyhow::Result<Report> {
    bar.set_message(format!(
        "{function} is running the load inside the VPC (it answers when done, up to 15 min)…"
    ));
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut report = runner::run_remotely(lambda, function, args).await?;
    if !args.no_inspect && !report.interrupted {
        let started = humantime::parse_rfc3339(&report.started_at)
            .map_err(|e| anyhow::anyhow!("the runner's started_at {:?}: {e}", report.started_at))?;
        report.inspection = Some(inspect_run(xray, &report, started, &args.output, bar).await?);
    }
    Ok(report)
}

/// `loadgen [options]`.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let bar = progress_bar(args.output.quiet);
    if let Some(function) = &args.runner {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let region = region(args.region.as_deref(), &config)?;
        let lambda = lambda_client(None, &region, None, Some(&config), runner::INVOKE_TIMEOUT);
        let xray = xray_client(
            args.output.xray_endpoint.as_deref(),
            &region,
            None,
            Some(&config),
        );
        let report = run_through_runner(&args, function, &lambda, &xray, &bar).await?;
        bar.finish_and_clear();
        emit(&report, &args.output)?;
        return Ok(report);
    }
    let run_id = args.run_id.clone().unwrap_or_else(random_run_id);
    let model = args.model();
    let connections = match &model {
        LoadModel::Closed { concurrency } => *concurrency,
        LoadModel::Open { max_inflight, .. } => (*max_inflight).min(1024),
    };

    // The target, its credentials, and where X-Ray is.
    let (stack, target, sink, xray) = if args.local {
        bar.set_message("starting the local stack (building the services if needed)…");
        bar.enable_steady_tick(Duration::from_millis(120));
        let mut config =
            StackConfig::ephemeral(std::env::temp_dir().join(format!("loadgen-{run_id}")));
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
        let stack = LocalStack::start(config).await?;
        let key = stack
            .loadgen_key()
            .ok_or_else(|| anyhow::anyhow!("the local stack has no loadgen key"))?
            .clone();
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            None,
            None,
            "local-stack",
        ));
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
        (Some(stack), target, sink, xray)
    } else {
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
        (None, target, sink, xray)
    };
    let target = Arc::new(target);
    let sink = Arc::new(sink);

    // Ctrl-C stops the load; the report is still written.
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });

    let live = Arc::new(Live::default());
    let ticker = {
        let (live, bar) = (Arc::clone(&live), bar.clone());
        tokio::spawn(async move {
            let (mut last, mut at) = (0u64, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let done = live.completed.load(Ordering::Relaxed);
                let rate = (done - last) as f64 / at.elapsed().as_secs_f64();
                (last, at) = (done, Instant::now());
                bar.set_message(format!(
                    "{done} orders, {rate:.0}/s, p99 {:.1} ms, {} errors",
                    live.p99_us.load(Ordering::Relaxed) as f64 / 1000.0,
                    live.errors.load(Ordering::Relaxed)
                ));
            }
        })
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    let config = DriveConfig {
        model: model.clone(),
        orders: args.orders_limit(),
        duration: args.duration,
        warmup: args.warmup,
        seed: args.seed,
        sample_rate: args.sample_rate,
        run_id: run_id.clone(),
        scenario: args.scenario.clone(),
        timeout: args.timeout,
    };
    let outcome = drive(
        Arc::clone(&target),
        Arc::clone(&sink),
        &config,
        stop_rx,
        live,
    )
    .await?;
    ticker.abort();
    ctrl_c.abort();
    let searchable_after = match &stack {
        Some(stack) => {
            bar.set_message("waiting for the access log's documents to be searchable…");
            local_run::time_to_searchable(stack, local_run::SEARCHABLE_WAIT).await
        }
        None => None,
    };

    let mut report = Report::new(
        RunFacts {
            run_id: run_id.clone(),
            scenario: args.scenario.clone(),
            target: target.url().to_owned(),
            model: model_text(&model, &args),
            started_at: outcome.started,
            ended_at: outcome.ended,
            interrupted: outcome.interrupted,
            sent: outcome.sent,
            traced: outcome.traced,
            warmup: outcome.warmup_requests,
            late: outcome.late,
            dropped: outcome.dropped,
            warmup_length: args.warmup,
            measured_seconds: outcome.measured.as_secs_f64(),
            dispatched_rps: outcome.dispatched_rate,
            segments_not_sent: sink.failed(),
            series: outcome.series.clone(),
        },
        &outcome.stats,
    );
    if !args.no_inspect && !outcome.interrupted {
        report.inspection =
            Some(inspect_run(&xray, &report, outcome.started, &args.output, &bar).await?);
    }
    bar.finish_and_clear();
    if let Some(stack) = stack {
        let state = stack.state.clone();
        let mut check = local_check(&stack, &outcome, args.lambda.is_some());
        // Every order created counts, warm-up included: all of them hold stock.
        let created = outcome.all_statuses.get(&201).copied().unwrap_or(0);
        check.stock = Some(stock_conservation(&stack, &report.run_id, created).await?);
        check.analytics = local_run::check(&stack, &check.access_log, searchable_after).await;
        report.cost = Some(run_cost(&stack, &xray, &outcome, &report.run_id).await);
        if args.telemetry {
            // The extensions flush at SHUTDOWN: only then is the run's telemetry all there.
            stack.shut_down_functions().await;
            check.telemetry = Some(telemetry_run::check(&stack).await);
        }
        // EMF minutes are all written only once the stack has shut down.
        stack.shutdown().await;
        let totals = metric_totals(&state);
        for (service, lines) in &check.access_log {
            let metric = totals.get(service).copied().unwrap_or(0);
            if metric != lines.requests {
                check.disagreements.push(format!(
                    "{service}: {} access-log lines but AWS/VpcLattice TotalRequestCount {metric}",
                    lines.requests
                ));
            }
        }
        check.agrees = check.disagreements.is_empty();
        report.local = Some(check);
        if let Some(dir) = state.access_log.parent() {
            println!("local stack files: {}", dir.display());
        }
    }
    emit(&report, &args.output)?;
    Ok(report)
}

/// What a local run cost, from the stack's records of the run's window and its traces.
async fn run_cost(
    stack: &LocalStack,
    xray: &aws_sdk_xray::Client,
    outcome: &DriveOutcome,
    run_id: &str,
) -> CostSection {
    stack.flush_records();
    let document = async {
        let window = crate::cost::run_window(outcome.started.into(), outcome.ended.into())?;
        let table = crate::cost::price_table(None)?;
        crate::cost::local_document(&stack.state, xray, (&window, Some(run_id)), &table).await
    };
    match document.await {
        Ok(document) => CostSection::Report(Box::new(document)),
        Err(error) => CostSection::Unavailable(format!("{error:#}")),
    }
}

/// `loadgen seed-stock`: the catalog's stock rows, written with the caller's credentials.
pub async fn seed_stock(args: SeedStockArgs) -> anyhow::Result<()> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = region(args.region.as_deref(), &config)?;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config)
        .region(aws_sdk_dynamodb::config::Region::new(region));
    if let Some(endpoint) = &args.endpoint_url {
        builder = builder.endpoint_url(endpoint);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(builder.build());
    let (min, max) = args.stock_range;
    let levels = inventory::table::seeded_levels(args.seed, min, max);
    inventory::table::seed(&client, &args.table, &levels)
        .await
        .map_err(|e| anyhow::anyhow!("seeding table {}: {e}", args.table))?;
    let units: u64 = levels.iter().map(|(_, n)| u64::from(*n)).sum();
    println!(
        "table {}: {} SKUs, {units} units ({min}..{max} each, seed {})",
        args.table,
        levels.len(),
        args.seed
    );
    Ok(())
}

/// `loadgen inspect`.
pub async fn inspect_only(args: InspectArgs) -> anyhow::Result<Inspection> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = region(args.region.as_deref(), &config)?;
    let xray = xray_client(
        args.output.xray_endpoint.as_deref(),
        &region,
        None,
        Some(&config),
    );
    let end = SystemTime::now();
    let start = end - args.since.unwrap_or(Duration::from_secs(3600));
    let bar = progress_bar(args.output.quiet);
    let inspect_config = InspectConfig {
        run_id: args.run_id.clone(),
        start,
        end,
        expected: 0,
        wait: args.output.wait,
        check_limit: args.output.check_limit,
    };
    let inspection = inspect(&xray, &inspect_config, |m| bar.set_message(m.to_owned())).await?;
    bar.finish_and_clear();
    let report_text = serde_json::to_string_pretty(&inspection)?;
    if let Some(path) = &args.output.json {
        std::fs::write(path, &report_text)?;
    }
    println!(
        "{} traces, {} checked, {} complete ({:.1} %)",
        inspection.traces_found,
        inspection.traces_checked,
        inspection.traces_complete,
        inspection.complete_percent
    );
    print!("{}", inspection.service_map.to_table());
    if let Some(path) = &args.output.map_file {
        let text = match args.output.map_format {
            MapFormat::Mermaid => inspection.service_map.to_mermaid(),
            MapFormat::Dot => inspection.service_map.to_dot(),
        };
        std::fs::write(path, text)?;
    }
    Ok(inspection)
}
