//! `loadgen cost` and a local run's cost section: what the stack cost over a window, per service,
//! per request and per order, from the local stack's records or from AWS (the sources of
//! [`lattice_cost::sources`]), priced by the built-in us-east-1 table or `--prices FILE`.
//!
//! Both ends use the same pipeline: sources → [`gather`] → [`compose`] → text or the
//! `lattice-cost/2` JSON document (`cost/report.schema.json`). Only where the numbers come from
//! differs: locally the stack's access log and function logs and its X-Ray API; on AWS
//! CloudWatch metrics, Logs Insights, X-Ray and, with `--reconcile`, Cost Explorer.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lattice_cost::document::{add_bill, compose, CostDocument};
use lattice_cost::model::Arch;
use lattice_cost::prices::PriceTable;
use lattice_cost::render;
use lattice_cost::sources::aws::{AwsClients, AwsSources, CostExplorerBill, XrayTraces};
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
    let (window, run_id) = match &args.report {
        Some(path) => run_of_report(path)?,
        None => (window_of(args, Utc::now())?, args.run_id.clone()),
    };
    let run_id = run_id.as_deref();
    let document = match &args.stack_map {
        Some(map) => aws_document(args, map, (&window, run_id), &table).await?,
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

/// Records written after a run's last response (its last `REPORT` lines, the access log's last
/// second) still belong to it.
pub const RUN_GRACE: Duration = Duration::from_secs(1);

/// A run's window, `[started, ended + RUN_GRACE)`.
pub fn run_window(started: DateTime<Utc>, ended: DateTime<Utc>) -> anyhow::Result<Window> {
    Ok(Window::new(
        started,
        ended + chrono::Duration::from_std(RUN_GRACE)?,
    )?)
}

/// The window and run id of a loadgen JSON report (`started_at`, `ended_at`, `run_id`).
pub fn run_of_report(path: &Path) -> anyhow::Result<(Window, Option<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the run's report {}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a loadgen JSON report", path.display()))?;
    let time = |field: &str| -> anyhow::Result<DateTime<Utc>> {
        let text = report[field]
            .as_str()
            .with_context(|| format!("{}: no {field}", path.display()))?;
        Ok(DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("{}: {field} {text:?}", path.display()))?
            .with_timezone(&Utc))
    };
    let run_id = report["run_id"]
        .as_str()
        .with_context(|| format!("{}: no run_id", path.display()))?;
    let window = run_window(time("started_at")?, time("ended_at")?)?;
    Ok((window, Some(run_id.to_owned())))
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
    (window, run_id): (&Window, Option<&str>),
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
    let aws = AwsSources::new(&clients, access_log_group);
    let gathered = gather(&aws.sources(), &stack, window, run_id).await?;
    let mut document = compose(&gathered, &stack, (window, run_id), table, "aws")?;
    if let Some(tag) = &args.reconcile {
        let (key, value) = tag
            .split_once('=')
            .context("--reconcile takes the cost-allocation tag as KEY=VALUE")?;
        let bill = CostExplorerBill::new(clients.cost_explorer.clone())
            .bill(window, (key, value))
            .await?;
        add_bill(&mut document, &bill, table)?;
    }
    Ok(document)
}

/// `--stack-map`: the JSON itself, or a file holding it (the stack's `StackServices`
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
    crate::clients::xray_client(
        Some(&state.xray_endpoint),
        &state.region,
        Some(credentials),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> CostArgs {
        let mut all = vec!["loadgen", "cost"];
        all.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(all).unwrap().command {
            Some(crate::cli::Command::Cost(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_window_is_the_last_hour_unless_told_otherwise() {
        let now = at("2026-12-02T15:00:00Z");
        let window = window_of(&args(&[]), now).unwrap();
        assert_eq!(
            window.describe(),
            "2026-12-02T14:00:00.000Z to 2026-12-02T15:00:00.000Z"
        );
        let window = window_of(
            &args(&["--since", "10m", "--to", "2026-12-02T12:00:00Z"]),
            now,
        )
        .unwrap();
        assert_eq!(
            window.describe(),
            "2026-12-02T11:50:00.000Z to 2026-12-02T12:00:00.000Z"
        );
        let window = window_of(
            &args(&[
                "--from",
                "2026-12-01T00:00:00Z",
                "--to",
                "2026-12-02T00:00:00Z",
            ]),
            now,
        )
        .unwrap();
        assert_eq!(window.seconds(), 86_400.0);
        let reversed = window_of(
            &args(&[
                "--from",
                "2026-12-02T00:00:00Z",
                "--to",
                "2026-12-01T00:00:00Z",
            ]),
            now,
        )
        .unwrap_err();
        assert_eq!(
            reversed.to_string(),
            "the window 2026-12-02T00:00:00Z to 2026-12-01T00:00:00Z is empty: its end must come after its start"
        );
    }

    #[test]
    fn a_stack_map_is_json_or_a_file_and_an_empty_or_broken_one_is_refused() {
        let json = r#"[{"name":"order","service_arn":"arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0a","function_name":"orders-order","arch":"arm64"}]"#;
        let map = stack_map_from(json).unwrap();
        assert_eq!(map.services[0].service_id(), "svc-0a");
        let file = std::env::temp_dir().join(format!("stack-map-{}.json", std::process::id()));
        std::fs::write(&file, json).unwrap();
        assert_eq!(stack_map_from(file.to_str().unwrap()).unwrap(), map);
        let _ = std::fs::remove_file(&file);
        assert_eq!(
            stack_map_from("[]").unwrap_err().to_string(),
            "the stack map lists no service"
        );
        assert!(stack_map_from("/nonexistent/map.json")
            .unwrap_err()
            .to_string()
            .starts_with("reading the stack map /nonexistent/map.json"));
        assert_eq!(
            format!("{:#}", stack_map_from(r#"[{"name":"order"}]"#).unwrap_err()),
            "the stack map is not a JSON list of services: missing field `service_arn` at line 1 column 17"
        );
    }

    #[test]
    fn a_runs_report_gives_its_run_id_and_window_with_the_grace_second() {
        let path = std::env::temp_dir().join(format!("run-report-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"run_id":"run-1","started_at":"2026-12-02T15:09:20.451Z","ended_at":"2026-12-02T15:09:22.355Z"}"#,
        )
        .unwrap();
        let (window, run_id) = run_of_report(&path).unwrap();
        assert_eq!(run_id.as_deref(), Some("run-1"));
        assert_eq!(
            window.describe(),
            "2026-12-02T15:09:20.451Z to 2026-12-02T15:09:23.355Z"
        );
        std::fs::write(
            &path,
            r#"{"run_id":"run-1","started_at":"2026-12-02T15:09:20Z"}"#,
        )
        .unwrap();
        let error = format!("{:#}", run_of_report(&path).unwrap_err());
        let _ = std::fs::remove_file(&path);
        assert!(error.ends_with(": no ended_at"), "{error}");
    }

    #[test]
    fn the_consumed_capacity_lines_the_services_write_are_the_ones_the_local_source_reads() {
        assert_eq!(
            lattice_cost::sources::local::CONSUMED_CAPACITY_MESSAGE,
            lattice_xray::consumed_capacity::MESSAGE
        );
    }

    #[test]
    fn a_price_table_missing_a_line_is_refused_naming_it() {
        let path = std::env::temp_dir().join(format!("prices-{}.json", std::process::id()));
        let mut table: serde_json::Value =
            serde_json::from_str(lattice_cost::prices::US_EAST_1).unwrap();
        table["prices"]
            .as_object_mut()
            .unwrap()
            .remove("xray.traces_recorded");
        std::fs::write(&path, table.to_string()).unwrap();
        let error = price_table(Some(&path)).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("xray.traces_recorded"), "{error}");
    }
}
