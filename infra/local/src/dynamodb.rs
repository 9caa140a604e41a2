//! The stack's DynamoDB: a real DynamoDB API server on loopback (dynoxide, embedded) or an
//! external endpoint (Amazon DynamoDB Local in CI), with the two services' tables created and the
//! catalog's stock seeded before any function starts.
//!
//! The functions reach it the way they reach DynamoDB on AWS, through the SDK's standard chain:
//! `AWS_ENDPOINT_URL_DYNAMODB` plus the table names in `INVENTORY_TABLE` and `PAYMENTS_TABLE`.
//! The tables are the services' own definitions (`inventory::table`, `payment::table`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use lattice_xray::dynamodb::local::{client_for, EmbeddedDynamoDb};
use serde::{Deserialize, Serialize};

/// The table names on AWS (and here, unless prefixed).
pub const INVENTORY_TABLE: &str = "inventory";
/// The payments table's name.
pub const PAYMENTS_TABLE: &str = "payments";

/// Which server the stack uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DynamoDbSource {
    /// The embedded server on `127.0.0.1:port` (0: any free port).
    Embedded {
        /// Port.
        port: u16,
    },
    /// A server someone else runs (e.g. `http://127.0.0.1:8000`).
    External {
        /// Its endpoint URL.
        endpoint: String,
    },
}

/// The stock the inventory table starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StockSeeding {
    /// The simulated catalog (`inventory::table::seeded_levels`).
    Catalog {
        /// Seed.
        seed: u64,
        /// Fewest units per SKU.
        min: u32,
        /// Most units per SKU.
        max: u32,
    },
    /// Exactly these levels (tests).
    Levels(Vec<(String, u32)>),
}

impl StockSeeding {
    fn levels(&self) -> Vec<(String, u32)> {
        match self {
            Self::Catalog { seed, min, max } => inventory::table::seeded_levels(*seed, *min, *max),
            Self::Levels(levels) => levels.clone(),
        }
    }
}

/// How to set the stack's DynamoDB up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamoDbSetup {
    /// The server.
    pub source: DynamoDbSource,
    /// Put before each table name (stacks sharing one external server need their own tables).
    pub table_prefix: String,
    /// The inventory table's first stock.
    pub stock: StockSeeding,
}

impl Default for DynamoDbSetup {
    fn default() -> Self {
        Self {
            source: DynamoDbSource::Embedded { port: 0 },
            table_prefix: String::new(),
            stock: StockSeeding::Catalog {
                seed: lattice_xray::simulation::DEFAULT_SEED,
                min: 1000,
                max: 5000,
            },
        }
    }
}

/// What `state.json` says about DynamoDB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamoDbState {
    /// The endpoint the functions use.
    pub endpoint: String,
    /// Whether the stack runs the server itself.
    pub embedded: bool,
    /// The inventory table.
    pub inventory_table: String,
    /// The payments table.
    pub payments_table: String,
    /// The stock each SKU had when the stack started (what conservation is checked against).
    pub initial_stock: BTreeMap<String, u32>,
}

/// The running DynamoDB of a stack.
#[derive(Debug)]
pub struct StackDynamoDb {
    embedded: Option<EmbeddedDynamoDb>,
    /// What the state file records.
    pub state: DynamoDbState,
}

/// Why DynamoDB could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbError {
    /// The embedded server did not start.
    #[error("starting the embedded DynamoDB: {0}")]
    Start(std::io::Error),
    /// A table could not be created or seeded.
    #[error("setting up table {table} at {endpoint}: {source}")]
    Table {
        /// The table.
        table: String,
        /// The server.
        endpoint: String,
        /// The SDK's error.
        source: Box<aws_sdk_dynamodb::Error>,
    },
}

impl StackDynamoDb {
    /// Starts (or connects to) the server, creates both tables and seeds the stock.
    pub async fn start(setup: &DynamoDbSetup) -> Result<Self, DynamoDbError> {
        let (embedded, endpoint) = match &setup.source {
            DynamoDbSource::Embedded { port } => {
                let server = EmbeddedDynamoDb::start(*port).map_err(DynamoDbError::Start)?;
                let endpoint = server.endpoint();
                (Some(server), endpoint)
            }
            DynamoDbSource::External { endpoint } => (None, endpoint.clone()),
        };
        let client = client_for(&endpoint);
        let inventory_table = format!("{}{INVENTORY_TABLE}", setup.table_prefix);
        let payments_table = format!("{}{PAYMENTS_TABLE}", setup.table_prefix);
        let levels = setup.stock.levels();
        let failed = |table: &str| {
            let table = table.to_owned();
            let endpoint = endpoint.clone();
            move |source: aws_sdk_dynamodb::Error| DynamoDbError::Table {
                table,
                endpoint,
                source: Box::new(source),
            }
        };
        inventory::table::create(&client, &inventory_table)
            .await
            .map_err(failed(&inventory_table))?;
        inventory::table::seed(&client, &inventory_table, &levels)
            .await
            .map_err(failed(&inventory_table))?;
        payment::table::create(&client, &payments_table)
            .await
            .map_err(failed(&payments_table))?;
        Ok(Self {
            embedded,
            state: DynamoDbState {
                endpoint,
                embedded: matches!(setup.source, DynamoDbSource::Embedded { .. }),
                inventory_table,
                payments_table,
                initial_stock: levels.into_iter().collect(),
            },
        })
    }

    /// What every function is given: the endpoint and both table names.
    pub fn function_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL_DYNAMODB".to_owned(),
                self.state.endpoint.clone(),
            ),
            (
                inventory::config::TABLE_ENV.to_owned(),
                self.state.inventory_table.clone(),
            ),
            (
                payment::config::TABLE_ENV.to_owned(),
                self.state.payments_table.clone(),
            ),
        ]
    }

    /// A client of this server (reading the tables after a run).
    pub fn client(&self) -> Client {
        client_for(&self.state.endpoint)
    }

    /// Stops the embedded server, if the stack runs one.
    pub fn stop(self) {
        if let Some(server) = self.embedded {
            server.stop();
        }
    }
}

impl DynamoDbState {
    /// A client of the server this state names.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint)
    }
}
