//! How requests to OpenSearch are authenticated: SigV4 for service `es` with the function's own
//! credentials (IAM-only domains, the default), or HTTP basic with a user and password kept in a
//! Secrets Manager secret (`AUTH_SECRET`, fine-grained access control's internal users).
//!
//! Nothing here runs at start: the secret is fetched on the first request (the first flush, long
//! after registration) and cached, so a Secrets Manager outage can never fail the function's init,
//! as the Python sample's import-time call does. A failed fetch is not cached: the next request
//! tries again. The source of the secret is the [`SecretSource`] trait, so tests give a fake.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue};
use lattice_xray::credentials::CachedCredentials;
use lattice_xray::signing::sign_for_opensearch;
use serde::Deserialize;

use crate::say::OnceLog;

/// A boxed future that can cross threads (what the traits here return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a secret's `SecretString` comes from.
pub trait SecretSource: Send + Sync {
    /// The `SecretString` of `secret_id`, or why not (never containing the secret).
    fn secret_string<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<String, String>>;
}

/// AWS Secrets Manager, with the standard configuration chain (so `AWS_ENDPOINT_URL_SECRETS_MANAGER`
/// and `AWS_ENDPOINT_URL` are honoured); the client is built on the first fetch.
#[derive(Default)]
pub struct SecretsManager {
    client: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
}

impl SecretsManager {
    /// A source that has not built its client yet.
    pub fn new() -> Self {
        Self::default()
    }

    async fn fetch(&self, secret_id: &str) -> Result<String, String> {
        let client = self
            .client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_secretsmanager::Client::new(&config)
            })
            .await;
        let answer = client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
        answer
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| "the secret has no SecretString".to_owned())
    }
}

impl SecretSource for SecretsManager {
    fn secret_string<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.fetch(secret_id))
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The secret could not be fetched.
    #[error("secret {secret_id}: {reason}")]
    SecretUnavailable {
        /// The secret's id.
        secret_id: String,
        /// Why.
        reason: String,
    },
    /// The secret is not `{"username":…,"password":…}`.
    #[error("secret {0}: SecretString is not {{\"username\":…,\"password\":…}}")]
    SecretMalformed(String),
}

/// HTTP basic from a secret, fetched once.
pub struct BasicFromSecret {
    secret_id: String,
    source: Arc<dyn SecretSource>,
    header: tokio::sync::Mutex<Option<HeaderValue>>,
}

impl BasicFromSecret {
    /// Basic auth from `secret_id` in `source`, fetched on first use.
    pub fn new(secret_id: impl Into<String>, source: Arc<dyn SecretSource>) -> Self {
        Self {
            secret_id: secret_id.into(),
            source,
            header: tokio::sync::Mutex::new(None),
        }
    }

    async fn header(&self) -> Result<HeaderValue, AuthError> {
        let mut cached = self.header.lock().await;
        if let Some(value) = cached.as_ref() {
            return Ok(value.clone());
        }
        let secret = self
            .source
            .secret_string(&self.secret_id)
            .await
            .map_err(|reason| AuthError::SecretUnavailable {
                secret_id: self.secret_id.clone(),
                reason,
            })?;
        let value = basic_header(&secret)
            .ok_or_else(|| AuthError::SecretMalformed(self.secret_id.clone()))?;
        *cached = Some(value.clone());
        Ok(value)
    }
}

/// SigV4 for `es` with the environment's credentials (cached until near their expiry).
pub struct SigV4 {
    credentials: CachedCredentials,
    region: Option<String>,
}

impl SigV4 {
    /// Signing with `credentials` for `region`.
    pub fn new(
        credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
        region: Option<String>,
    ) -> Self {
        Self {
            credentials: CachedCredentials::new(credentials),
            region,
        }
    }

    /// Signing with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn from_environment(region: Option<String>) -> Self {
        Self::new(EnvironmentVariableCredentialsProvider::new(), region)
    }
}

/// How requests are authenticated.
pub enum Auth {
    /// Not at all (tests, open local engines).
    None,
    /// HTTP basic from a secret.
    Basic(BasicFromSecret),
    /// SigV4 (`es`).
    SigV4(SigV4),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "Auth::None",
            Self::Basic(_) => "Auth::Basic",
            Self::SigV4(_) => "Auth::SigV4",
        })
    }
}

impl Auth {
    /// Authenticates `request` (which carries its `host`; `body` is its body). SigV4 without
    /// credentials or region sends the request unsigned (the domain's answer says the rest) and
    /// says so once in `log`.
    pub async fn apply(
        &self,
        request: &mut http::Request<Bytes>,
        log: &OnceLog,
    ) -> Result<(), AuthError> {
        match self {
            Self::None => Ok(()),
            Self::Basic(basic) => {
                let value = basic.header().await?;
                request.headers_mut().insert(header::AUTHORIZATION, value);
                Ok(())
            }
            Self::SigV4(sigv4) => {
                sign(sigv4, request, log).await;
                Ok(())
            }
        }
    }
}

async fn sign(sigv4: &SigV4, request: &mut http::Request<Bytes>, log: &OnceLog) {
    let Some(region) = sigv4.region.as_deref() else {
        log.once(
            "sigv4 region",
            "AWS_REGION is not set: requests go unsigned",
        );
        return;
    };
    let credentials = match sigv4.credentials.credentials().await {
        Ok(credentials) => credentials,
        Err(error) => {
            log.once(
                "sigv4 credentials",
                format!("no AWS credentials ({error}): requests go unsigned"),
            );
            return;
        }
    };
    let identity = Identity::from(credentials);
    let body = request.body().clone();
    if let Err(error) = sign_for_opensearch(request, &body, &identity, region, SystemTime::now()) {
        log.once(
            "sigv4 signing",
            format!("SigV4 signing failed ({error}): request goes unsigned"),
        );
    }
}

#[derive(Deserialize)]
struct UserPassword {
    username: String,
    password: String,
}

/// The `Authorization` value for a secret `{"username":…,"password":…}` (marked sensitive).
pub fn basic_header(secret: &str) -> Option<HeaderValue> {
    let user: UserPassword = serde_json::from_str(secret).ok()?;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", user.username, user.password));
    let mut value = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers `secrets[call]` (the last one for ever after), counting calls.
    struct Scripted {
        answers: Vec<Result<String, String>>,
        calls: AtomicU32,
    }

    impl SecretSource for Scripted {
        fn secret_string<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, String>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let answer = self.answers[n.min(self.answers.len() - 1)].clone();
            Box::pin(async move { answer })
        }
    }

    fn request() -> http::Request<Bytes> {
        http::Request::builder()
            .uri("https://search.example/_bulk")
            .header(header::HOST, "search.example")
            .body(Bytes::from_static(b"{}\n"))
            .unwrap()
    }

    #[test]
    fn the_secret_becomes_a_basic_header() {
        let value = basic_header(r#"{"username":"admin","password":"s3cret!"}"#).unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWRtaW46czNjcmV0IQ==");
        assert!(value.is_sensitive());
        assert!(basic_header(r#"{"user":"admin"}"#).is_none());
        assert!(basic_header("admin:secret").is_none());
    }

    #[tokio::test]
    async fn the_secret_is_fetched_once_and_a_failure_is_tried_again() {
        let source = Arc::new(Scripted {
            answers: vec![
                Err("throttled".into()),
                Ok(r#"{"username":"u","password":"p"}"#.into()),
            ],
            calls: AtomicU32::new(0),
        });
        let auth = Auth::Basic(BasicFromSecret::new("os/creds", source.clone()));
        let log = OnceLog::new();
        let mut first = request();
        let failed = auth.apply(&mut first, &log).await;
        assert_eq!(
            failed,
            Err(AuthError::SecretUnavailable {
                secret_id: "os/creds".into(),
                reason: "throttled".into()
            })
        );
        for _ in 0..3 {
            let mut next = request();
            auth.apply(&mut next, &log).await.unwrap();
            assert_eq!(next.headers()[header::AUTHORIZATION], "Basic dTpw");
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn sigv4_signs_with_the_given_credentials() {
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let auth = Auth::SigV4(SigV4::new(credentials, Some("us-east-1".into())));
        let mut signed = request();
        auth.apply(&mut signed, &OnceLog::new()).await.unwrap();
        let authorization = signed.headers()[header::AUTHORIZATION].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(authorization.contains("/us-east-1/es/aws4_request"));
        assert!(signed.headers().contains_key("x-amz-content-sha256"));
    }

    #[tokio::test]
    async fn sigv4_without_a_region_sends_unsigned_and_says_so_once() {
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let auth = Auth::SigV4(SigV4::new(credentials, None));
        let log = OnceLog::new();
        let mut unsigned = request();
        auth.apply(&mut unsigned, &log).await.unwrap();
        auth.apply(&mut request(), &log).await.unwrap();
        assert!(!unsigned.headers().contains_key(header::AUTHORIZATION));
        assert_eq!(log.kinds(), ["sigv4 region"]);
    }
}
