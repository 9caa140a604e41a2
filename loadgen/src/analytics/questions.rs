//! The questions asked over an [`AnalyticsClient`]: a generic search, the counts a local run
//! checks the access log against, and the whole dashboard. Bodies come from [`query`], answers
//! are read by [`answer`]; this module only sends them.
//!
//! Searches and counts pass `allow_no_indices=false`, so a pattern matching no index is
//! OpenSearch's 404 `index_not_found_exception` (→ [`AnalyticsError::IndexMissing`]) rather than
//! an empty answer that looks like no traffic.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use super::answer::{self, DashboardAnswers};
use super::client::Payload;
use super::query::{self, Window};
use super::{AnalyticsClient, AnalyticsError};

/// Characters OpenSearch refuses in index names (`,` separates several, `*` is a wildcard).
const NOT_IN_INDEX_NAMES: &[char] = &[' ', '"', '\\', '/', '?', '#', '<', '>', '|', '%', '&'];

fn index_path(index: &str) -> Result<String, AnalyticsError> {
    if index.is_empty() || index.contains(NOT_IN_INDEX_NAMES) {
        return Err(AnalyticsError::BadIndex(index.to_owned()));
    }
    Ok(format!("/{index}"))
}

impl AnalyticsClient {
    /// `POST <index>/_search` with `body`: the answer's JSON, or why there is none (a shard
    /// failure in a 200 answer included).
    pub async fn search(&self, index: &str, body: &Value) -> Result<Value, AnalyticsError> {
        self.search_for("search", index, body).await
    }

    pub(crate) async fn search_for(
        &self,
        what: &str,
        index: &str,
        body: &Value,
    ) -> Result<Value, AnalyticsError> {
        let path = format!("{}/_search?allow_no_indices=false", index_path(index)?);
        let payload = Payload::Json(Bytes::from(body.to_string()));
        let answer = self
            .call(what, Method::POST, &path, payload, Some(index))
            .await?;
        shards_ok(what, answer)
    }

    /// Documents in `index` (`_count`).
    pub async fn count(&self, index: &str) -> Result<u64, AnalyticsError> {
        let path = format!("{}/_count?allow_no_indices=false", index_path(index)?);
        let answer = self
            .call("count", Method::GET, &path, Payload::None, Some(index))
            .await?;
        answer::parse_count(&answer)
    }

    /// Every document of `index` (no time window) by `service` and `responseCode`.
    pub async fn counts_by_service_and_status(
        &self,
        index: &str,
    ) -> Result<BTreeMap<(String, u16), u64>, AnalyticsError> {
        let what = "counts by service and status";
        let answer = self.search_for(what, index, &query::counts_body()).await?;
        answer::parse_counts(&answer)
    }

    /// Makes what was written to `index` searchable now (`_refresh`).
    pub async fn refresh(&self, index: &str) -> Result<(), AnalyticsError> {
        let path = format!("{}/_refresh", index_path(index)?);
        self.call("refresh", Method::POST, &path, Payload::None, Some(index))
            .await
            .map(drop)
    }

    /// Indexes `documents` into `index` (`_bulk`, generated ids) and refreshes it; the number
    /// indexed, or the first item the engine refused (`_bulk` answers 200 even then).
    pub async fn bulk_index(
        &self,
        index: &str,
        documents: &[Value],
    ) -> Result<usize, AnalyticsError> {
        let what = "bulk";
        let mut ndjson = String::new();
        for document in documents {
            ndjson.push_str("{\"index\":{}}\n");
            ndjson.push_str(&document.to_string());
            ndjson.push('\n');
        }
        let path = format!("{}/_bulk?refresh=true", index_path(index)?);
        let payload = Payload::Ndjson(Bytes::from(ndjson));
        let answer = self.call(what, Method::POST, &path, payload, None).await?;
        bulk_ok(what, &answer)
    }

    /// The dashboard's questions over `window` in `index`, `top` paths, slow requests and
    /// principals (asked concurrently).
    pub async fn dashboard(
        &self,
        index: &str,
        window: &Window,
        top: usize,
    ) -> Result<DashboardAnswers, AnalyticsError> {
        let bodies = [
            query::services_body(window),
            query::status_classes_body(window),
            query::top_paths_body(window, top),
            query::slowest_body(window, top),
            query::denials_body(window, top),
        ];
        let (services, classes, paths, slowest, denials) = tokio::try_join!(
            self.search_for("requests per service", index, &bodies[0]),
            self.search_for("status classes over time", index, &bodies[1]),
            self.search_for("top paths", index, &bodies[2]),
            self.search_for("slowest requests", index, &bodies[3]),
            self.search_for("auth denials", index, &bodies[4]),
        )?;
        let (requests, services) = answer::parse_services(&services)?;
        Ok(DashboardAnswers {
            schema: answer::SCHEMA.to_owned(),
            index: index.to_owned(),
            from: query::text(window.from),
            to: query::text(window.to),
            interval: window.interval.to_string(),
            requests,
            services,
            status_classes: answer::parse_status_classes(&classes)?,
            top_paths: answer::parse_top_paths(&paths)?,
            slowest: answer::parse_slowest(&slowest)?,
            denials: answer::parse_denials(&denials)?,
        })
    }
}

/// A 200 search answer whose shards failed (all or some) is a refusal, with the first reason.
fn shards_ok(what: &str, answer: Value) -> Result<Value, AnalyticsError> {
    let failed = answer["_shards"]["failed"].as_u64().unwrap_or(0);
    if failed == 0 {
        return Ok(answer);
    }
    let cause = &answer["_shards"]["failures"][0]["reason"];
    let reason = match (cause["type"].as_str(), cause["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ => format!("{failed} shard(s) failed"),
    };
    Err(AnalyticsError::Refused {
        what: what.to_owned(),
        status: 200,
        reason,
    })
}

/// `_bulk`'s answer: the items indexed, or the first refused.
fn bulk_ok(what: &str, answer: &Value) -> Result<usize, AnalyticsError> {
    let items = answer["items"]
        .as_array()
        .ok_or_else(|| AnalyticsError::BadAnswer {
            what: what.to_owned(),
            detail: "no items".to_owned(),
        })?;
    let refused = items.iter().find_map(|item| {
        let outcome = item.as_object()?.values().next()?;
        let status = outcome["status"].as_u64()?;
        (status >= 300).then(|| (status, outcome["error"].clone()))
    });
    match refused {
        None => Ok(items.len()),
        Some((status, error)) => Err(AnalyticsError::Refused {
            what: what.to_owned(),
            status: u16::try_from(status).unwrap_or(0),
            reason: format!(
                "{}: {}",
                error["type"].as_str().unwrap_or("error"),
                error["reason"].as_str().unwrap_or("no reason given")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shard_failures_in_a_200_are_refusals() {
        let ok = json!({"_shards": {"total": 1, "failed": 0}, "hits": {}});
        assert_eq!(shards_ok("q", ok.clone()).unwrap(), ok);
        let failed = json!({"_shards": {"total": 2, "failed": 1, "failures": [{"shard": 0,
            "reason": {"type": "illegal_argument_exception", "reason": "Text fields are not optimised"}}]}});
        assert_eq!(
            shards_ok("top paths", failed).unwrap_err().to_string(),
            "top paths: refused with 200: illegal_argument_exception: Text fields are not optimised"
        );
    }

    #[test]
    fn bulk_items_are_checked_one_by_one() {
        let ok = json!({"errors": false, "items": [{"index": {"status": 201}}, {"index": {"status": 201}}]});
        assert_eq!(bulk_ok("bulk", &ok).unwrap(), 2);
        let partial = json!({"errors": true, "items": [{"index": {"status": 201}},
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception",
                "reason": "failed to parse field [duration] of type [long]"}}}]});
        assert_eq!(
            bulk_ok("bulk", &partial).unwrap_err().to_string(),
            "bulk: refused with 400: mapper_parsing_exception: failed to parse field [duration] of type [long]"
        );
    }

    #[test]
    fn index_names_are_checked_before_sending() {
        assert_eq!(index_path("lattice-access-*").unwrap(), "/lattice-access-*");
        assert_eq!(index_path("a,b").unwrap(), "/a,b");
        for bad in ["", "a b", "a/b", "a?b", "a#"] {
            assert!(index_path(bad).is_err(), "{bad:?}");
        }
    }
}
