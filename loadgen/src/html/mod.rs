//! The HTML run report (`loadgen --html FILE`, `loadgen report --from report.json --html FILE`):
//! one self-contained page per run, rendered from the same [`Report`] the JSON report is, so a
//! saved report renders the same page later.
//!
//! The page holds inline CSS and SVG and no script that runs: nothing is fetched, it reads
//! offline and prints. Its data ([`data::PageData`]: the header, the verdict, the map's labels,
//! the charts' points) is embedded as `<script type="application/json" id="page-data">` for the
//! browser check (`loadgen/tests/browser/`) and for anyone scripting over a page.
//!
//! - [`data`]: what the page shows, from the report.
//! - [`map_svg`]: the service map, laid out by layout-rs.
//! - [`charts`]: latency over time, requests over time, the percentile plot (plotters).
//! - [`sections`]: the page's HTML (maud), tables included.

pub mod charts;
pub mod data;
pub mod map_svg;
pub mod sections;

use std::path::Path;

use anyhow::Context as _;

use crate::report::Report;

pub use data::PageData;

/// `text`, escaped for HTML and SVG text and attribute values (maud's escaping).
pub fn escape(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

/// The page of `report`.
pub fn page(report: &Report) -> String {
    sections::page(report, &PageData::of(report))
}

/// Writes the page of `report` to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, page(report))
        .with_context(|| format!("writing the HTML report {}", path.display()))
}

/// The page data embedded in `page` (what [`PageData::to_script_json`] wrote), parsed.
pub fn embedded_data(page: &str) -> Option<serde_json::Value> {
    const OPEN: &str = r#"<script type="application/json" id="page-data">"#;
    let start = page.find(OPEN)? + OPEN.len();
    let end = start + page[start..].find("</script>")?;
    serde_json::from_str(&page[start..end]).ok()
}
