//! The checks stage of a local run: the stack's own records against loadgen's counts (the
//! access log and the EMF metrics, the X-Ray store's and the daemon's counts), the inventory table
//! read back (every unit of stock accounted for), the traffic analytics and the telemetry where
//! the run had them, and what the run cost.

use std::collections::BTreeMap;
use std::time::Duration;

use local_stack::stack::LocalStack;

use crate::analytics::{local_run, telemetry_run};
use crate::cli::RunArgs;
use crate::conservation::{self, StockConservation};
use crate::driver::DriveOutcome;
use crate::report::{CostSection, LocalCheck, Report, ServiceLog};

/// Runs every local check into `report` (`local`, `cost`), then shuts `stack` down: the EMF
/// minutes and the extensions' last telemetry are all written only then.
pub async fn run(
    args: &RunArgs,
    stack: LocalStack,
    xray: &aws_sdk_xray::Client,
    outcome: &DriveOutcome,
    searchable_after: Option<Duration>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let state = stack.state.clone();
    let mut check = local_check(&stack, outcome, args.lambda.is_some());
    // Every order created counts, warm-up included: all of them hold stock.
    let created = outcome.all_statuses.get(&201).copied().unwrap_or(0);
    check.stock = Some(stock_conservation(&stack, &report.run_id, created).await?);
    check.analytics = local_run::check(&stack, &check.access_log, searchable_after).await;
    report.cost = Some(run_cost(&stack, xray, outcome, &report.run_id).await);
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
