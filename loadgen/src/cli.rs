//! The command line. `loadgen [options]` runs load then inspects; `loadgen inspect` only inspects.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::schedule::{parse_stages, Stage};

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

/// Run ids go into annotations and filter expressions: letters, digits, `-`, `_`, `.`.
fn run_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: use 1-64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn start_time(text: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

fn partition(text: &str) -> Result<crate::partition::Partition, String> {
    text.parse()
        .map_err(|e: crate::partition::PartitionError| e.to_string())
}

fn runner_count(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=crate::fanout::MAX_RUNNERS).contains(n))
        .ok_or_else(|| format!("{text:?}: runners are 1 to {}", crate::fanout::MAX_RUNNERS))
}

fn wave_length(text: &str) -> Result<Duration, String> {
    let length = duration(text)?;
    if length.subsec_nanos() != 0 {
        return Err(format!(
            "{text:?}: a wave lasts whole seconds (the waves' seconds follow each other in the series)"
        ));
    }
    if length.is_zero() || length > crate::fanout::MAX_WAVE {
        return Err(format!(
            "{text:?}: a wave lasts at most {} (the runner's 15-minute limit, less its start and answer)",
            humantime::format_duration(crate::fanout::MAX_WAVE)
        ));
    }
    Ok(length)
}

fn positive_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("{text:?} is not a positive rate"))
}

fn sample_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0 && *r <= 1.0)
        .ok_or_else(|| format!("{text:?} is not a share of orders above 0 and at most 1"))
}

/// A parsed `--stages` value (one argument holding several stages).
#[derive(Clone, Debug, PartialEq)]
pub struct Stages(pub Vec<Stage>);

fn stages(text: &str) -> Result<Stages, String> {
    parse_stages(text).map(Stages).map_err(|e| e.to_string())
}

/// Written back in the syntax `--stages` takes.
impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, stage) in self.0.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let duration = humantime::format_duration(stage.duration.unwrap_or_default());
            write!(f, "{separator}{}/s:{duration}", stage.rate)?;
        }
        Ok(())
    }
}

/// Drive concurrent orders through VPC Lattice (or the local stack), then inspect X-Ray.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// `inspect` (no subcommand: run load, then inspect).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect X-Ray for an earlier run (no load).
    Inspect(InspectArgs),
    /// Write the simulated catalog's stock into a deployed inventory table (once, after deploy).
    SeedStock(SeedStockArgs),
    /// Ask the traffic-analytics dashboard's questions of the access-log indices (a local engine
    /// or an Amazon OpenSearch Service domain) and print the answers; or, with --setup, install
    /// the index template (and the Firehose writer role).
    Analytics(AnalyticsArgs),
    /// What the stack cost over a window: per service, per 1M requests, per order, the
    /// projection at other rates and the recommendations, from a local stack's records or from
    /// AWS (CloudWatch, Logs Insights, X-Ray; Cost Explorer with --reconcile).
    Cost(CostArgs),
    /// A saved run's report (`--json FILE`) again: printed, and with --html written as the
    /// run's HTML page.
    Report(ReportArgs),
}

/// `loadgen report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The JSON report of a run (written by `loadgen --json FILE`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Write the run's HTML page (the same page `loadgen --html` writes).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `loadgen cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// A running `local-stack up`'s state folder (the default source, with its default folder).
    #[arg(long, value_name = "DIR", conflicts_with = "stack_map")]
    pub state_dir: Option<PathBuf>,
    /// A deployed stack: its services as JSON, or a file holding it (the stack's
    /// StackServices output: [{"name", "service_arn", "function_name", "arch", "tables"}],
    /// the entry service first).
    #[arg(long, value_name = "JSON|FILE", requires = "access_log_group")]
    pub stack_map: Option<String>,
    /// With --stack-map: the service network's access-log group (the AccessLogGroupName output).
    #[arg(long, value_name = "NAME")]
    pub access_log_group: Option<String>,
    /// With --stack-map: the stack's Region (default: the AWS config chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// The window: this long before --to (default 1h).
    #[arg(long, value_parser = duration, conflicts_with = "from")]
    pub since: Option<Duration>,
    /// Window start, RFC 3339.
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Window end, RFC 3339 (default: now).
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this loadgen run's traces, and the Lambda invocations of its traces
    /// (annotation.run_id).
    #[arg(long, value_parser = run_id)]
    pub run_id: Option<String>,
    /// A loadgen run's JSON report (`--json FILE`): its run id and its window.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["run_id", "since", "from", "to"])]
    pub report: Option<PathBuf>,
    /// A price table to use instead of the built-in us-east-1 one (cost/prices/*.json's format).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// With --stack-map: set the model beside Cost Explorer's bill of the window's complete UTC
    /// days, for resources with this cost-allocation tag ($0.01 per request).
    #[arg(long, value_name = "KEY=VALUE", requires = "stack_map")]
    pub reconcile: Option<String>,
    /// Print the lattice-cost/2 JSON document (cost/report.schema.json) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn rfc3339(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

fn interval(text: &str) -> Result<crate::analytics::Interval, String> {
    text.parse()
}

/// `loadgen analytics`.
#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// The search endpoint: an OpenSearch Service domain's `https://…` (the stack's
    /// AnalyticsDomainEndpoint output; SigV4-signed unless loopback) or any OpenSearch URL.
    #[arg(long, required_unless_present_any = ["local", "state_dir"], conflicts_with_all = ["local", "state_dir"])]
    pub endpoint: Option<String>,
    /// The search engine of a running `local-stack up` (its URL and auth from state.json).
    #[arg(long)]
    pub local: bool,
    /// The local stack's state folder (implies --local; default: `local-stack up`'s).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Index or pattern to ask.
    #[arg(long, default_value = crate::analytics::INDEX_PATTERN)]
    pub index: String,
    /// The window: this long before --to (default 1h).
    #[arg(long, value_parser = duration, conflicts_with = "from")]
    pub since: Option<Duration>,
    /// Window start, RFC 3339.
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Window end, RFC 3339 (default: now).
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Width of the status-class buckets over time, e.g. 30s, 5m (default: at most 60 buckets
    /// over the window, 1m for an hour).
    #[arg(long, value_parser = interval)]
    pub interval: Option<crate::analytics::Interval>,
    /// Paths, slowest requests and denied principals shown.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print one JSON document with every answer instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Sign with SigV4 (service es) even for a loopback endpoint.
    #[arg(long, conflicts_with = "basic_auth")]
    pub sigv4: bool,
    /// HTTP basic auth instead of SigV4.
    #[arg(
        long,
        env = "ANALYTICS_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub basic_auth: Option<String>,
    /// Region to sign for (default: the endpoint's, else the AWS config chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// Install the index template (analytics/lattice-access-template.json) and exit.
    #[arg(long)]
    pub setup: bool,
    /// With --setup on a domain with fine-grained access control: create the security role
    /// lattice_access_writer and map this IAM role (AnalyticsFirehoseRoleArn) to it.
    #[arg(long, requires = "setup", value_name = "ARN")]
    pub firehose_role_arn: Option<String>,
    /// With --setup on a domain with fine-grained access control: create the security role
    /// lambda_telemetry_writer (lambda-* and their templates) and map these IAM roles to it (the
    /// telemetry extension's function roles, outputs Telemetry*RoleArn). Repeat for each.
    #[arg(long, requires = "setup", value_name = "ARN")]
    pub telemetry_role_arn: Vec<String>,
    /// Per-request timeout.
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub timeout: Duration,
}

/// `loadgen seed-stock`.
#[derive(Debug, Args)]
pub struct SeedStockArgs {
    /// The inventory table (the stack's `InventoryTableName` output).
    #[arg(long, default_value = "inventory")]
    pub table: String,
    /// Units per SKU, `MIN..MAX`, drawn from `--seed` (the local stack's catalog by default).
    #[arg(long, default_value = "1000..5000", value_parser = units_range)]
    pub stock_range: (u32, u32),
    /// The catalog's seed.
    #[arg(long, default_value_t = lattice_xray::simulation::DEFAULT_SEED)]
    pub seed: u64,
    /// Region (default: the AWS config chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// Another DynamoDB endpoint (e.g. a local server).
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

fn units_range(text: &str) -> Result<(u32, u32), String> {
    let range: lattice_xray::simulation::LatencyRange = text
        .parse()
        .map_err(|_| format!("{text:?} is not MIN..MAX"))?;
    let (min, max) = (range.min_ms, range.max_ms);
    match (u32::try_from(min), u32::try_from(max)) {
        (Ok(min), Ok(max)) if min <= max => Ok((min, max)),
        _ => Err(format!("{text:?} is not MIN..MAX units")),
    }
}

/// Map file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MapFormat {
    /// Mermaid `graph LR`.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Where X-Ray is and how to write the findings.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// X-Ray API endpoint (default: AWS's, from the region; the local stack's with --local).
    #[arg(long, env = "XRAY_ENDPOINT_URL")]
    pub xray_endpoint: Option<String>,
    /// Write the report as JSON (schema: loadgen/report.schema.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the run's HTML page: one self-contained file with the service map drawn, the
    /// latency over time and by percentile, the errors, the traces and the cost.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Format of --map-file.
    #[arg(long, value_enum, default_value = "mermaid")]
    pub map_format: MapFormat,
    /// Write the service map to this file.
    #[arg(long, value_name = "FILE")]
    pub map_file: Option<PathBuf>,
    /// Most traces fetched whole to check completeness.
    #[arg(long, default_value_t = 1000)]
    pub check_limit: usize,
    /// Longest wait for the run's traces to arrive in X-Ray.
    #[arg(long, value_parser = duration, default_value = "60s")]
    pub wait: Duration,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// `loadgen [options]`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Start the embedded local stack (Lattice, Lambda, X-Ray on loopback) and target it.
    #[arg(long, conflicts_with = "url")]
    pub local: bool,
    /// The order service's Lattice URL (orders are POSTed to <URL>/orders).
    #[arg(long, required_unless_present_any = ["local", "lambda", "runner"], conflicts_with = "lambda")]
    pub url: Option<String>,
    /// Run the load from this Lambda function: loadgen itself deployed in the stack's VPC
    /// (`loadgen-runner`, infra/aws), which drives the order service through Lattice and returns
    /// its report; X-Ray is then inspected from here. AWS only.
    #[arg(long, value_name = "FUNCTION", conflicts_with_all = ["local", "url", "lambda"])]
    pub runner: Option<String>,
    /// With --runner: invoke this many runners at once, each with its share of the load
    /// (rate/N or concurrency/N, and its part of the order indexes), from one start time; their
    /// histograms are merged exactly.
    #[arg(long, value_parser = runner_count, default_value_t = 1, requires = "runner", value_name = "N")]
    pub runners: u32,
    /// With --runner: the longest a runner invocation drives load; a longer run (warm-up plus
    /// --duration, or the stages) runs as consecutive waves of runners, merged the same way.
    #[arg(long, value_parser = wave_length, default_value = "14m", requires = "runner")]
    pub wave_length: Duration,
    /// With --runner: how far ahead of the invocations the shared start time is set (time
    /// for every runner to start; a runner later than that sends its first requests late).
    #[arg(long, value_parser = duration, default_value = "3s", requires = "runner")]
    pub start_lead: Duration,
    /// Send only part K of N of the run: the orders whose index is K-1 modulo N (--runners sets
    /// it on each runner; machines sharing a run by hand set it too, with one --start-at,
    /// --seed and --run-id). --concurrency and --max-inflight are then this part's own.
    #[arg(long, value_parser = partition, value_name = "K/N")]
    pub partition: Option<crate::partition::Partition>,
    /// Start the load at this wall-clock time (RFC 3339), not at once: the parts of a run share
    /// it so their seconds line up.
    #[arg(long, value_parser = start_time, value_name = "TIME")]
    pub start_at: Option<std::time::SystemTime>,
    /// Open loop: start this far into the schedule (a later wave of a fanned-out run).
    #[arg(long, value_parser = duration, default_value = "0s", hide = true)]
    pub schedule_from: Duration,
    /// Closed loop: count order indexes from here (a later wave of a fanned-out run).
    #[arg(long, default_value_t = 0, hide = true)]
    pub first_index: u64,
    /// Invoke this Lambda function directly (aws-sdk-lambda) with Lattice-V2-shaped events,
    /// instead of going through Lattice; with --local, the local stack's function.
    #[arg(long, value_name = "FUNCTION")]
    pub lambda: Option<String>,
    /// Region to sign for (default: the AWS config chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// Send without SigV4 (services with AuthType NONE; measuring loadgen itself).
    #[arg(long, conflicts_with = "local")]
    pub unsigned: bool,
    /// Open loop: this many orders per second.
    #[arg(long, value_parser = positive_rate, conflicts_with_all = ["concurrency", "stages"])]
    pub rate: Option<f64>,
    /// Open loop in stages, e.g. 50/s:30s,200/s:60s.
    #[arg(long, value_parser = stages, conflicts_with = "concurrency")]
    pub stages: Option<Stages>,
    /// Closed loop: this many workers (the default model, with 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Stop after this many orders (warm-up included).
    #[arg(long)]
    pub orders: Option<u64>,
    /// Stop after measuring this long.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Sent first, excluded from the statistics.
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub warmup: Duration,
    /// Open loop: most requests outstanding; beyond it requests are dropped and counted.
    #[arg(long, default_value_t = 1000)]
    pub max_inflight: usize,
    /// Seed of the order generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of orders traced (0 < F <= 1, drawn from --seed): they carry `Sampled=1` and are
    /// checked in X-Ray; the rest carry `Sampled=0` and no service records them. At high rates
    /// this is what X-Ray sampling does in production (its default rule: 5 %).
    #[arg(long, value_parser = sample_rate, default_value_t = 1.0, value_name = "F")]
    pub sample_rate: f64,
    /// Run id (annotation.run_id); random by default.
    #[arg(long, value_parser = run_id)]
    pub run_id: Option<String>,
    /// Scenario name (annotation.scenario).
    #[arg(long, default_value = "steady")]
    pub scenario: String,
    /// Per-request timeout.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub timeout: Duration,
    /// Skip the X-Ray inspection.
    #[arg(long)]
    pub no_inspect: bool,
    /// --local: turn off the services' simulated latency and failures. (Refused with --url:
    /// `requires = "local"` would be satisfied by the flag's default.)
    #[arg(long, conflicts_with = "url")]
    pub no_simulation: bool,
    /// --local: traces the local X-Ray store keeps; past it the oldest are evicted, counted and
    /// reported as evicted rather than incomplete.
    #[arg(long, default_value_t = 100_000, conflicts_with = "url")]
    pub trace_capacity: usize,
    /// --local: also write every segment document the local X-Ray daemon accepts, as received,
    /// to `xray-documents.ndjson` beside the access log.
    #[arg(long, conflicts_with = "url")]
    pub raw_documents: bool,
    /// --local: leave the traffic analytics off (the access log streamed through the emulated
    /// Firehose and the transform Lambda into the search engine, then checked line for line).
    #[arg(long, conflicts_with = "url")]
    pub no_analytics: bool,
    /// --local: run the telemetry extension (`extensions/telemetry`, built first) beside order,
    /// payment and inventory, and check afterwards that the search engine holds one
    /// `platform.report` per invocation, with its trace id, and the functions' log lines.
    #[arg(long, conflicts_with = "url")]
    pub telemetry: bool,
    /// --local --telemetry: where the extension ships instead of the stack's search engine (its
    /// `URL`); a port nobody listens on plays a backend that is down.
    #[arg(long, requires = "telemetry", value_name = "URL")]
    pub telemetry_url: Option<String>,
    /// --local: use the service binaries as they are instead of running `cargo build` first
    /// (tests, where `cargo test` has just built them).
    #[arg(long, hide = true, conflicts_with = "url")]
    pub no_build: bool,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `loadgen inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The run to inspect.
    #[arg(long, required_unless_present = "since", value_parser = run_id)]
    pub run_id: Option<String>,
    /// Inspect everything since this long ago (no run filter).
    #[arg(long, value_parser = duration)]
    pub since: Option<Duration>,
    /// Region of the X-Ray API (default: the AWS config chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl RunArgs {
    /// The load model these options describe.
    pub fn model(&self) -> crate::driver::LoadModel {
        use crate::driver::LoadModel;
        use crate::schedule::Schedule;
        if let Some(rate) = self.rate {
            LoadModel::Open {
                schedule: Schedule::constant(rate),
                max_inflight: self.max_inflight,
            }
        } else if let Some(stages) = &self.stages {
            LoadModel::Open {
                schedule: Schedule::new(stages.0.clone()),
                max_inflight: self.max_inflight,
            }
        } else {
            LoadModel::Closed {
                concurrency: self.concurrency.unwrap_or(8).max(1),
            }
        }
    }

    /// The options a runner (`--runner`) needs to run this same load: the load model and its
    /// bounds, the run's identity and timeouts, and `--no-inspect` (X-Ray is inspected by the
    /// caller). Target, region, inspection and output files stay here.
    pub fn forwarded(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            args.push(value);
        };
        if let Some(rate) = self.rate {
            flag("rate", rate.to_string());
        }
        if let Some(stages) = &self.stages {
            flag("stages", stages.to_string());
        }
        if let Some(concurrency) = self.concurrency {
            flag("concurrency", concurrency.to_string());
        }
        if let Some(orders) = self.orders {
            flag("orders", orders.to_string());
        }
        if let Some(duration) = self.duration {
            flag("duration", humantime::format_duration(duration).to_string());
        }
        flag(
            "warmup",
            humantime::format_duration(self.warmup).to_string(),
        );
        flag("max-inflight", self.max_inflight.to_string());
        flag("seed", self.seed.to_string());
        flag("sample-rate", self.sample_rate.to_string());
        if let Some(run_id) = &self.run_id {
            flag("run-id", run_id.clone());
        }
        flag("scenario", self.scenario.clone());
        flag(
            "timeout",
            humantime::format_duration(self.timeout).to_string(),
        );
        if let Some(partition) = self.partition {
            flag("partition", partition.to_string());
        }
        if let Some(start_at) = self.start_at {
            flag(
                "start-at",
                humantime::format_rfc3339_millis(start_at).to_string(),
            );
        }
        if !self.schedule_from.is_zero() {
            flag(
                "schedule-from",
                humantime::format_duration(self.schedule_from).to_string(),
            );
        }
        if self.first_index > 0 {
            flag("first-index", self.first_index.to_string());
        }
        if self.unsigned {
            args.push("--unsigned".to_owned());
        }
        // The runner cannot reach the X-Ray API from a VPC without NAT: the caller inspects.
        args.push("--no-inspect".to_owned());
        args
    }

    /// The load model in words (`open 200/s`, `open stages …`, `closed 8`).
    pub fn model_text(&self) -> String {
        match self.model() {
            crate::driver::LoadModel::Open { .. } => match (self.rate, &self.stages) {
                (Some(rate), _) => format!("open {rate}/s"),
                (_, Some(stages)) => format!("open stages {stages}"),
                _ => "open".into(),
            },
            crate::driver::LoadModel::Closed { concurrency } => format!("closed {concurrency}"),
        }
    }

    /// `--orders`, defaulting to 500 when neither a count, a duration nor stages bound the run.
    pub fn orders_limit(&self) -> Option<u64> {
        match (self.orders, self.duration, &self.stages) {
            (None, None, None) => Some(500),
            (orders, _, _) => orders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::LoadModel;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn seed_stock_options() {
        let cli = parse(&["seed-stock", "--stock-range", "10..20", "--seed", "7"]).unwrap();
        let Some(Command::SeedStock(args)) = cli.command else {
            panic!("seed-stock")
        };
        assert_eq!(
            (args.table.as_str(), args.stock_range, args.seed),
            ("inventory", (10, 20), 7)
        );
        for bad in ["20..10", "x", "1..99999999999"] {
            assert!(
                parse(&["seed-stock", "--stock-range", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parsing_table() {
        let ok: &[(&[&str], &str)] = &[
            (&["--local"], "closed 8, 500 orders"),
            (&["--local", "--rate", "200", "--duration", "30s"], "open"),
            (&["--local", "--stages", "50/s:30s,200/s:60s"], "open"),
            (
                &[
                    "--url",
                    "https://order.example/",
                    "--concurrency",
                    "16",
                    "--orders",
                    "100",
                ],
                "closed 16",
            ),
            (&["inspect", "--run-id", "r1"], "inspect"),
            (
                &[
                    "seed-stock",
                    "--table",
                    "inventory",
                    "--stock-range",
                    "10..20",
                ],
                "seed-stock",
            ),
            (&["--lambda", "order", "--orders", "10"], "lambda"),
            (&["--local", "--lambda", "order"], "lambda"),
            (
                &["inspect", "--since", "15m", "--json", "out.json"],
                "inspect",
            ),
            (&["cost"], "cost"),
            (
                &["cost", "--run-id", "r1", "--json", "--prices", "p.json"],
                "cost",
            ),
            (
                &[
                    "cost",
                    "--stack-map",
                    "[]",
                    "--access-log-group",
                    "g",
                    "--reconcile",
                    "lattice-stack=orders",
                ],
                "cost",
            ),
        ];
        for (args, what) in ok {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            match (*what, &cli.command) {
                ("inspect", Some(Command::Inspect(_))) => {}
                ("seed-stock", Some(Command::SeedStock(_))) => {}
                ("cost", Some(Command::Cost(_))) => {}
                ("lambda", None) => assert_eq!(cli.run.lambda.as_deref(), Some("order")),
                ("open", None) => assert!(matches!(cli.run.model(), LoadModel::Open { .. })),
                ("closed 16", None) => {
                    assert_eq!(cli.run.model(), LoadModel::Closed { concurrency: 16 })
                }
                ("closed 8, 500 orders", None) => {
                    assert_eq!(cli.run.model(), LoadModel::Closed { concurrency: 8 });
                    assert_eq!(cli.run.orders_limit(), Some(500));
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let refused: &[&[&str]] = &[
            &[],                                                // no target
            &["--local", "--url", "http://x"],                  // two targets
            &["--local", "--rate", "10", "--concurrency", "2"], // two models
            &["--local", "--rate", "0"],
            &["--local", "--rate", "-3"],
            &["--local", "--stages", "50/s"],
            &["--local", "--duration", "soon"],
            &["--url", "http://x", "--no-simulation"], // local only
            &["inspect"],                              // nothing to inspect
            &["--local", "--map-format", "png"],
            &["--local", "--sample-rate", "0"],
            &["--local", "--sample-rate", "1.5"],
            &["--local", "--sample-rate", "NaN"],
            &["cost", "--stack-map", "[]"], // where is the access log?
            &["cost", "--reconcile", "k=v"], // no bill locally
            &[
                "cost",
                "--state-dir",
                "d",
                "--stack-map",
                "[]",
                "--access-log-group",
                "g",
            ],
            &["cost", "--since", "1h", "--from", "2026-12-01T00:00:00Z"],
            &["cost", "--report", "run.json", "--run-id", "r1"], // the report names its run
        ];
        for args in refused {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
        let durations = parse(&["--local", "--duration", "1m30s", "--warmup", "5s"]).unwrap();
        assert_eq!(durations.run.duration, Some(Duration::from_secs(90)));
        assert_eq!(durations.run.warmup, Duration::from_secs(5));
        assert_eq!(durations.run.orders_limit(), None);
        assert_eq!(
            durations.run.sample_rate, 1.0,
            "every order traced by default"
        );
        let sampled = parse(&["--local", "--sample-rate", "0.05"]).unwrap();
        assert_eq!(sampled.run.sample_rate, 0.05);
    }
}
