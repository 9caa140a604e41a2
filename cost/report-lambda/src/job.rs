//! One scheduled report: the UTC day before the event, asked of the sources, composed into the
//! `lattice-cost/2` document, set beside Cost Explorer's bill of that day, stored, and its cost
//! per 1M requests per service turned into EMF lines. Everything it touches comes in through a
//! trait ([`Sources`], [`BillSource`], [`ReportStore`]), so the tests run it with fakes.
//!
//! A bill that cannot be read does not lose the day's report: the document is stored without its
//! reconciliation, then the job fails with the bill's error (the function's `Errors` metric and
//! its log say so).

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use lattice_cost::document::{add_bill, compose, CostDocument, DocumentError};
use lattice_cost::prices::{PriceError, PriceTable};
use lattice_cost::sources::{gather, BillSource, SourceError, Sources, Window};
use serde_json::Value;

use crate::config::Config;
use crate::emf;

/// Why a document could not be stored.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("storing the report: {0}")]
pub struct StoreError(pub String);

/// Where documents go.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores `body` under `key`.
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError>;
}

/// Why a report failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A source.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The document.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// A price.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bill, after the document was stored without its reconciliation.
    #[error("the report is stored at {key} without its reconciliation: {source}")]
    Bill {
        /// Where the document went.
        key: String,
        /// The bill's error.
        source: SourceError,
    },
}

/// What a report produced.
#[derive(Debug)]
pub struct Outcome {
    /// The document's key.
    pub key: String,
    /// The document.
    pub document: CostDocument,
    /// Its EMF lines.
    pub metrics: Vec<Value>,
}

/// The UTC day before the one `at` falls in.
pub fn previous_day(at: DateTime<Utc>) -> Result<Window, SourceError> {
    let today = Utc
        .with_ymd_and_hms(at.year(), at.month(), at.day(), 0, 0, 0)
        .single()
        .unwrap_or(at);
    Window::new(today - Duration::days(1), today)
}

/// The document's key: `reports/YYYY/MM/DD.json` of the window's first day.
pub fn key_of(window: &Window) -> String {
    window.start.format("reports/%Y/%m/%d.json").to_string()
}

/// The report on the day before `at`.
pub async fn run(
    (sources, bill): (&Sources<'_>, &dyn BillSource),
    store: &dyn ReportStore,
    config: &Config,
    table: &PriceTable,
    at: DateTime<Utc>,
) -> Result<Outcome, JobError> {
    let window = previous_day(at)?;
    let gathered = gather(sources, &config.stack, &window, None).await?;
    let mut document = compose(&gathered, &config.stack, (&window, None), table, "aws")?;
    let tag = (config.cost_tag.0.as_str(), config.cost_tag.1.as_str());
    let billed = bill.bill(&window, tag).await;
    if let Ok(bill) = &billed {
        add_bill(&mut document, bill, table)?;
    }
    let key = key_of(&window);
    let body = serde_json::to_vec_pretty(&document)
        .map_err(|e| StoreError(format!("the document does not serialize: {e}")))?;
    store.put(&key, body).await?;
    if let Err(source) = billed {
        return Err(JobError::Bill { key, source });
    }
    let metrics = emf::lines(
        &document.report,
        &config.namespace,
        window.end.timestamp_millis() - 1,
    );
    Ok(Outcome {
        key,
        document,
        metrics,
    })
}
