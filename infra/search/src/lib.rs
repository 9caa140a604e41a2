//! A search engine that speaks the subset of OpenSearch's REST API this project and its users'
//! dashboards use, on tantivy (the engine inside Quickwit), so the traffic analytics and the
//! telemetry extension run unchanged against the local stack and against Amazon OpenSearch
//! Service. No OpenSearch or Elasticsearch server installs from the registries these machines
//! reach, so this stands in for one; it aims to be exact where clients notice: mapping conflicts,
//! a `"-"` in a numeric field, partial `_bulk` failures, error shapes and status codes.
//!
//! # What is served
//! - `GET /` (`version.distribution: "opensearch"`, number [`api::VERSION_NUMBER`]),
//!   `GET _cluster/health`, `GET _cat/indices` (text or `format=json`).
//! - Index templates: `PUT/GET/HEAD/DELETE _index_template/<name>` (`index_patterns`,
//!   `priority`, `template.settings`, `template.mappings`); indices: `PUT/HEAD/GET/DELETE
//!   <index>`, `GET|PUT <index>/_mapping`, `GET <index>/_settings`; an index is created on first
//!   write from the highest-priority matching template.
//! - Mappings (`mapping`): keyword, text (+ keyword `fields`), integer, long, float, double,
//!   boolean, date (`format`), ip, object (`properties`, `dynamic: true|false|strict`,
//!   `enabled: false`), flat_object; dynamic mapping from a field's first value.
//! - Writes (`bulk`, `store`): `_bulk` (index, create, delete), `_doc`, `_create`, realtime
//!   `GET _doc/<id>`, `?refresh=true|wait_for|false`, `_refresh`, `refresh_interval`.
//! - Search (`search`, `query`, `query_string`, `sort`, `source_filter`): `_search` and `_count`
//!   over `index`, `a,b`, `pattern*`, `_all`; match_all, match, match_phrase, term, terms, ids,
//!   range (date math), bool, exists, prefix, query_string; size/from, sort, `_source`,
//!   `track_total_hits`.
//! - Aggregations (`aggs`): tantivy's Elasticsearch-compatible engine — terms, date_histogram
//!   (fixed and calendar intervals), histogram, range, filter, filters; avg, sum, min, max, stats,
//!   extended_stats, value_count, cardinality, percentiles, top_hits; sub-aggregations.
//! - OpenSearch's error shape and types (`error`); `http.max_content_length` 413; HTTP basic and
//!   SigV4 (`es`) authentication, both off by default (`server`).
//!
//! # What is not
//! Scroll, point-in-time, `_update`/`update` actions, scripts, aliases, data streams, ingest
//! pipelines, `_msearch`, highlighting, suggesters, analyzers other than the standard-like default,
//! nested documents, geo types, security and ISM plugins, more than one node. Each answers a 400
//! naming what is not served rather than being ignored. One shard per index; replicas are
//! accepted and left unassigned (health yellow), as on a one-node cluster. Scores are tantivy's
//! BM25, close to OpenSearch's but not equal; `percentiles` and `cardinality` are tantivy's
//! sketches (DDSketch; HyperLogLog from Apache DataSketches), estimates as OpenSearch's
//! (t-digest, HLL++) are, so their values can differ slightly.

pub mod aggs;
pub mod api;
pub mod bulk;
pub mod date;
pub mod document;
pub mod engine;
pub mod error;
pub mod fields;
pub mod mapping;
pub mod query;
pub mod query_string;
pub mod search;
pub mod server;
pub mod settings;
pub mod sort;
pub mod source_filter;
pub mod store;
pub mod template;

pub use engine::Engine;
pub use server::{Auth, SearchConfig, SearchServer, StartError};

/// `settings.index.version.created` for OpenSearch 2.19.0 (its version id with the OpenSearch
/// mask, as a real node prints it).
pub const VERSION_ID: &str = "136407827";
