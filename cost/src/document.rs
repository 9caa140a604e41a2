//! The report as one document: the figures, the recommendations, where they came from and what
//! asking for them cost. `loadgen cost --json` prints it, a local run's JSON report embeds it, and
//! the scheduled Lambda stores it in S3; `cost/report.schema.json` is its schema.
//!
//! Orders are the entry service's 2xx responses in the window: the same definition locally and on
//! AWS, where nothing else counts them.

use chrono::SecondsFormat;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::prices::{self, PriceError, PriceTable};
use crate::recommend::{recommend, Recommendation};
use crate::reconcile::{reconcile, Reconciliation};
use crate::report::{build, CostReport, ReportError, Scope};
use crate::sources::{Bill, Gathered, StackMap, Window};

/// The schema id the document carries.
pub const SCHEMA_ID: &str = "lattice-cost/2";

/// The window, as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WindowJson {
    /// RFC 3339, UTC, milliseconds.
    pub start: String,
    /// 〃, exclusive.
    pub end: String,
    /// Its length.
    pub seconds: f64,
}

/// What producing the report cost, at list price.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReportCost {
    /// Bytes Logs Insights scanned.
    pub logs_insights_bytes_scanned: u64,
    /// Their price.
    pub logs_insights_usd: f64,
    /// Traces X-Ray scanned to count them.
    pub xray_traces_scanned: u64,
    /// Their price.
    pub xray_usd: f64,
    /// Cost Explorer requests.
    pub cost_explorer_requests: u64,
    /// Their price.
    pub cost_explorer_usd: f64,
}

impl ReportCost {
    /// The sum.
    pub fn total_usd(&self) -> f64 {
        self.logs_insights_usd + self.xray_usd + self.cost_explorer_usd
    }
}

/// The whole report.
/// (Read back by `loadgen report --from`: the text fields the code writes are `Cow`s.)
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CostDocument {
    /// [`SCHEMA_ID`].
    pub schema: Cow<'static, str>,
    /// Where the numbers came from: `local` or `aws`.
    pub origin: Cow<'static, str>,
    /// The window.
    pub window: WindowJson,
    /// The loadgen run it is about, when one.
    pub run_id: Option<String>,
    /// The services, the entry service first.
    pub stack: StackMap,
    /// Traces X-Ray recorded in the window: the stack's (the run's only, with a run id) and
    /// Lambda's own sampled traces of the invocations counted.
    pub traces: u64,
    /// Lambda reports left out: their trace is not one of the run's.
    pub reports_outside_run: u64,
    /// The figures.
    pub report: CostReport,
    /// What to change, with what it saves.
    pub recommendations: Vec<Recommendation>,
    /// What the report cost.
    pub report_cost: ReportCost,
    /// The model beside the bill (AWS, `--reconcile`), when asked.
    pub reconciliation: Option<Reconciliation>,
}

/// Why the document could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DocumentError {
    /// The report's figures.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A price.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// A stack with no service.
    #[error("the stack map names no service")]
    NoServices,
}

/// Sets the model beside `bill` in `document`, with what asking Cost Explorer cost.
pub fn add_bill(
    document: &mut CostDocument,
    bill: &Bill,
    table: &PriceTable,
) -> Result<(), PriceError> {
    document.report_cost.cost_explorer_requests = bill.requests;
    document.report_cost.cost_explorer_usd =
        bill.requests as f64 * table.usd(prices::COST_EXPLORER_REQUEST)?;
    document.reconciliation = Some(reconcile(&document.report, bill));
    Ok(())
}

/// The document of `gathered` over `window`, priced by `table`.
pub fn compose(
    gathered: &Gathered,
    stack: &StackMap,
    (window, run_id): (&Window, Option<&str>),
    table: &PriceTable,
    origin: &'static str,
) -> Result<CostDocument, DocumentError> {
    let entry = stack.services.first().ok_or(DocumentError::NoServices)?;
    let orders = gathered
        .measured
        .get(&entry.name)
        .map_or(0, |m| m.traffic.status_classes[2]);
    let stack_traces = gathered.traces.trace_ids.len() as u64;
    let scope = Scope {
        window_seconds: window.seconds(),
        orders,
        traces: stack_traces,
        entry_service: entry.name.clone(),
    };
    let report = build(&gathered.measured, &scope, table)?;
    let traces = report.services.iter().map(|row| row.xray_traces).sum();
    let x86_64: Vec<(String, f64)> = gathered
        .measured
        .iter()
        .map(|(name, m)| (name.clone(), m.usage.gb_seconds_x86_64))
        .collect();
    let traced_fraction = (stack_traces as f64 / orders as f64).min(1.0);
    let recommendations = recommend(&report, table, traced_fraction, &x86_64)?;
    let report_cost = ReportCost {
        logs_insights_bytes_scanned: gathered.bytes_scanned,
        logs_insights_usd: gathered.bytes_scanned as f64 / crate::model::BYTES_PER_GB
            * table.usd(prices::LOGS_INSIGHTS)?,
        xray_traces_scanned: gathered.traces.traces_scanned,
        xray_usd: gathered.traces.traces_scanned as f64 * table.usd(prices::XRAY_RETRIEVED)?,
        ..ReportCost::default()
    };
    Ok(CostDocument {
        schema: Cow::Borrowed(SCHEMA_ID),
        origin: Cow::Borrowed(origin),
        window: WindowJson {
            start: window.start.to_rfc3339_opts(SecondsFormat::Millis, true),
            end: window.end.to_rfc3339_opts(SecondsFormat::Millis, true),
            seconds: window.seconds(),
        },
        run_id: run_id.map(str::to_owned),
        stack: stack.clone(),
        traces,
        reports_outside_run: gathered.reports_outside_run,
        report,
        recommendations,
        report_cost,
        reconciliation: None,
    })
}
