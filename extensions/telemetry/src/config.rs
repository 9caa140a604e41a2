//! The extension's configuration, read once from the environment at start. The variable names
//! are the Python OpenSearch telemetry sample's, so a function can switch without changes. A value
//! that does not parse never stops the extension (that would fail the function's init): it falls
//! back to its default and is reported in one line each ([`Config::from_lookup`] returns the
//! lines). `DISPATCH_MIN_BATCH_SIZE` counts events, not POSTs as the sample's does.

use std::time::Duration;

/// The OpenSearch endpoint, e.g. `https://search-x.us-east-1.es.amazonaws.com`. Unset: the
/// extension counts what it receives and ships nothing.
pub const URL_VAR: &str = "URL";
/// Events pending before an INVOKE flushes (default [`DEFAULT_MIN_BATCH_EVENTS`]).
pub const MIN_BATCH_VAR: &str = "DISPATCH_MIN_BATCH_SIZE";
/// Index name prefix of platform records.
pub const PLATFORM_INDEX_VAR: &str = "PLATFORM_INDEX";
/// Index name prefix of function log lines.
pub const FUNCTION_INDEX_VAR: &str = "FUNCTION_INDEX";
/// Index name prefix of extension log lines.
pub const EXTENSION_INDEX_VAR: &str = "EXTENSION_INDEX";
/// A Secrets Manager secret id whose SecretString is `{"username":…,"password":…}`: HTTP basic
/// auth. Unset: SigV4 with the function's credentials.
pub const AUTH_SECRET_VAR: &str = "AUTH_SECRET";
/// The bound on one flush during an invocation, in milliseconds.
pub const DISPATCH_TIMEOUT_VAR: &str = "DISPATCH_TIMEOUT_MS";
/// The most documents kept waiting; the oldest beyond it are dropped.
pub const QUEUE_MAX_EVENTS_VAR: &str = "QUEUE_MAX_EVENTS";
/// Set by Lambda: the function's name.
pub const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// Set by Lambda: the function's version.
pub const FUNCTION_VERSION_VAR: &str = "AWS_LAMBDA_FUNCTION_VERSION";
/// Set by Lambda: `host:port` of the Runtime, Extensions and Telemetry APIs.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
/// Set by Lambda: the region, for SigV4.
pub const REGION_VAR: &str = "AWS_REGION";

/// Default of `DISPATCH_MIN_BATCH_SIZE`.
pub const DEFAULT_MIN_BATCH_EVENTS: usize = 50;
/// Default of `PLATFORM_INDEX`.
pub const DEFAULT_PLATFORM_INDEX: &str = "lambda-platform";
/// Default of `FUNCTION_INDEX`.
pub const DEFAULT_FUNCTION_INDEX: &str = "lambda-function";
/// Default of `EXTENSION_INDEX`.
pub const DEFAULT_EXTENSION_INDEX: &str = "lambda-extension";
/// Default of `DISPATCH_TIMEOUT_MS`.
pub const DEFAULT_DISPATCH_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default of `QUEUE_MAX_EVENTS`.
pub const DEFAULT_QUEUE_MAX_EVENTS: usize = 10_000;

/// The index name prefixes; documents go to `<prefix>-YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    /// Platform records (`platform.*`) and records of unknown types.
    pub platform: String,
    /// Function log lines.
    pub function: String,
    /// Extension log lines.
    pub extension: String,
}

impl Default for Indices {
    fn default() -> Self {
        Self {
            platform: DEFAULT_PLATFORM_INDEX.to_owned(),
            function: DEFAULT_FUNCTION_INDEX.to_owned(),
            extension: DEFAULT_EXTENSION_INDEX.to_owned(),
        }
    }
}

/// Everything the extension reads from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The OpenSearch endpoint without a trailing `/`; `None`: ship nothing.
    pub url: Option<String>,
    /// Events pending before an INVOKE flushes.
    pub min_batch_events: usize,
    /// Index prefixes.
    pub indices: Indices,
    /// Secrets Manager secret id for basic auth.
    pub auth_secret: Option<String>,
    /// The bound on one INVOKE-time flush.
    pub dispatch_timeout: Duration,
    /// The most documents kept waiting.
    pub queue_max_events: usize,
    /// The function's name.
    pub function_name: Option<String>,
    /// The function's version.
    pub function_version: Option<String>,
    /// `host:port` of the Lambda APIs.
    pub runtime_api: Option<String>,
    /// The region, for SigV4.
    pub region: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: None,
            min_batch_events: DEFAULT_MIN_BATCH_EVENTS,
            indices: Indices::default(),
            auth_secret: None,
            dispatch_timeout: DEFAULT_DISPATCH_TIMEOUT,
            queue_max_events: DEFAULT_QUEUE_MAX_EVENTS,
            function_name: None,
            function_version: None,
            runtime_api: None,
            region: None,
        }
    }
}

impl Config {
    /// From the process environment; the second value holds one line per value that fell back to
    /// its default.
    pub fn from_env() -> (Self, Vec<String>) {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests). An empty value is the same as an unset one.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut warnings = Vec::new();
        let mut warn = |name: &str, value: &str, fallback: &str| {
            warnings.push(format!("{name}={value:?} is not valid; using {fallback}"));
        };
        let url = get(URL_VAR).and_then(|value| {
            let url = endpoint(&value);
            if url.is_none() {
                warn(URL_VAR, &value, "none (nothing is shipped)");
            }
            url
        });
        let mut number = |name: &str, default: usize| match get(name) {
            None => default,
            Some(value) => match value.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    warn(name, &value, &default.to_string());
                    default
                }
            },
        };
        let min_batch_events = number(MIN_BATCH_VAR, DEFAULT_MIN_BATCH_EVENTS);
        let queue_max_events = number(QUEUE_MAX_EVENTS_VAR, DEFAULT_QUEUE_MAX_EVENTS);
        let default_timeout = DEFAULT_DISPATCH_TIMEOUT.as_millis() as usize;
        let timeout_ms = number(DISPATCH_TIMEOUT_VAR, default_timeout);
        let mut index = |name: &str, default: &str| match get(name) {
            None => default.to_owned(),
            Some(value) if valid_index_prefix(&value) => value,
            Some(value) => {
                warn(name, &value, default);
                default.to_owned()
            }
        };
        let indices = Indices {
            platform: index(PLATFORM_INDEX_VAR, DEFAULT_PLATFORM_INDEX),
            function: index(FUNCTION_INDEX_VAR, DEFAULT_FUNCTION_INDEX),
            extension: index(EXTENSION_INDEX_VAR, DEFAULT_EXTENSION_INDEX),
        };
        let config = Self {
            url,
            min_batch_events,
            indices,
            auth_secret: get(AUTH_SECRET_VAR),
            dispatch_timeout: Duration::from_millis(timeout_ms as u64),
            queue_max_events,
            function_name: get(FUNCTION_NAME_VAR),
            function_version: get(FUNCTION_VERSION_VAR),
            runtime_api: get(RUNTIME_API_VAR),
            region: get(REGION_VAR),
        };
        (config, warnings)
    }
}

/// `value` as an endpoint (`http` or `https`, with a host, no query), without trailing `/`.
fn endpoint(value: &str) -> Option<String> {
    let uri: http::Uri = value.parse().ok()?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri.host().is_some_and(|host| !host.is_empty());
    (scheme_ok && host_ok && uri.query().is_none()).then(|| value.trim_end_matches('/').to_owned())
}

/// Whether `prefix` can start an index name: OpenSearch's rules (lowercase, none of
/// `\ / * ? " < > | , # :` or a space, not starting with `_ - +`), and short enough for the date.
fn valid_index_prefix(prefix: &str) -> bool {
    const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':', ' '];
    !prefix.is_empty()
        && prefix.len() <= 200
        && !prefix.starts_with(['_', '-', '+'])
        && prefix != "."
        && prefix != ".."
        && !prefix.contains(FORBIDDEN)
        && !prefix.chars().any(|c| c.is_uppercase() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn nothing_set_is_the_defaults_and_no_url() {
        let (config, warnings) = config(&[]);
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let (config, warnings) = config(&[
            (URL_VAR, "https://search-x.us-east-1.es.amazonaws.com/"),
            (MIN_BATCH_VAR, "5"),
            (PLATFORM_INDEX_VAR, "p"),
            (FUNCTION_INDEX_VAR, "f"),
            (EXTENSION_INDEX_VAR, "e"),
            (AUTH_SECRET_VAR, "opensearch/master"),
            (DISPATCH_TIMEOUT_VAR, "250"),
            (QUEUE_MAX_EVENTS_VAR, "99"),
            (FUNCTION_NAME_VAR, "order"),
            (RUNTIME_API_VAR, "127.0.0.1:9001"),
            (REGION_VAR, "eu-west-1"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.url.as_deref(),
            Some("https://search-x.us-east-1.es.amazonaws.com")
        );
        assert_eq!(config.min_batch_events, 5);
        assert_eq!(
            config.indices,
            Indices {
                platform: "p".into(),
                function: "f".into(),
                extension: "e".into()
            }
        );
        assert_eq!(config.auth_secret.as_deref(), Some("opensearch/master"));
        assert_eq!(config.dispatch_timeout, Duration::from_millis(250));
        assert_eq!(config.queue_max_events, 99);
        assert_eq!(config.function_name.as_deref(), Some("order"));
        assert_eq!(config.runtime_api.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn invalid_values_fall_back_to_defaults_with_one_line_each() {
        let cases: &[(&str, &str)] = &[
            (URL_VAR, "search-x.amazonaws.com"),
            (URL_VAR, "ftp://host"),
            (URL_VAR, "http://host/?a=1"),
            (MIN_BATCH_VAR, "fifty"),
            (MIN_BATCH_VAR, "0"),
            (MIN_BATCH_VAR, "-3"),
            (DISPATCH_TIMEOUT_VAR, "1s"),
            (QUEUE_MAX_EVENTS_VAR, "1e4"),
            (PLATFORM_INDEX_VAR, "Lambda"),
            (FUNCTION_INDEX_VAR, "_hidden"),
            (EXTENSION_INDEX_VAR, "a,b"),
            (EXTENSION_INDEX_VAR, "a b"),
        ];
        for (name, value) in cases {
            let (config, warnings) = config(&[(name, value)]);
            assert_eq!(config, Config::default(), "{name}={value}");
            assert_eq!(warnings.len(), 1, "{name}={value}");
            assert!(warnings[0].starts_with(name), "{}", warnings[0]);
        }
    }

    #[test]
    fn empty_values_are_unset() {
        let (config, warnings) =
            config(&[(URL_VAR, " "), (AUTH_SECRET_VAR, ""), (MIN_BATCH_VAR, "")]);
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
    }
}
