//! Index settings: the ones served (`number_of_shards`, `number_of_replicas`, `refresh_interval`),
//! read in any of OpenSearch's spellings (`{"index": {"number_of_shards": 1}}`,
//! `{"index.number_of_shards": "1"}`, `{"number_of_shards": 1}`), printed back as OpenSearch does
//! (strings under `index`). An unknown setting is refused as OpenSearch refuses it.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::document::scalar_text;
use crate::error::{ApiError, ApiResult};

/// The served settings.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSettings {
    /// Accepted and printed; the engine keeps one shard per index.
    pub number_of_shards: u32,
    /// Accepted and printed; there is one node, so replicas stay unassigned (health yellow).
    pub number_of_replicas: u32,
    /// `None` for `-1` (refresh only when asked).
    pub refresh_interval: Option<Duration>,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            number_of_shards: 1,
            number_of_replicas: 1,
            refresh_interval: Some(Duration::from_secs(1)),
        }
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn unsigned(key: &str, value: &Value) -> ApiResult<u32> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        ApiError::illegal_argument(format!(
            "Failed to parse value [{}] for setting [{key}]",
            scalar_text(value)
        ))
    })
}

/// `1s`, `500ms`, `2m`, `-1`.
pub fn parse_interval(key: &str, value: &Value) -> ApiResult<Option<Duration>> {
    let raw = scalar_text(value);
    if raw == "-1" {
        return Ok(None);
    }
    let bad = || {
        ApiError::illegal_argument(format!(
            "failed to parse setting [{key}] with value [{raw}] as a time value: unit is missing or unrecognized"
        ))
    };
    let digits = raw.chars().take_while(char::is_ascii_digit).count();
    let amount: u64 = raw[..digits].parse().map_err(|_| bad())?;
    let duration = match &raw[digits..] {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount * 60),
        "h" => Duration::from_secs(amount * 3600),
        _ => return Err(bad()),
    };
    Ok(Some(duration))
}

fn interval_text(interval: Option<Duration>) -> String {
    match interval {
        None => "-1".to_owned(),
        Some(d) if d.as_millis() % 1000 == 0 => format!("{}s", d.as_secs()),
        Some(d) => format!("{}ms", d.as_millis()),
    }
}

impl IndexSettings {
    /// Reads a `settings` object (absent keys keep their defaults).
    pub fn parse(value: &Value) -> ApiResult<Self> {
        let mut settings = Self::default();
        settings.apply(value)?;
        Ok(settings)
    }

    /// Applies a `settings` object over these.
    pub fn apply(&mut self, value: &Value) -> ApiResult<()> {
        let mut pairs = Vec::new();
        flatten("", value, &mut pairs);
        for (key, value) in pairs {
            let key = if key.starts_with("index.") {
                key
            } else {
                format!("index.{key}")
            };
            match key.as_str() {
                "index.number_of_shards" => self.number_of_shards = unsigned(&key, &value)?,
                "index.number_of_replicas" => self.number_of_replicas = unsigned(&key, &value)?,
                "index.refresh_interval" => self.refresh_interval = parse_interval(&key, &value)?,
                _ => {
                    return Err(ApiError::illegal_argument(format!(
                        "unknown setting [{key}] please check that any required plugins are installed, or check the breaking changes documentation for removed settings"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The form kept on disk.
    pub fn to_stored_json(&self) -> Value {
        json!({"index": {
            "number_of_shards": self.number_of_shards.to_string(),
            "number_of_replicas": self.number_of_replicas.to_string(),
            "refresh_interval": interval_text(self.refresh_interval),
        }})
    }

    /// `settings` as `GET <index>/_settings` prints it.
    pub fn to_response_json(&self, name: &str, uuid: &str, creation_date: i64) -> Value {
        let mut index = Map::new();
        index.insert("creation_date".into(), json!(creation_date.to_string()));
        index.insert(
            "number_of_shards".into(),
            json!(self.number_of_shards.to_string()),
        );
        index.insert(
            "number_of_replicas".into(),
            json!(self.number_of_replicas.to_string()),
        );
        if self.refresh_interval != Some(Duration::from_secs(1)) {
            index.insert(
                "refresh_interval".into(),
                json!(interval_text(self.refresh_interval)),
            );
        }
        index.insert("uuid".into(), json!(uuid));
        index.insert("version".into(), json!({"created": crate::VERSION_ID}));
        index.insert("provided_name".into(), json!(name));
        json!({ "index": index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_read() {
        for value in [
            json!({"index": {"number_of_shards": 2, "refresh_interval": "-1"}}),
            json!({"index.number_of_shards": "2", "index.refresh_interval": -1}),
            json!({"number_of_shards": 2, "refresh_interval": "-1"}),
        ] {
            let settings = IndexSettings::parse(&value).unwrap();
            assert_eq!(settings.number_of_shards, 2, "{value}");
            assert_eq!(settings.refresh_interval, None, "{value}");
        }
        assert_eq!(
            IndexSettings::parse(&json!({"refresh_interval": "250ms"}))
                .unwrap()
                .refresh_interval,
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn unknown_settings_are_refused() {
        let error =
            IndexSettings::parse(&json!({"index": {"codec": "best_compression"}})).unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.reason.starts_with("unknown setting [index.codec]"));
    }
}
