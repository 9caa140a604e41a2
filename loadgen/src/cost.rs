//! `loadgen cost` and a local run's cost section: what the stack cost over a window, per service,
//! per request and per order, from the local stack's records or from AWS (the sources of
//! [`lattice_cost::sources`]), priced by the built-in us-east-1 table or `--prices FILE`.
//!
//! Both ends use the same pipeline: sources → [`gather`] → [`compose`] → text or the
//! `lattice-cost/1` JSON document (`cost/report.schema.json`). Only where the numbers come from
//! differs: locally the stack's access log and function logs and its X-Ray API; on AWS
//! CloudWatch metrics, Logs Insights, X-Ray and, with `--reconcile`, Cost Explorer.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lattice_cost::document::{compose, CostDocument};
use lattice_cost::model::Arch;
use lattice_cost::prices::{self, PriceTable};
use lattice_cost::reconcile::reconcile;
use lattice_cost::render;
use lattice_cost::sources::aws::{
    AwsAccessLog, AwsClients, AwsDynamoDb, AwsLambdaReports, AwsLatticeMetrics, CostExplorerBill,
    XrayTraces,
};
use lattice_cost::sources::local::LocalRecords;
use lattice_cost::sources::{gather, BillSource, ServiceMapping, Sources, StackMap, Window};
use local_stack::stack::{StackState, SERVICES};

use crate::cli::CostArgs;

/// The window `loadgen cost` reports on without `--since` or `--from`.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3600);

/// The price table: `--prices FILE`, or the built-in one.
pub fn price_table(path: Option<&Path>) -> anyhow::Result<PriceTable> {
    match path {
        Some(path) => Ok(PriceTable::load(path)?),
        None => Ok(PriceTable::built_in()),
    }
}

/// The local stack's services as the sources know them. Locally the binaries run natively, but
/// the report prices the deployment, whose functions are arm64 (infra/aws/template.yaml).
pub fn local_stack_map(state: &StackState) -> anyhow::Result<StackMap> {
    let services = SERVICES
        .iter()
        .map(|name| {
            let service = state
                .services
                .get(*name)
                .with_context(|| format!("the local stack has no {name} service"))?;
            let tables = match *name {
                "inventory" => vec![state.dynamodb.inventory_table.clone()],
                "payment" => vec![state.dynamodb.payments_table.clone()],
                _ => Vec::new(),
            };
            Ok(ServiceMapping {
                name: (*name).to_owned(),
                service_arn: service.service_arn.clone(),
                function_name: service.function_name.clone(),
                arch: Arch::Arm64,
                tables,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(StackMap { services })
}

/// The cost document of a local stack's records over `window`, X-Ray asked through `xray`.
pub async fn local_document(
    state: &StackState,
    xray: &aws_sdk_xray::Client,
    (window, run_id): (&Window, Option<&str>),
    table: &PriceTable,
) -> anyhow::Result<CostDocument> {
    let stack = local_stack_map(state)?;
    let records = LocalRecords {
        access_log: state.access_log.clone(),
        lambda_logs: state.lambda_logs.clone(),
    };
    let traces = XrayTraces::new(xray.clone());
    let sources = Sources {
        metrics: &records,
        access_log: &records,
        lambda: &records,
        traces: &traces,
        dynamodb: &records,
    };
    let gathered = gather(&sources, &stack, window, run_id).await?;
    Ok(compose(
        &gathered,
        &stack,
        (window, run_id),
        table,
        "local",
    )?)
}

/// `loadgen cost`.
pub async fn run(args: &CostArgs) -> anyhow::Result<()> {
    let table = price_table(args.prices.as_deref())?;
    let window = window_of(args, Utc::now())?;
    let run_id = args.run_id.as_deref();
    let document = match &args.stack_map {
        Some(map) => aws_document(args, map, &window, &table).await?,
        None => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(local_stack::cli::default_state_dir);
            let state = StackState::load(&dir)?;
            let xray = local_xray_client(&state);
            local_document(&state, &xray, (&window, run_id), &table).await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", text(&document));
    }
    Ok(())
}

/// The document as text: the report, then what it cost to make.
pub fn text(document: &CostDocument) -> String {
    let mut out = format!(
        "cost of {} to {}{} ({} data)\n",
        document.window.start,
        document.window.end,
        document
            .run_id
            .as_ref()
            .map(|id| format!(", run {id}"))
            .unwrap_or_default(),
        document.origin
    );
    out.push_str(&render::text(&document.report, &document.recommendations));
    if let Some(reconciliation) = &document.reconciliation {
        out.push_str(&render::reconciliation(reconciliation));
    }
    let cost = &document.report_cost;
    out.push_str(&format!(
        "\nthis report cost {}: Logs Insights {} ({} bytes scanned), X-Ray {} ({} traces scanned), Cost Explorer {} ({} requests)\n",
        render::usd(cost.total_usd()),
        render::usd(cost.logs_insights_usd),
        cost.logs_insights_bytes_scanned,
        render::usd(cost.xray_usd),
        cost.xray_traces_scanned,
        render::usd(cost.cost_explorer_usd),
        cost.cost_explorer_requests,
    ));
    if document.reports_outside_run > 0 {
        out.push_str(&format!(
            "{} Lambda reports in the window belong to no trace of run {}: left out\n",
            document.reports_outside_run,
            document.run_id.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// `--from/--to`, or `--since` (default [`DEFAULT_SINCE`]) before `--to` or `now`.
pub fn window_of(args: &CostArgs, now: DateTime<Utc>) -> anyhow::Result<Window> {
    let end = args.to.unwrap_or(now);
    let start = match (args.from, args.since) {
        (Some(from), _) => from,
        (None, since) => end - chrono::Duration::from_std(since.unwrap_or(DEFAULT_SINCE))?,
    };
    Ok(Window::new(start, end)?)
}

/// The document of a deployed stack: CloudWatch, Logs Insights, X-Ray and, with `--reconcile`,
/// Cost Explorer.
async fn aws_document(
    args: &CostArgs,
    map: &str,
    window: &Window,
    table: &PriceTable,
) -> anyhow::Result<CostDocument> {
    let stack = stack_map_from(map)?;
    let access_log_group = args
        .access_log_group
        .as_deref()
        .context("--stack-map needs --access-log-group (the stack's Lattice access-log group)")?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let clients = AwsClients::from_config(&loader.load().await);
    let metrics = AwsLatticeMetrics::new(clients.cloudwatch.clone());
    let access_log = AwsAccessLog::new(clients.logs.clone(), access_log_group);
    let lambda = AwsLambdaReports::new(clients.logs.clone(), clients.cloudwatch.clone());
    let traces = XrayTraces::new(clients.xray.clone());
    let dynamodb = AwsDynamoDb::new(clients.cloudwatch.clone());
    let sources = Sources {
        metrics: &metrics,
        access_log: &access_log,
        lambda: &lambda,
        traces: &traces,
        dynamodb: &dynamodb,
    };
    let run_id = args.run_id.as_deref();
    let gathered = gather(&sources, &stack, window, run_id).await?;
    let mut document = compose(&gathered, &stack, (window, run_id), table, "aws")?;
    if let Some(tag) = &args.reconcile {
        let (key, value) = tag
            .split_once('=')
            .context("--reconcile takes the cost-allocation tag as KEY=VALUE")?;
        let bill = CostExplorerBill::new(clients.cost_explorer.clone())
            .bill(window, (key, value))
            .await?;
        document.report_cost.cost_explorer_requests = bill.requests;
        document.report_cost.cost_explorer_usd =
            bill.requests as f64 * table.usd(prices::COST_EXPLORER_REQUEST)?;
        document.reconciliation = Some(reconcile(&document.report, &bill));
    }
    Ok(document)
}

/// `--stack-map`: the JSON itself, or a file holding it (the stack's `CostReportStackMap`
/// output, the same JSON the scheduled report Lambda is given).
fn stack_map_from(text_or_path: &str) -> anyhow::Result<StackMap> {
    let text = if text_or_path.trim_start().starts_with('[') {
        text_or_path.to_owned()
    } else {
        std::fs::read_to_string(text_or_path)
            .with_context(|| format!("reading the stack map {text_or_path}"))?
    };
    let services: Vec<ServiceMapping> =
        serde_json::from_str(&text).context("the stack map is not a JSON list of services")?;
    anyhow::ensure!(!services.is_empty(), "the stack map lists no service");
    Ok(StackMap { services })
}

/// An X-Ray client for a local stack's API (which verifies no signature: any key will do).
fn local_xray_client(state: &StackState) -> aws_sdk_xray::Client {
    let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new("local", "local", None, None, "local-stack"),
    );
    crate::app::xray_client(
        Some(&state.xray_endpoint),
        &state.region,
        Some(credentials),
        None,
    )
}
