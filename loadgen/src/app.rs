//! The command line's runs, from the laptop: `loadgen [options]` (the [pipeline](crate::pipeline)
//! with a progress line, then the report printed and written), `loadgen report` (a saved report
//! again), `loadgen inspect` and `loadgen seed-stock`.

use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{InspectArgs, MapFormat, OutputArgs, ReportArgs, RunArgs, SeedStockArgs};
use crate::clients::{region, xray_client};
use crate::inspect::{inspect, InspectConfig, Inspection};
use crate::pipeline;
use crate::report::Report;

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

fn emit(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    print!("{}", report.render());
    if let Some(path) = &output.json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = &output.html {
        write_page(report, path)?;
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

/// The run's HTML page, written to `path` and said so.
fn write_page(report: &Report, path: &std::path::Path) -> anyhow::Result<()> {
    crate::html::write(report, path)?;
    println!("HTML report written to {}", path.display());
    Ok(())
}

/// `loadgen report`: a saved report printed again, and its page written.
pub fn saved_report(args: &ReportArgs) -> anyhow::Result<()> {
    let report = Report::read(&args.from)?;
    print!("{}", report.render());
    if let Some(path) = &args.html {
        write_page(&report, path)?;
    }
    Ok(())
}

/// `loadgen [options]`: the run, then its report printed and written.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let bar = progress_bar(args.output.quiet);
    let report = pipeline::execute(&args, &bar).await?;
    bar.finish_and_clear();
    emit(&report, &args.output)?;
    Ok(report)
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
    if args.output.html.is_some() {
        anyhow::bail!(
            "--html draws a run's report, and `loadgen inspect` has only X-Ray's view: write the run's page with `loadgen --html`, or later with `loadgen report --from report.json --html FILE`"
        );
    }
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
