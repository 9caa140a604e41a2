//! The `local-stack` command line: `up` starts the stack and serves until Ctrl-C; `search` runs
//! the search engine on its own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::binaries::profile_dir;
use crate::dynamodb::DynamoDbSource;
use crate::lambda::facade::FacadeSampling;
use crate::lattice::credentials::CredentialsFile;
use crate::search::{parse_basic_auth, SearchStorage};
use crate::stack::{LocalStack, StackConfig};

/// VPC Lattice, the Lambda service and X-Ray on loopback.
#[derive(Debug, Parser)]
#[command(name = "local-stack", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the stack and serve until Ctrl-C.
    Up(UpArgs),
    /// Run only the search engine (OpenSearch's REST API) until Ctrl-C.
    Search(SearchArgs),
}

/// `search`'s options.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Where indices and templates are kept (they survive a restart).
    #[arg(long, conflicts_with = "in_memory")]
    pub data_dir: Option<PathBuf>,
    /// Keep nothing on disk.
    #[arg(long)]
    pub in_memory: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9200")]
    pub listen: SocketAddr,
    /// Require HTTP basic auth with this USER:PASSWORD.
    #[arg(long, value_parser = parse_basic_auth)]
    pub basic_auth: Option<(String, String)>,
    /// Require SigV4 (service `es`) with the keys of this credentials file (the stack's
    /// `credentials.json` format).
    #[arg(long)]
    pub sigv4_credentials: Option<PathBuf>,
    /// The region SigV4 signatures must be scoped to.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

/// `up`'s options.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the state file, credentials, access log and metrics go [default: target/local-stack].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// X-Ray daemon (UDP) and API (TCP) address.
    #[arg(long, default_value = "127.0.0.1:2000")]
    pub xray: SocketAddr,
    /// Port of the order service.
    #[arg(long, default_value_t = 8080)]
    pub order_port: u16,
    /// Port of the payment service.
    #[arg(long, default_value_t = 8081)]
    pub payment_port: u16,
    /// Port of the inventory service.
    #[arg(long, default_value_t = 8082)]
    pub inventory_port: u16,
    /// Environments per function at most (reserved concurrency).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Turn off the services' simulated latency and failures.
    #[arg(long)]
    pub no_simulation: bool,
    /// Trace every invocation in the Lambda facade (default: Lambda's rule, 1/s then 5 %).
    #[arg(long)]
    pub trace_all_invocations: bool,
    /// Show the functions' logs.
    #[arg(long)]
    pub show_logs: bool,
    /// Also write every accepted segment document to xray-documents.ndjson.
    #[arg(long)]
    pub raw_documents: bool,
    /// Traces the X-Ray store keeps before evicting the oldest.
    #[arg(long, default_value_t = 100_000)]
    pub trace_capacity: usize,
    /// Port of the embedded DynamoDB server (0: any free port).
    #[arg(long, default_value_t = 8000, conflicts_with = "dynamodb_endpoint")]
    pub dynamodb_port: u16,
    /// Use this DynamoDB endpoint (e.g. Amazon DynamoDB Local) instead of the embedded server;
    /// the tables must not exist there yet.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Put this before the table names (`inventory`, `payments`).
    #[arg(long, default_value = "")]
    pub table_prefix: String,
    /// Port of the search engine (0: any free port).
    #[arg(long, default_value_t = crate::search::DEFAULT_PORT)]
    pub search_port: u16,
    /// Where the search engine keeps its indices [default: <state-dir>/search].
    #[arg(long, conflicts_with = "search_in_memory")]
    pub search_data_dir: Option<PathBuf>,
    /// Keep the search engine's indices in memory only.
    #[arg(long)]
    pub search_in_memory: bool,
    /// Require HTTP basic auth on the search engine with this USER:PASSWORD.
    #[arg(long, value_parser = parse_basic_auth)]
    pub search_basic_auth: Option<(String, String)>,
    /// Require SigV4 (service `es`) on the search engine, verified with the stack's keys.
    #[arg(long)]
    pub search_sigv4: bool,
    /// Leave the traffic analytics off (the access log's Firehose stream, the transform
    /// function, and the `lattice-access-*` indices).
    #[arg(long)]
    pub no_analytics: bool,
    /// How long the stream buffers access-log lines before invoking the transform (Firehose's
    /// `BufferIntervalInSeconds`; 60 s on AWS, short here so a demo shows data within seconds).
    #[arg(long, value_parser = interval, default_value = "1s")]
    pub analytics_buffer_interval: std::time::Duration,
    /// A Lambda layer directory: each file in its `extensions/` runs as an external extension
    /// beside order, payment and inventory, as Lambda runs a layer's `/opt/extensions/*`
    /// (e.g. the telemetry extension: see `local-stack layer telemetry`).
    #[arg(long, value_name = "DIR", conflicts_with = "telemetry")]
    pub extensions: Option<PathBuf>,
    /// Run the workspace's telemetry extension (`extensions/telemetry`, built first) beside
    /// order, payment and inventory, shipping their platform records and log lines to the
    /// search engine's `lambda-platform-*`, `lambda-function-*` and `lambda-extension-*`.
    #[arg(long)]
    pub telemetry: bool,
}

fn interval(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

impl UpArgs {
    /// The stack configuration these options describe.
    pub fn config(&self) -> StackConfig {
        let state_dir = self.state_dir.clone().unwrap_or_else(default_state_dir);
        let mut config = StackConfig::new(state_dir);
        if self.no_simulation {
            config = config.without_simulation();
        }
        config.xray_addr = self.xray;
        config.ports.insert("order".into(), self.order_port);
        config.ports.insert("payment".into(), self.payment_port);
        config.ports.insert("inventory".into(), self.inventory_port);
        config.concurrency = self.concurrency;
        config.show_logs = self.show_logs;
        config.raw_documents = self.raw_documents;
        config.trace_capacity = self.trace_capacity;
        config.rebuild_binaries = true;
        config.dynamodb.source = match &self.dynamodb_endpoint {
            Some(endpoint) => DynamoDbSource::External {
                endpoint: endpoint.clone(),
            },
            None => DynamoDbSource::Embedded {
                port: self.dynamodb_port,
            },
        };
        config.dynamodb.table_prefix = self.table_prefix.clone();
        config.search.port = self.search_port;
        config.search.storage = match (&self.search_data_dir, self.search_in_memory) {
            (Some(folder), _) => SearchStorage::Folder(folder.clone()),
            (None, true) => SearchStorage::Memory,
            (None, false) => SearchStorage::StateDir,
        };
        config.search.basic_auth = self.search_basic_auth.clone();
        config.search.sigv4 = self.search_sigv4;
        if self.trace_all_invocations {
            config.facade_sampling = FacadeSampling::Always;
        }
        config.analytics = (!self.no_analytics).then(|| crate::firehose::FirehoseSetup {
            buffer_interval: self.analytics_buffer_interval,
            ..crate::firehose::FirehoseSetup::default()
        });
        config.extensions_layer = self.extensions.clone();
        config
    }
}

/// `target/local-stack` (beside the build profile's folder), where `up` keeps its state.
pub fn default_state_dir() -> PathBuf {
    profile_dir()
        .and_then(|d| d.parent().map(|t| t.join("local-stack")))
        .unwrap_or_else(|| PathBuf::from("local-stack"))
}

/// Runs `up`: start, print where everything is, wait for Ctrl-C, stop cleanly.
pub async fn up(args: &UpArgs) -> anyhow::Result<()> {
    let mut config = args.config();
    if args.telemetry {
        std::fs::create_dir_all(&config.state_dir)?;
        config.extensions_layer = Some(crate::layers::telemetry_layer(&config.state_dir, true)?);
    }
    let stack = LocalStack::start(config).await?;
    let state = &stack.state;
    println!(
        "local stack up (region {}, account {})",
        state.region, state.account_id
    );
    for (name, service) in &state.services {
        println!("  {name:<10} {}  {}", service.url, service.service_arn);
    }
    println!("  X-Ray daemon   udp {}", state.xray_daemon_address);
    println!("  X-Ray API      {}", state.xray_endpoint);
    println!("  Lambda Invoke  {}", state.lambda_endpoint);
    println!(
        "  DynamoDB       {} ({}; tables {}, {})",
        state.dynamodb.endpoint,
        if state.dynamodb.embedded {
            "embedded"
        } else {
            "external"
        },
        state.dynamodb.inventory_table,
        state.dynamodb.payments_table
    );
    println!(
        "  OpenSearch API {} (local-search; {}; auth {})",
        state.search.url,
        state
            .search
            .data_dir
            .as_ref()
            .map_or("in memory".to_owned(), |d| d.display().to_string()),
        state.search.auth
    );
    println!(
        "  state          {}",
        StackStatePath(&stack.config.state_dir)
    );
    println!("  access log     {}", state.access_log.display());
    println!("  metrics (EMF)  {}", state.metrics_log.display());
    if let Some(analytics) = &state.analytics {
        println!(
            "  analytics      {} → {} → {} (backup {})",
            analytics.delivery_stream_arn,
            analytics.transform_function,
            analytics.index_pattern,
            analytics.backup_dir.display()
        );
    }
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    if let Some(stream) = &stack.firehose {
        let stats = stream.drain(std::time::Duration::from_secs(10)).await;
        println!(
            "analytics: {} access-log lines → {} indexed, {} dropped, {} processing-failed, {} failed documents{}",
            stats.received,
            stats.indexed,
            stats.dropped,
            stats.processing_failed,
            stats.failed_documents,
            match stats.received - stats.accounted() {
                0 => String::new(),
                left => format!(", {left} still in flight"),
            }
        );
    }
    stack.shutdown().await;
    Ok(())
}

struct StackStatePath<'a>(&'a std::path::Path);

impl std::fmt::Display for StackStatePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", crate::stack::StackState::path(self.0).display())
    }
}

/// Runs `search`: the engine alone, until Ctrl-C.
pub async fn search(args: &SearchArgs) -> anyhow::Result<()> {
    let data_dir = match (&args.data_dir, args.in_memory) {
        (Some(folder), _) => Some(folder.clone()),
        (None, true) => None,
        (None, false) => Some(default_state_dir().join("search")),
    };
    let sigv4 = match &args.sigv4_credentials {
        Some(file) => Some(sigv4_verify::Verifier::new(
            CredentialsFile::load(file)?.index()?,
            args.region.clone(),
            sigv4_verify::SigningRules::opensearch(),
        )),
        None => None,
    };
    let server = local_search::SearchServer::start(local_search::SearchConfig {
        listen: args.listen,
        data_dir: data_dir.clone(),
        auth: local_search::Auth {
            basic: args.basic_auth.clone(),
            sigv4,
        },
    })
    .await?;
    println!(
        "local-search (OpenSearch {} REST API) at {}; data {}",
        local_search::api::VERSION_NUMBER,
        server.url(),
        data_dir.map_or("in memory".to_owned(), |d| d.display().to_string())
    );
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_runs_alone_with_its_options() {
        let cli = Cli::try_parse_from([
            "local-stack",
            "search",
            "--data-dir",
            "idx",
            "--listen",
            "127.0.0.1:9201",
            "--basic-auth",
            "admin:secret",
        ])
        .unwrap();
        let Command::Search(args) = cli.command else {
            panic!("not search");
        };
        assert_eq!(args.data_dir, Some(PathBuf::from("idx")));
        assert_eq!(args.listen, "127.0.0.1:9201".parse().unwrap());
        assert_eq!(args.basic_auth, Some(("admin".into(), "secret".into())));
        assert!(
            Cli::try_parse_from(["local-stack", "search", "--basic-auth", "nopassword"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["local-stack", "search", "--data-dir", "d", "--in-memory"])
                .is_err()
        );
    }

    #[test]
    fn up_configures_the_stacks_search_engine() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["local-stack", "up", "--state-dir", "s"];
            argv.extend_from_slice(extra);
            let Command::Up(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not up");
            };
            args.config().search
        };
        let default = parse(&[]);
        assert_eq!(
            (default.port, default.storage, default.sigv4),
            (9200, SearchStorage::StateDir, false)
        );
        let memory = parse(&["--search-in-memory", "--search-port", "0", "--search-sigv4"]);
        assert_eq!(
            (memory.port, memory.storage, memory.sigv4),
            (0, SearchStorage::Memory, true)
        );
        let folder = parse(&[
            "--search-data-dir",
            "/tmp/idx",
            "--search-basic-auth",
            "a:b",
        ]);
        assert_eq!(
            folder.storage,
            SearchStorage::Folder(PathBuf::from("/tmp/idx"))
        );
        assert_eq!(folder.basic_auth, Some(("a".into(), "b".into())));
    }

    #[test]
    fn up_streams_the_access_log_into_the_analytics_unless_told_not_to() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["local-stack", "up", "--state-dir", "s"];
            argv.extend_from_slice(extra);
            let Command::Up(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not up");
            };
            args.config().analytics
        };
        let default = parse(&[]).expect("on by default");
        assert_eq!(default.buffer_interval, std::time::Duration::from_secs(1));
        assert_eq!(default.buffer_bytes, 1024 * 1024);
        let slow = parse(&["--analytics-buffer-interval", "60s"]).unwrap();
        assert_eq!(slow.buffer_interval, std::time::Duration::from_secs(60));
        assert_eq!(parse(&["--no-analytics"]), None);
        assert!(
            Cli::try_parse_from(["local-stack", "up", "--analytics-buffer-interval", "soon"])
                .is_err()
        );
    }
}
