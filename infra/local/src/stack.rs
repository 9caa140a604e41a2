//! The whole local stack wired together: the X-Ray daemon and API, one function per service (the
//! real binaries), and the Lattice service network in front of them, with the default auth setup
//! (a `loadgen` principal may call order; only order's function role may call payment and
//! inventory). What other processes need to find it goes to a state file.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::binaries::{build_service_binaries, service_binary};
use crate::dynamodb::{DynamoDbSetup, DynamoDbState, StackDynamoDb};
use crate::firehose::opensearch::EngineAuth;
use crate::firehose::{DeliveryStream, FirehoseSetup, SearchEndpoint, TRANSFORM_FUNCTION};
use crate::json_lines::JsonLinesFile;
use crate::lambda::environment::extension_files;
use crate::lambda::facade::{Facade, FacadeSampling};
use crate::lambda::function::{Function, FunctionConfig};
use crate::lambda::function_log::{self, FunctionLog};
use crate::lambda::invoke_api::InvokeApi;
use crate::lattice::access_log::AccessLogWriter;
use crate::lattice::credentials::{CredentialsFile, PrincipalKey};
use crate::lattice::metrics::MetricsRecorder;
use crate::lattice::network::{NetworkTopology, DEFAULT_ACCOUNT, DEFAULT_REGION};
use crate::lattice::policy::{Policy, PolicyError, INVOKE};
use crate::lattice::proxy::{AuthPolicies, HopOverhead, LatticeNetwork, ServiceListener};
use crate::search::{SearchSetup, SearchState, SearchStorage};
use crate::xray::api::XrayApi;
use crate::xray::daemon::XrayDaemon;
use crate::xray::store::TraceStore;
use sigv4_verify::{SigningRules, Verifier};

/// The services, in the order they are started.
pub const SERVICES: [&str; 3] = ["order", "payment", "inventory"];
/// The role loadgen signs as.
pub const LOADGEN_ROLE: &str = "loadgen";
/// The function loadgen runs as inside the stack (`loadgen --runner`; infra/aws deploys the same).
pub const RUNNER_FUNCTION: &str = "loadgen-runner";
/// The service network's name.
pub const NETWORK_NAME: &str = "orders-network";
/// The role the Firehose stream delivers as (it signs for the search engine when SigV4 is on).
pub const FIREHOSE_ROLE: &str = "firehose-delivery";

/// The execution role of a service's function.
pub fn function_role(service: &str) -> String {
    format!("{service}-function")
}

/// How to run the stack.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Where the state file, credentials, access log, metrics and raw documents go.
    pub state_dir: PathBuf,
    /// X-Ray daemon (UDP) and API (TCP) address.
    pub xray_addr: SocketAddr,
    /// Listener port per service (0 = any free port).
    pub ports: BTreeMap<String, u16>,
    /// Account id in ARNs.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// Environments per function at most.
    pub concurrency: usize,
    /// The Lambda service's own trace sampling.
    pub facade_sampling: FacadeSampling,
    /// Environment given to every function (the services' knobs).
    pub service_env: Vec<(String, String)>,
    /// Show the functions' stdout/stderr.
    pub show_logs: bool,
    /// Traces the X-Ray store keeps.
    pub trace_capacity: usize,
    /// Also write every accepted segment document to `xray-documents.ndjson`.
    pub raw_documents: bool,
    /// Principals besides loadgen allowed to call order.
    pub extra_order_callers: Vec<String>,
    /// Function timeouts (order waits for two downstream calls).
    pub order_timeout: Duration,
    /// Timeout of payment and inventory.
    pub downstream_timeout: Duration,
    /// Run `cargo build` for the service binaries first (commands), rather than only when they
    /// are missing (tests, where `cargo test` has built them).
    pub rebuild_binaries: bool,
    /// Also host this `loadgen-runner` binary as the function [`RUNNER_FUNCTION`], as the AWS
    /// stack does: invoked through the Invoke API, running as the loadgen role, told order's URL,
    /// tracing to the daemon. Not behind Lattice (it is a caller, not a service).
    pub runner_binary: Option<PathBuf>,
    /// Environments the runner function may run at once (its reserved concurrency): one per
    /// runner a fanned-out run (`loadgen --runners N`) invokes together.
    pub runner_instances: usize,
    /// Where the functions send their segment documents (`AWS_XRAY_DAEMON_ADDRESS`); `None` is
    /// this stack's daemon. A port nobody listens on plays a daemon that is down.
    pub functions_xray_daemon: Option<String>,
    /// The DynamoDB server, table names and first stock.
    pub dynamodb: DynamoDbSetup,
    /// The search engine (OpenSearch's API).
    pub search: SearchSetup,
    /// Traffic analytics: the access log also streams into a Firehose stream whose transform
    /// (the real `access-log-transform` binary) feeds the search engine. `None`: off.
    pub analytics: Option<FirehoseSetup>,
    /// A layer directory whose `extensions/*` order, payment and inventory start in each
    /// environment (`--extensions DIR`). With one, the functions' environment also gets `URL`,
    /// the search engine, for the telemetry extension.
    pub extensions_layer: Option<PathBuf>,
}

impl StackConfig {
    /// The defaults of `up`: fixed ports, X-Ray on 127.0.0.1:2000.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            state_dir,
            xray_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 2000)),
            ports: SERVICES
                .iter()
                .zip([8080u16, 8081, 8082])
                .map(|(s, p)| ((*s).to_owned(), p))
                .collect(),
            account_id: DEFAULT_ACCOUNT.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            concurrency: 64,
            facade_sampling: FacadeSampling::DefaultRule { rate: 0.05 },
            service_env: Vec::new(),
            show_logs: false,
            trace_capacity: 100_000,
            raw_documents: false,
            extra_order_callers: Vec::new(),
            order_timeout: Duration::from_secs(10),
            downstream_timeout: Duration::from_secs(3),
            rebuild_binaries: false,
            runner_binary: None,
            runner_instances: 2,
            functions_xray_daemon: None,
            dynamodb: DynamoDbSetup::default(),
            search: SearchSetup::default(),
            analytics: Some(FirehoseSetup::default()),
            extensions_layer: None,
        }
    }

    /// Every port chosen by the OS (tests, embedding): nothing collides with another stack.
    pub fn ephemeral(state_dir: PathBuf) -> Self {
        let mut config = Self::new(state_dir);
        config.xray_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        for port in config.ports.values_mut() {
            *port = 0;
        }
        config.search.port = 0;
        config.search.storage = SearchStorage::Memory;
        config.analytics = None;
        config
    }

    /// Latency injection and simulated failures off (throughput runs).
    pub fn without_simulation(mut self) -> Self {
        for (k, v) in [
            ("PAYMENT_LATENCY_MS", "0"),
            ("INVENTORY_LATENCY_MS", "0"),
            ("PAYMENT_DECLINE_RATE", "0"),
            ("PAYMENT_FAULT_RATE", "0"),
            ("INVENTORY_FAULT_RATE", "0"),
        ] {
            self.service_env.push((k.to_owned(), v.to_owned()));
        }
        self
    }
}

/// What other processes read to find the stack (`<state_dir>/state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackState {
    /// The `up` process.
    pub pid: u32,
    /// Region to sign for.
    pub region: String,
    /// Account.
    pub account_id: String,
    /// `AWS_XRAY_DAEMON_ADDRESS` for senders.
    pub xray_daemon_address: String,
    /// `endpoint_url` for aws-sdk-xray.
    pub xray_endpoint: String,
    /// Per service: URL, ARNs, function.
    pub services: BTreeMap<String, ServiceState>,
    /// The service network ARN.
    pub service_network_arn: String,
    /// The credentials file (access keys per principal).
    pub credentials_file: PathBuf,
    /// The principal loadgen signs as.
    pub loadgen_principal: String,
    /// Access-log JSON lines.
    pub access_log: PathBuf,
    /// EMF metric lines.
    pub metrics_log: PathBuf,
    /// The functions' log groups, `<function>.jsonl` each (CloudWatch Logs events).
    #[serde(default)]
    pub lambda_logs: PathBuf,
    /// Raw segment documents, when kept.
    pub raw_documents: Option<PathBuf>,
    /// `endpoint_url` of the local Lambda Invoke API.
    pub lambda_endpoint: String,
    /// The DynamoDB server and tables the functions use.
    pub dynamodb: DynamoDbState,
    /// The search engine (OpenSearch's REST API).
    pub search: SearchState,
    /// The traffic analytics' stream, when on.
    #[serde(default)]
    pub analytics: Option<AnalyticsState>,
}

/// The traffic analytics in the state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsState {
    /// The delivery stream's ARN.
    pub delivery_stream_arn: String,
    /// The transform function's name.
    pub transform_function: String,
    /// The indices documents go to (`lattice-access-YYYY-MM-DD`).
    pub index_pattern: String,
    /// The S3 backup bucket's folder (`processing-failed/`, `AmazonOpenSearchService-failed/`).
    pub backup_dir: PathBuf,
}

/// One service in the state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The listener's URL.
    pub url: String,
    /// Service ARN.
    pub service_arn: String,
    /// Target group ARN.
    pub target_group_arn: String,
    /// The function's name.
    pub function_name: String,
}

impl StackState {
    /// The state file inside `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("state.json")
    }

    /// Reads a state file.
    pub fn load(state_dir: &Path) -> Result<Self, StackError> {
        let path = Self::path(state_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| StackError::Io {
            what: format!("reading {}", path.display()),
            source: e,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| StackError::State(format!("{}: {e}", path.display())))
    }
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A file or socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A generated policy did not parse (a bug).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The state file.
    #[error("state file {0}")]
    State(String),
    /// DynamoDB could not be set up.
    #[error("DynamoDB: {0}")]
    DynamoDb(String),
    /// The traffic analytics could not be set up.
    #[error("traffic analytics: {0}")]
    Analytics(String),
    /// The search engine did not start.
    #[error(transparent)]
    Search(#[from] local_search::StartError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Io { what, source }
}

/// The running stack. Dropping it stops everything (listeners, functions' processes).
pub struct LocalStack {
    /// Settings it started with.
    pub config: StackConfig,
    /// Ids and ARNs.
    pub topology: NetworkTopology,
    /// Keys per principal.
    pub credentials: CredentialsFile,
    /// Traces.
    pub store: Arc<TraceStore>,
    /// Functions by service.
    pub functions: BTreeMap<String, Arc<Function>>,
    /// Access-log writer.
    pub access_log: Arc<AccessLogWriter>,
    /// Metrics.
    pub metrics: Arc<MetricsRecorder>,
    /// The state written to disk.
    pub state: StackState,
    /// The DynamoDB server and its tables.
    pub dynamodb: StackDynamoDb,
    /// The search engine.
    pub search: local_search::SearchServer,
    /// The traffic analytics' delivery stream, when on.
    pub firehose: Option<Arc<DeliveryStream>>,
    network: Arc<LatticeNetwork>,
    facade: Arc<Facade>,
    invoke_api: InvokeApi,
    listeners: Vec<ServiceListener>,
    daemon: XrayDaemon,
    api: XrayApi,
    raw_log: Option<Arc<JsonLinesFile>>,
    metrics_log: Arc<JsonLinesFile>,
    function_logs: Vec<Arc<FunctionLog>>,
    flusher: JoinHandle<()>,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The default auth setup, as JSON policies (editable in the state directory's copy).
fn default_policies(
    topology: &NetworkTopology,
    extra_order_callers: &[String],
) -> Result<AuthPolicies, PolicyError> {
    let service_resource = |name: &str| {
        topology
            .service(name)
            .map(|s| format!("{}/*", s.service_arn))
            .unwrap_or_default()
    };
    // The network admits authenticated principals of this account only.
    let network = Policy::from_value(json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", topology.account_id)},
            "Action": INVOKE, "Resource": "*"}]
    }))?;
    let mut order_callers = vec![topology.role_arn(LOADGEN_ROLE)];
    order_callers.extend(extra_order_callers.iter().cloned());
    let order_role = topology.role_arn(&function_role("order"));
    let mut services = HashMap::new();
    for name in SERVICES {
        let callers = if name == "order" {
            order_callers.clone()
        } else {
            vec![order_role.clone()]
        };
        services.insert(
            name.to_owned(),
            Policy::from_value(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": callers},
                    "Action": INVOKE, "Resource": service_resource(name)}]
            }))?,
        );
    }
    let identity = |resources: Vec<String>| {
        Policy::from_value(json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": resources}]
        }))
    };
    let mut identities = HashMap::new();
    identities.insert(
        topology.role_arn(LOADGEN_ROLE),
        identity(vec![service_resource("order")])?,
    );
    for extra in extra_order_callers {
        identities.insert(extra.clone(), identity(vec![service_resource("order")])?);
    }
    identities.insert(
        order_role,
        identity(vec![
            service_resource("payment"),
            service_resource("inventory"),
        ])?,
    );
    // payment's and inventory's roles call nothing: no identity policy grants them Invoke.
    for name in ["payment", "inventory"] {
        identities.insert(topology.role_arn(&function_role(name)), identity(vec![])?);
    }
    Ok(AuthPolicies {
        network,
        services,
        identities,
    })
}

impl LocalStack {
    /// Starts everything. Service binaries are built first if missing.
    pub async fn start(config: StackConfig) -> Result<Self, StackError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(io(format!("creating {}", config.state_dir.display())))?;
        let topology =
            NetworkTopology::new(&config.account_id, &config.region, NETWORK_NAME, &SERVICES);
        let (credentials, credentials_file, policies) = write_auth(&config, &topology)?;

        // Each start begins its own records: logs of an earlier stack in the same directory
        // would otherwise be counted as this one's.
        for stale in [
            "access-log.jsonl",
            "metrics.emf.jsonl",
            "xray-documents.ndjson",
        ] {
            let _ = std::fs::remove_file(config.state_dir.join(stale));
        }
        let _ = std::fs::remove_dir_all(function_log::logs_dir(&config.state_dir));

        // X-Ray first, so nothing any function sends is lost.
        let store = Arc::new(TraceStore::new(config.trace_capacity));
        let raw_path = config.state_dir.join("xray-documents.ndjson");
        let (daemon, api, raw_log) = start_xray(&config, &store, &raw_path).await?;
        let facade = Arc::new(
            Facade::new(daemon.addr, config.facade_sampling, 7)
                .map_err(io("opening the Lambda facade's socket"))?,
        );

        // The tables exist and hold their stock before any function can be invoked.
        let dynamodb = StackDynamoDb::start(&config.dynamodb)
            .await
            .map_err(|e| StackError::DynamoDb(e.to_string()))?;

        // Listeners are bound before the functions start, so every function knows every URL.
        let mut bound = Vec::new();
        for name in SERVICES {
            let port = config.ports.get(name).copied().unwrap_or(0);
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(io(format!(
                    "binding the {name} listener on 127.0.0.1:{port}"
                )))?;
            let addr = listener
                .local_addr()
                .map_err(io("reading a listener address"))?;
            bound.push((name, listener, format!("http://{addr}")));
        }
        let url_of = |service: &str| {
            bound
                .iter()
                .find(|(n, _, _)| *n == service)
                .map(|(_, _, url)| url.clone())
                .unwrap_or_default()
        };

        // The search engine before the functions: the telemetry extension is told its URL.
        let keys = credentials
            .index()
            .map_err(|e| StackError::State(e.to_string()))?;
        let (search, search_state) = crate::search::start(
            &config.search,
            &config.state_dir,
            keys.clone(),
            &config.region,
        )
        .await?;

        let order_url = url_of("order");
        let (binaries, transform_binary) = function_binaries(&config).await?;
        let shared_env = shared_function_env(
            &config,
            [url_of("inventory"), url_of("payment")],
            &dynamodb,
            &search_state,
        );
        let mut functions = service_functions(
            &config,
            (&topology, &credentials),
            binaries,
            &shared_env,
            (&daemon, &facade),
        )?;

        let metrics = Arc::new(MetricsRecorder::default());
        let analytics = match (&config.analytics, transform_binary) {
            (Some(setup), Some(binary)) => Some(
                start_analytics(
                    &config,
                    setup,
                    (&topology, &credentials),
                    binary,
                    &search_state,
                    (&daemon, &facade),
                )
                .await?,
            ),
            _ => None,
        };
        let (access_log_path, access_log) =
            open_access_log(&config, analytics.as_ref().map(|(stream, _)| stream))?;
        let network = Arc::new(LatticeNetwork::new(
            topology.clone(),
            Verifier::new(keys, config.region.clone(), SigningRules::lattice()),
            policies,
            functions
                .iter()
                .map(|(name, f)| (name.clone(), Arc::clone(f)))
                .collect(),
            Arc::clone(&access_log),
            Arc::clone(&metrics),
        ));
        let mut listeners = Vec::new();
        for (name, listener, _) in bound {
            listeners.push(
                network
                    .serve(name, listener)
                    .map_err(io(format!("serving {name}")))?,
            );
        }

        if let Some(binary) = &config.runner_binary {
            let runner = runner_function(
                &config,
                &credentials,
                &topology,
                binary,
                &order_url,
                daemon.addr,
            )?;
            functions.insert(RUNNER_FUNCTION.to_owned(), Arc::new(runner));
        }
        let invoke_api = InvokeApi::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            functions.clone(),
        )
        .await
        .map_err(io("binding the Lambda Invoke API"))?;
        let metrics_path = config.state_dir.join("metrics.emf.jsonl");
        let metrics_log = Arc::new(
            JsonLinesFile::open(&metrics_path)
                .map_err(io(format!("opening {}", metrics_path.display())))?,
        );
        let function_logs: Vec<Arc<FunctionLog>> = functions
            .values()
            .filter_map(|f| f.config().log.clone())
            .collect();
        let flusher = tokio::spawn(flush_periodically(
            function_logs.clone(),
            Arc::clone(&access_log),
            Arc::clone(&metrics),
            Arc::clone(&metrics_log),
            raw_log.clone(),
        ));

        let state = StackState {
            pid: std::process::id(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            xray_daemon_address: daemon.addr.to_string(),
            xray_endpoint: format!("http://{}", api.addr),
            services: services_state(&listeners, &topology),
            service_network_arn: topology.service_network_arn.clone(),
            credentials_file,
            loadgen_principal: topology.role_arn(LOADGEN_ROLE),
            access_log: access_log_path,
            metrics_log: metrics_path,
            lambda_logs: function_log::logs_dir(&config.state_dir),
            raw_documents: config.raw_documents.then_some(raw_path),
            lambda_endpoint: format!("http://{}", invoke_api.addr),
            dynamodb: dynamodb.state.clone(),
            search: search_state,
            analytics: analytics.as_ref().map(|(_, state)| state.clone()),
        };
        let state_path = StackState::path(&config.state_dir);
        std::fs::write(
            &state_path,
            serde_json::to_vec_pretty(&state).unwrap_or_default(),
        )
        .map_err(io(format!("writing {}", state_path.display())))?;
        Ok(Self {
            config,
            topology,
            credentials,
            store,
            functions,
            access_log,
            metrics,
            state,
            dynamodb,
            search,
            firehose: analytics.map(|(stream, _)| stream),
            network,
            facade,
            invoke_api,
            listeners,
            daemon,
            api,
            raw_log,
            metrics_log,
            function_logs,
            flusher,
        })
    }

    /// Shuts every function's environments down (their extensions get `SHUTDOWN` and flush),
    /// leaving the rest of the stack up: a run's telemetry is complete only after this.
    pub async fn shut_down_functions(&self) {
        shut_down_all(&self.functions).await;
    }

    /// Pushes the access log and the functions' logs to their files, for a reader that wants
    /// every line so far (the cost report).
    pub fn flush_records(&self) {
        self.access_log.flush();
        for log in &self.function_logs {
            log.flush();
        }
    }

    /// The URL of `service`'s listener.
    pub fn service_url(&self, service: &str) -> Option<String> {
        self.state.services.get(service).map(|s| s.url.clone())
    }

    /// The key loadgen signs with.
    pub fn loadgen_key(&self) -> Option<&PrincipalKey> {
        self.credentials.key_of(&self.state.loadgen_principal)
    }

    /// The key of any principal the stack knows.
    pub fn key_of(&self, principal: &str) -> Option<&PrincipalKey> {
        self.credentials.key_of(principal)
    }

    /// Segment documents the Lambda facade has sent so far.
    pub fn facade_documents_sent(&self) -> u64 {
        self.facade.documents_sent()
    }

    /// What the Lattice hop has added to requests so far.
    pub fn hop_overhead(&self) -> HopOverhead {
        self.network.hop_overhead()
    }

    /// The X-Ray daemon's UDP address.
    pub fn xray_daemon(&self) -> SocketAddr {
        self.daemon.addr
    }

    /// `endpoint_url` of the local Lambda Invoke API.
    pub fn lambda_endpoint(&self) -> String {
        format!("http://{}", self.invoke_api.addr)
    }

    /// The X-Ray API's endpoint URL.
    pub fn xray_endpoint(&self) -> String {
        format!("http://{}", self.api.addr)
    }

    /// Stops accepting requests, writes every pending metric minute and log line, stops the
    /// functions' processes and removes the state file.
    pub async fn shutdown(self) {
        let Self {
            config,
            functions,
            access_log,
            metrics,
            network,
            listeners,
            raw_log,
            metrics_log,
            function_logs,
            flusher,
            dynamodb,
            search,
            firehose,
            ..
        } = self;
        drop(listeners);
        flusher.abort();
        if let Some(stream) = &firehose {
            let stats = stream.drain(Duration::from_secs(10)).await;
            if stats.accounted() < stats.received {
                tracing::warn!(?stats, "the delivery stream stopped with records in flight");
            }
            stream.stop().await;
        }
        write_metrics(&metrics_log, &metrics.drain_all());
        access_log.flush();
        for log in &function_logs {
            log.flush();
        }
        if let Some(raw) = &raw_log {
            raw.flush();
        }
        let _ = std::fs::remove_file(StackState::path(&config.state_dir));
        // Kill every environment's process explicitly: idle keep-alive connections can hold
        // references to the functions for a while, so dropping is not enough.
        shut_down_all(&functions).await;
        drop(network);
        let _ = tokio::task::spawn_blocking(move || dynamodb.stop()).await;
        search.stop().await;
    }
}

/// The principals' generated keys and the default auth policies, written to the state folder
/// (`credentials.json`, readable by its owner only, and `auth-policies.json`).
fn write_auth(
    config: &StackConfig,
    topology: &NetworkTopology,
) -> Result<(CredentialsFile, PathBuf, AuthPolicies), StackError> {
    let mut principals = vec![topology.role_arn(LOADGEN_ROLE)];
    principals.extend(
        SERVICES
            .iter()
            .map(|s| topology.role_arn(&function_role(s))),
    );
    principals.extend(config.extra_order_callers.iter().cloned());
    if config.analytics.is_some() {
        principals.push(topology.role_arn(FIREHOSE_ROLE));
    }
    let credentials = CredentialsFile::generate(&principals);
    let credentials_file = config.state_dir.join("credentials.json");
    write_private(
        &credentials_file,
        &serde_json::to_vec_pretty(&credentials).unwrap_or_default(),
    )
    .map_err(io(format!("writing {}", credentials_file.display())))?;
    let policies = default_policies(topology, &config.extra_order_callers)?;
    let policies_file = config.state_dir.join("auth-policies.json");
    let mut described = serde_json::Map::new();
    described.insert("serviceNetwork".into(), policies.network.document().clone());
    for (name, policy) in &policies.services {
        described.insert(format!("service:{name}"), policy.document().clone());
    }
    for (principal, policy) in &policies.identities {
        described.insert(format!("identity:{principal}"), policy.document().clone());
    }
    std::fs::write(
        &policies_file,
        serde_json::to_vec_pretty(&described).unwrap_or_default(),
    )
    .map_err(io(format!("writing {}", policies_file.display())))?;
    Ok((credentials, credentials_file, policies))
}

/// The X-Ray daemon (UDP) and API (TCP, the same port number, as the real daemon), and the raw
/// documents file when asked for.
async fn start_xray(
    config: &StackConfig,
    store: &Arc<TraceStore>,
    raw_path: &Path,
) -> Result<(XrayDaemon, XrayApi, Option<Arc<JsonLinesFile>>), StackError> {
    let raw_log = if config.raw_documents {
        Some(Arc::new(
            JsonLinesFile::open(raw_path).map_err(io(format!("opening {}", raw_path.display())))?,
        ))
    } else {
        None
    };
    // With an OS-chosen port the TCP side may be taken: try other ports until both fit.
    let mut attempt = 0;
    loop {
        let daemon =
            XrayDaemon::start_with_log(config.xray_addr, Arc::clone(store), raw_log.clone())
                .await
                .map_err(io(format!(
                    "binding the X-Ray daemon on udp {}",
                    config.xray_addr
                )))?;
        match XrayApi::start(daemon.addr, Arc::clone(store)).await {
            Ok(api) => return Ok((daemon, api, raw_log)),
            Err(_) if config.xray_addr.port() == 0 && attempt < 20 => attempt += 1,
            Err(e) => {
                return Err(io(format!("binding the X-Ray API on tcp {}", daemon.addr))(
                    e,
                ))
            }
        }
    }
}

/// The service binaries, in [`SERVICES`] order, and the transform's when the analytics are on:
/// built first for commands (`rebuild_binaries`), only when missing for tests.
async fn function_binaries(
    config: &StackConfig,
) -> Result<(Vec<PathBuf>, Option<PathBuf>), StackError> {
    let rebuild = config.rebuild_binaries;
    let mut names = SERVICES.to_vec();
    if config.analytics.is_some() {
        names.push(TRANSFORM_FUNCTION);
    }
    let mut binaries = tokio::task::spawn_blocking(move || {
        if rebuild {
            build_service_binaries(&names)
        } else {
            names
                .iter()
                .map(|name| service_binary(name))
                .collect::<Result<Vec<_>, _>>()
        }
    })
    .await
    .map_err(|e| StackError::Io {
        what: "building the services".into(),
        source: std::io::Error::other(e.to_string()),
    })?
    .map_err(io("building the services"))?;
    let transform = (binaries.len() > SERVICES.len()).then(|| binaries.remove(SERVICES.len()));
    Ok((binaries, transform))
}

/// Shuts the functions down at once (each gives its extensions up to 2 s).
async fn shut_down_all(functions: &BTreeMap<String, Arc<Function>>) {
    let shutdowns: Vec<_> = functions
        .values()
        .map(|function| {
            let function = Arc::clone(function);
            tokio::spawn(async move { function.shutdown().await })
        })
        .collect();
    for shutdown in shutdowns {
        let _ = shutdown.await;
    }
}

/// order, payment and inventory, each running as its role, with the layer's extensions.
fn service_functions(
    config: &StackConfig,
    (topology, credentials): (&NetworkTopology, &CredentialsFile),
    binaries: Vec<PathBuf>,
    shared_env: &[(String, String)],
    (daemon, facade): (&XrayDaemon, &Arc<Facade>),
) -> Result<BTreeMap<String, Arc<Function>>, StackError> {
    let extensions = match &config.extensions_layer {
        Some(layer) => {
            extension_files(layer).map_err(io(format!("reading {}/extensions", layer.display())))?
        }
        None => Vec::new(),
    };
    let mut functions = BTreeMap::new();
    for (name, binary) in SERVICES.into_iter().zip(binaries) {
        let key = credentials
            .key_of(&topology.role_arn(&function_role(name)))
            .ok_or_else(|| StackError::State(format!("no key for {name}")))?;
        let function = service_function(
            config,
            name,
            binary,
            key,
            (shared_env, &extensions),
            daemon.addr,
        )
        .with_facade(Arc::clone(facade));
        functions.insert(name.to_owned(), Arc::new(function));
    }
    Ok(functions)
}

/// The access log file, streaming into the Firehose stream when there is one.
fn open_access_log(
    config: &StackConfig,
    stream: Option<&Arc<DeliveryStream>>,
) -> Result<(PathBuf, Arc<AccessLogWriter>), StackError> {
    let path = config.state_dir.join("access-log.jsonl");
    let mut writer =
        AccessLogWriter::to_file(&path).map_err(io(format!("opening {}", path.display())))?;
    if let Some(stream) = stream {
        writer = writer.with_subscriber(Arc::clone(stream) as _);
    }
    Ok((path, Arc::new(writer)))
}

/// The environment every service function gets: its peers' URLs, the DynamoDB tables, the
/// search engine for the telemetry extension when there are extensions, the services' knobs.
fn shared_function_env(
    config: &StackConfig,
    [inventory_url, payment_url]: [String; 2],
    dynamodb: &StackDynamoDb,
    search: &SearchState,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("INVENTORY_SERVICE_URL".to_owned(), inventory_url),
        ("PAYMENT_SERVICE_URL".to_owned(), payment_url),
    ];
    env.extend(dynamodb.function_env());
    if config.extensions_layer.is_some() {
        // The telemetry extension ships to this stack's search engine, signing with the
        // function's role as it signs for OpenSearch Service on AWS.
        env.push(("URL".to_owned(), search.url.clone()));
    }
    env.extend(config.service_env.iter().cloned());
    env
}

/// The function of service `name`, running as its role (`key`): order waits for two downstream
/// calls, so its timeout is its own.
fn service_function(
    config: &StackConfig,
    name: &str,
    binary: PathBuf,
    key: &PrincipalKey,
    (shared_env, extensions): (&[(String, String)], &[PathBuf]),
    daemon: SocketAddr,
) -> Function {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), key.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            key.secret_access_key.clone(),
        ),
    ];
    env.extend(shared_env.iter().cloned());
    Function::new(FunctionConfig {
        name: name.to_owned(),
        binary,
        env,
        // The deployment's (infra/aws/template.yaml, Globals): the functions' reports and the
        // cost report price what AWS would run.
        memory_mb: 256,
        timeout: if name == "order" {
            config.order_timeout
        } else {
            config.downstream_timeout
        },
        concurrency: config.concurrency,
        region: config.region.clone(),
        account_id: config.account_id.clone(),
        xray_daemon: Some(
            config
                .functions_xray_daemon
                .clone()
                .unwrap_or_else(|| daemon.to_string()),
        ),
        show_logs: config.show_logs,
        extensions: extensions.to_vec(),
        log: function_log_of(config, name),
    })
}

/// `name`'s log group under the state folder; `None` (and a warning) if it cannot be opened: a
/// log that cannot be written must not stop the function.
fn function_log_of(config: &StackConfig, name: &str) -> Option<Arc<FunctionLog>> {
    let dir = function_log::logs_dir(&config.state_dir);
    match FunctionLog::open(&dir, name) {
        Ok(log) => Some(Arc::new(log)),
        Err(error) => {
            tracing::warn!(%error, function = name, "the function's log cannot be written");
            None
        }
    }
}

/// [`RUNNER_FUNCTION`]: loadgen as a function, running as the loadgen role, told order's URL.
fn runner_function(
    config: &StackConfig,
    credentials: &CredentialsFile,
    topology: &NetworkTopology,
    binary: &Path,
    order_url: &str,
    daemon: SocketAddr,
) -> Result<Function, StackError> {
    let key = credentials
        .key_of(&topology.role_arn(LOADGEN_ROLE))
        .cloned()
        .ok_or_else(|| StackError::State("no key for loadgen".into()))?;
    Ok(Function::new(FunctionConfig {
        name: RUNNER_FUNCTION.to_owned(),
        binary: binary.to_path_buf(),
        env: vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), key.access_key_id),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), key.secret_access_key),
            ("ORDER_SERVICE_URL".to_owned(), order_url.to_owned()),
        ],
        memory_mb: 1024,
        timeout: Duration::from_secs(900),
        concurrency: config.runner_instances.max(1),
        region: config.region.clone(),
        account_id: config.account_id.clone(),
        xray_daemon: Some(daemon.to_string()),
        show_logs: config.show_logs,
        extensions: Vec::new(),
        log: function_log_of(config, RUNNER_FUNCTION),
    }))
}

/// Each listening service in the state file.
fn services_state(
    listeners: &[ServiceListener],
    topology: &NetworkTopology,
) -> BTreeMap<String, ServiceState> {
    listeners
        .iter()
        .filter_map(|l| {
            let service = topology.service(&l.service)?;
            Some((
                l.service.clone(),
                ServiceState {
                    url: l.url(),
                    service_arn: service.service_arn.clone(),
                    target_group_arn: service.target_group_arn.clone(),
                    function_name: service.function_name.clone(),
                },
            ))
        })
        .collect()
}

/// The traffic analytics: the transform function, the index template installed, the stream.
async fn start_analytics(
    config: &StackConfig,
    setup: &FirehoseSetup,
    (topology, credentials): (&NetworkTopology, &CredentialsFile),
    binary: PathBuf,
    search: &SearchState,
    (daemon, facade): (&XrayDaemon, &Arc<Facade>),
) -> Result<(Arc<DeliveryStream>, AnalyticsState), StackError> {
    let service_names: Vec<String> = SERVICES
        .iter()
        .filter_map(|name| Some(format!("{}={name}", topology.service(name)?.service_arn)))
        .collect();
    let mut env = vec![("SERVICE_NAMES".to_owned(), service_names.join(","))];
    env.extend(setup.transform_env.iter().cloned());
    let transform = Arc::new(
        Function::new(FunctionConfig {
            name: TRANSFORM_FUNCTION.to_owned(),
            binary,
            env,
            memory_mb: 256,
            timeout: Duration::from_secs(60),
            concurrency: 2,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            xray_daemon: Some(daemon.addr.to_string()),
            show_logs: config.show_logs,
            extensions: Vec::new(),
            log: None,
        })
        .with_facade(Arc::clone(facade)),
    );
    let role = topology.role_arn(FIREHOSE_ROLE);
    let sigv4 = config
        .search
        .sigv4
        .then(|| credentials.key_of(&role).cloned())
        .flatten()
        .map(|key| (key, config.region.clone()));
    let endpoint = SearchEndpoint {
        url: search.url.clone(),
        auth: EngineAuth {
            basic: config.search.basic_auth.clone(),
            sigv4,
        },
    };
    crate::firehose::install_index_template(&endpoint)
        .await
        .map_err(|e| StackError::Analytics(format!("installing the index template: {e}")))?;
    let backup_dir = config.state_dir.join("firehose-backup");
    let arn = format!(
        "arn:aws:firehose:{}:{}:deliverystream/{}",
        config.region,
        config.account_id,
        crate::firehose::STREAM_NAME
    );
    let stream = DeliveryStream::start(setup.clone(), arn, transform, endpoint, &backup_dir);
    let state = AnalyticsState {
        delivery_stream_arn: stream.arn.clone(),
        transform_function: TRANSFORM_FUNCTION.to_owned(),
        index_pattern: format!("{}-*", crate::firehose::STREAM_NAME),
        backup_dir,
    };
    Ok((Arc::new(stream), state))
}

fn write_metrics(log: &JsonLinesFile, lines: &[String]) {
    for line in lines {
        log.append(line);
    }
    log.flush();
}

async fn flush_periodically(
    function_logs: Vec<Arc<FunctionLog>>,
    access_log: Arc<AccessLogWriter>,
    metrics: Arc<MetricsRecorder>,
    metrics_log: Arc<JsonLinesFile>,
    raw_log: Option<Arc<JsonLinesFile>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        access_log.flush();
        for log in &function_logs {
            log.flush();
        }
        if let Some(raw) = &raw_log {
            raw.flush();
        }
        write_metrics(&metrics_log, &metrics.drain_completed(SystemTime::now()));
    }
}

/// Writes a file readable by its owner only (it holds secrets).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}
