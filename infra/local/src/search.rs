//! The stack's search engine: `local-search` (OpenSearch's REST API on tantivy) on loopback, where
//! the traffic analytics and the telemetry extension deliver as they deliver to Amazon OpenSearch
//! Service. Disk-backed under the state folder by default, so indices survive a restart; in
//! memory for tests. Authentication is off unless asked for: HTTP basic with a configured user,
//! or SigV4 (`es`) verified with the stack's own keys, so a client configured for a real domain
//! works unchanged.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use local_search::{Auth, SearchConfig, SearchServer};
use serde::{Deserialize, Serialize};
use sigv4_verify::{PrincipalKey, SigningRules, Verifier};

/// OpenSearch's port.
pub const DEFAULT_PORT: u16 = 9200;

/// Where the engine keeps its indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchStorage {
    /// `<state_dir>/search`.
    StateDir,
    /// This folder.
    Folder(PathBuf),
    /// Nothing on disk.
    Memory,
}

/// How the stack runs its search engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchSetup {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Where indices live.
    pub storage: SearchStorage,
    /// HTTP basic auth: user and password.
    pub basic_auth: Option<(String, String)>,
    /// Require SigV4 (service `es`), verified against the stack's keys.
    pub sigv4: bool,
}

impl Default for SearchSetup {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            storage: SearchStorage::StateDir,
            basic_auth: None,
            sigv4: false,
        }
    }
}

/// The engine in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchState {
    /// `http://127.0.0.1:<port>`: the endpoint an OpenSearch client is given.
    pub url: String,
    /// Where its indices are (`None`: in memory).
    pub data_dir: Option<PathBuf>,
    /// `none`, `basic` or `sigv4`.
    pub auth: String,
}

/// Reads `user:password`.
pub fn parse_basic_auth(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .filter(|(user, password)| !user.is_empty() && !password.is_empty())
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .ok_or_else(|| "expected USER:PASSWORD".to_owned())
}

/// Starts the engine for a stack in `state_dir`, verifying SigV4 with `keys` in `region`.
pub async fn start(
    setup: &SearchSetup,
    state_dir: &std::path::Path,
    keys: HashMap<String, PrincipalKey>,
    region: &str,
) -> Result<(SearchServer, SearchState), local_search::StartError> {
    let data_dir = match &setup.storage {
        SearchStorage::StateDir => Some(state_dir.join("search")),
        SearchStorage::Folder(folder) => Some(folder.clone()),
        SearchStorage::Memory => None,
    };
    let auth = Auth {
        basic: setup.basic_auth.clone(),
        sigv4: setup
            .sigv4
            .then(|| Verifier::new(keys, region, SigningRules::opensearch())),
    };
    let server = SearchServer::start(SearchConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, setup.port)),
        data_dir: data_dir.clone(),
        auth,
    })
    .await?;
    let auth = match (&setup.basic_auth, setup.sigv4) {
        (None, false) => "none",
        (Some(_), false) => "basic",
        (None, true) => "sigv4",
        (Some(_), true) => "basic or sigv4",
    };
    let state = SearchState {
        url: server.url(),
        data_dir,
        auth: auth.to_owned(),
    };
    Ok((server, state))
}
