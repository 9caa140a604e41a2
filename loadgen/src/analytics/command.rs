//! `loadgen analytics`: from the options to an endpoint, its authentication and a time window,
//! then either `--setup` or the dashboard printed as text or JSON.
//!
//! The endpoint is `--endpoint`, or a running local stack's `state.json` (`--local`,
//! `--state-dir`). Authentication follows where it points: `--basic-auth` when given; for a
//! local stack what its `search.auth` says (SigV4 with the stack's loadgen key when it requires
//! SigV4); otherwise SigV4 (`es`, standard AWS credential chain) for any endpoint that is not
//! loopback or with `--sigv4`, and nothing for a loopback engine.

use std::path::Path;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use local_stack::lattice::credentials::CredentialsFile;
use local_stack::stack::StackState;

use super::query::Window;
use super::{render_text, AnalyticsClient, AnalyticsError, SearchAuth};
use crate::cli::AnalyticsArgs;

/// The window when neither `--since` nor `--from` is given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3600);

/// Runs `loadgen analytics`.
pub async fn run(args: &AnalyticsArgs) -> Result<(), AnalyticsError> {
    let client = connect(args).await?;
    if args.setup {
        let telemetry_roles: Vec<&str> =
            args.telemetry_role_arn.iter().map(String::as_str).collect();
        for line in client
            .setup(args.firehose_role_arn.as_deref(), &telemetry_roles)
            .await?
        {
            println!("{line}");
        }
        return Ok(());
    }
    let window = window(args, Utc::now())?;
    let answers = client.dashboard(&args.index, &window, args.top).await?;
    if args.json {
        let json =
            serde_json::to_string_pretty(&answers).map_err(|e| AnalyticsError::BadAnswer {
                what: "dashboard".to_owned(),
                detail: e.to_string(),
            })?;
        println!("{json}");
    } else {
        print!("{}", render_text(&answers));
    }
    Ok(())
}

/// The window the options describe, `now` standing for "now".
pub fn window(args: &AnalyticsArgs, now: DateTime<Utc>) -> Result<Window, AnalyticsError> {
    let to = args.to.unwrap_or(now);
    let window = match args.from {
        Some(from) => Window::between(from, to)?,
        None => Window::last(args.since.unwrap_or(DEFAULT_SINCE), to)?,
    };
    Ok(match args.interval {
        Some(interval) => window.with_interval(interval),
        None => window,
    })
}

/// How a request is to be authenticated, before credentials are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AuthChoice {
    /// No authentication.
    Anonymous,
    Basic(String, String),
    /// SigV4 with the standard AWS credential chain.
    AwsChain,
    /// SigV4 with the local stack's loadgen key.
    LocalKey,
}

/// The choice for `endpoint`; `local_auth` is a local stack's `search.auth`.
fn choose_auth(
    sigv4: bool,
    basic: Option<&str>,
    endpoint: &str,
    local_auth: Option<&str>,
) -> Result<AuthChoice, AnalyticsError> {
    if let Some(text) = basic {
        let (user, password) = text
            .split_once(':')
            .filter(|(user, password)| !user.is_empty() && !password.is_empty())
            .ok_or(AnalyticsError::BadBasicAuth)?;
        return Ok(AuthChoice::Basic(user.to_owned(), password.to_owned()));
    }
    Ok(match local_auth {
        Some("basic") => {
            return Err(AnalyticsError::LocalStack(
                "its search engine requires HTTP basic auth: pass --basic-auth USER:PASSWORD \
                 (the one given to local-stack up --search-basic-auth)"
                    .to_owned(),
            ))
        }
        Some(auth) if sigv4 || auth.contains("sigv4") => AuthChoice::LocalKey,
        Some(_) => AuthChoice::Anonymous,
        None if sigv4 || !is_loopback(endpoint) => AuthChoice::AwsChain,
        None => AuthChoice::Anonymous,
    })
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(endpoint: &str) -> bool {
    let Some(host) = endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Region in an OpenSearch Service endpoint's host (`search-NAME-ID.REGION.es.amazonaws.com`).
pub fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let labels: Vec<&str> = uri.host()?.split('.').collect();
    let es = labels.iter().position(|label| *label == "es")?;
    let tail = &labels[es + 1..];
    let aws = tail.first() == Some(&"amazonaws") && matches!(tail.get(1), Some(&"com"));
    (aws && es >= 2).then(|| labels[es - 1].to_owned())
}

/// The client the options describe.
async fn connect(args: &AnalyticsArgs) -> Result<AnalyticsClient, AnalyticsError> {
    let (endpoint, state) = match &args.endpoint {
        Some(endpoint) => (endpoint.clone(), None),
        None => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(local_stack::cli::default_state_dir);
            let state = load_state(&dir)?;
            (state.search.url.clone(), Some(state))
        }
    };
    let local_auth = state.as_ref().map(|s| s.search.auth.as_str());
    let choice = choose_auth(
        args.sigv4,
        args.basic_auth.as_deref(),
        &endpoint,
        local_auth,
    )?;
    let auth = match (choice, &state) {
        (AuthChoice::Anonymous, _) => SearchAuth::None,
        (AuthChoice::Basic(user, password), _) => SearchAuth::Basic { user, password },
        (AuthChoice::LocalKey, Some(state)) => local_key(state)?,
        (AuthChoice::AwsChain | AuthChoice::LocalKey, _) => {
            aws_chain(args.region.as_deref(), &endpoint).await?
        }
    };
    Ok(AnalyticsClient::new(&endpoint, auth)?.with_timeout(args.timeout))
}

fn load_state(dir: &Path) -> Result<StackState, AnalyticsError> {
    StackState::load(dir).map_err(|e| {
        AnalyticsError::LocalStack(format!(
            "{e} (is `local-stack up` running with --state-dir {}?)",
            dir.display()
        ))
    })
}

fn local_key(state: &StackState) -> Result<SearchAuth, AnalyticsError> {
    let file = CredentialsFile::load(&state.credentials_file)
        .map_err(|e| AnalyticsError::LocalStack(e.to_string()))?;
    let key = file.key_of(&state.loadgen_principal).ok_or_else(|| {
        AnalyticsError::LocalStack(format!("no key for {}", state.loadgen_principal))
    })?;
    let credentials = Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "local-stack",
    );
    Ok(SearchAuth::SigV4 {
        credentials: SharedCredentialsProvider::new(credentials),
        region: state.region.clone(),
    })
}

/// SigV4 from the standard AWS chain, for `--region`, the endpoint's Region or the chain's.
async fn aws_chain(region: Option<&str>, endpoint: &str) -> Result<SearchAuth, AnalyticsError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let credentials = config.credentials_provider().ok_or_else(|| {
        AnalyticsError::Signing("no credentials provider in the AWS config chain".to_owned())
    })?;
    let region = region
        .map(str::to_owned)
        .or_else(|| region_of_endpoint(endpoint))
        .or_else(|| config.region().map(ToString::to_string))
        .ok_or_else(|| {
            AnalyticsError::Signing(format!("no Region for {endpoint}: pass --region"))
        })?;
    Ok(SearchAuth::SigV4 {
        credentials,
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(line: &[&str]) -> AnalyticsArgs {
        let cli = Cli::try_parse_from(["loadgen", "analytics"].iter().chain(line))
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match cli.command {
            Some(Command::Analytics(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_follows_the_endpoint() {
        use AuthChoice::*;
        let aws = "https://search-d-abc.us-east-1.es.amazonaws.com";
        let local = "http://127.0.0.1:9200";
        type Case<'a> = (bool, Option<&'a str>, &'a str, Option<&'a str>, AuthChoice);
        let table: [Case; 9] = [
            (false, None, aws, None, AwsChain),
            (false, None, local, None, Anonymous),
            (false, None, "http://localhost:9200", None, Anonymous),
            (true, None, local, None, AwsChain),
            (
                false,
                Some("u:p:w"),
                aws,
                None,
                Basic("u".into(), "p:w".into()),
            ),
            (false, None, local, Some("none"), Anonymous),
            (false, None, local, Some("sigv4"), LocalKey),
            (false, None, local, Some("basic or sigv4"), LocalKey),
            (true, None, local, Some("none"), LocalKey),
        ];
        for (sigv4, basic, endpoint, local_auth, expected) in table {
            let chosen = choose_auth(sigv4, basic, endpoint, local_auth).unwrap();
            assert_eq!(
                chosen, expected,
                "{sigv4} {basic:?} {endpoint} {local_auth:?}"
            );
        }
        assert!(choose_auth(false, None, local, Some("basic")).is_err());
        for bad in ["user", ":p", "u:"] {
            assert!(choose_auth(false, Some(bad), local, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_and_regions_are_read_from_endpoints() {
        let loopback = [
            ("http://127.0.0.1:9200", true),
            ("http://127.1.2.3", true),
            ("http://[::1]:9200", true),
            ("http://LOCALHOST:9200", true),
            ("https://search-d.us-east-1.es.amazonaws.com", false),
            ("http://10.0.0.1:9200", false),
            ("not a url", false),
        ];
        for (endpoint, expected) in loopback {
            assert_eq!(is_loopback(endpoint), expected, "{endpoint}");
        }
        let regions = [
            (
                "https://search-lattice-analytics-abc123.eu-west-1.es.amazonaws.com",
                Some("eu-west-1"),
            ),
            (
                "https://vpc-lattice-analytics-x.ap-southeast-2.es.amazonaws.com/",
                Some("ap-southeast-2"),
            ),
            ("https://search.example.com", None),
            ("https://es.amazonaws.com", None),
            ("http://127.0.0.1:9200", None),
        ];
        for (endpoint, expected) in regions {
            assert_eq!(
                region_of_endpoint(endpoint).as_deref(),
                expected,
                "{endpoint}"
            );
        }
    }

    #[test]
    fn windows_come_from_since_or_from_and_to() {
        let now = DateTime::parse_from_rfc3339("2024-08-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let shown = |w: Window| {
            (
                super::super::query::text(w.from),
                super::super::query::text(w.to),
                w.interval.to_string(),
            )
        };
        type Case<'a> = (&'a [&'a str], (&'a str, &'a str, &'a str));
        let table: [Case; 4] = [
            (
                &[],
                ("2024-08-04T11:00:00.000Z", "2024-08-04T12:00:00.000Z", "1m"),
            ),
            (
                &["--since", "15m", "--interval", "5m"],
                ("2024-08-04T11:45:00.000Z", "2024-08-04T12:00:00.000Z", "5m"),
            ),
            (
                &["--from", "2024-08-04T13:00:00+02:00"],
                ("2024-08-04T11:00:00.000Z", "2024-08-04T12:00:00.000Z", "1m"),
            ),
            (
                &["--since", "1d", "--to", "2024-08-05T00:00:00Z"],
                (
                    "2024-08-04T00:00:00.000Z",
                    "2024-08-05T00:00:00.000Z",
                    "30m",
                ),
            ),
        ];
        for (line, (from, to, interval)) in table {
            let mut full = vec!["--local"];
            full.extend_from_slice(line);
            let window = window(&args(&full), now).unwrap();
            assert_eq!(
                shown(window),
                (from.to_owned(), to.to_owned(), interval.to_owned()),
                "{line:?}"
            );
        }
        let reversed = args(&["--local", "--from", "2024-08-04T13:00:00Z"]);
        assert!(window(&reversed, now).is_err());
    }

    #[test]
    fn options_parse_and_refuse() {
        let parsed = args(&[
            "--endpoint",
            "https://d.example",
            "--top",
            "5",
            "--json",
            "--basic-auth",
            "a:b",
        ]);
        assert_eq!(
            (parsed.top, parsed.json, parsed.index.as_str()),
            (5, true, "lattice-access-*")
        );
        let setup = args(&[
            "--setup",
            "--endpoint",
            "https://d.example",
            "--firehose-role-arn",
            "arn:aws:iam::111122223333:role/f",
        ]);
        assert!(setup.setup);
        let refused: &[&[&str]] = &[
            &[],                                     // nowhere to ask
            &["--endpoint", "https://d", "--local"], // two places
            &["--local", "--since", "1h", "--from", "2024-08-04T11:00:00Z"],
            &["--local", "--from", "yesterday"],
            &["--local", "--interval", "0s"],
            &["--local", "--firehose-role-arn", "arn:aws:iam::1:role/f"], // without --setup
            &["--local", "--sigv4", "--basic-auth", "a:b"],
        ];
        for line in refused {
            let cli = Cli::try_parse_from(["loadgen", "analytics"].iter().chain(line.iter()));
            assert!(cli.is_err(), "{line:?} should be refused");
        }
    }
}
