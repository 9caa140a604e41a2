//! Credentials for signing by hand, fetched once and reused until shortly before they expire.
//!
//! An AWS SDK client caches the identity its provider returns (its `IdentityCache`), but that
//! cache runs inside the client's orchestrator and cannot be used on its own. Code that signs
//! requests itself — [`LatticeClient`](crate::lattice_client::LatticeClient), loadgen — would
//! otherwise ask the provider chain on every request: with a profile that assumes a role, that
//! is an STS call per request. [`CachedCredentials`] keeps what the provider returned and asks
//! again five minutes before the expiry, the SDKs' own default buffer, one caller at a time.

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

/// How long before their expiry credentials are fetched again.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// A provider's credentials, cached until [`REFRESH_BEFORE_EXPIRY`] before their expiry (for
/// ever when they have none, like the environment's).
#[derive(Debug)]
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl CachedCredentials {
    /// Caches what `provider` returns.
    pub fn new(provider: impl ProvideCredentials + 'static) -> Self {
        Self {
            provider: SharedCredentialsProvider::new(provider),
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn usable(&self, now: SystemTime) -> Option<Credentials> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|credentials| {
                credentials
                    .expiry()
                    .is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
            })
            .cloned()
    }

    /// The cached credentials, or new ones from the provider when they are missing or about to
    /// expire.
    pub async fn credentials(&self) -> provider::Result {
        if let Some(credentials) = self.usable(SystemTime::now()) {
            return Ok(credentials);
        }
        // One refresh at a time; whoever waited for it takes its result.
        let _refreshing = self.refreshing.lock().await;
        if let Some(credentials) = self.usable(SystemTime::now()) {
            return Ok(credentials);
        }
        let credentials = self.provider.provide_credentials().await?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(credentials.clone());
        Ok(credentials)
    }
}

impl ProvideCredentials for CachedCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.credentials())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Hands out `key-1`, `key-2`, … after 20 ms, expiring `lifetime` from then (never when
    /// `None`).
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Option<Duration>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let expiry = self.lifetime.map(|l| SystemTime::now() + l);
            provider::future::ProvideCredentials::new(async move {
                // Slow, like STS: callers arriving meanwhile must wait for this answer.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Credentials::new(
                    format!("key-{n}"),
                    "secret",
                    None,
                    expiry,
                    "counting",
                ))
            })
        }
    }

    fn cache(lifetime: Option<Duration>) -> (CachedCredentials, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let provider = Counting {
            calls: Arc::clone(&calls),
            lifetime,
        };
        (CachedCredentials::new(provider), calls)
    }

    #[tokio::test]
    async fn credentials_are_fetched_once_and_reused() {
        let (cached, calls) = cache(Some(Duration::from_secs(3600)));
        for _ in 0..100 {
            let credentials = cached.provide_credentials().await.unwrap();
            assert_eq!(credentials.access_key_id(), "key-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (forever, calls) = cache(None);
        forever.credentials().await.unwrap();
        forever.credentials().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_fetched_again() {
        // Four minutes left is inside the five-minute buffer: every call refreshes.
        let (cached, calls) = cache(Some(Duration::from_secs(240)));
        assert_eq!(cached.credentials().await.unwrap().access_key_id(), "key-1");
        assert_eq!(cached.credentials().await.unwrap().access_key_id(), "key-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_refresh() {
        let (cached, calls) = cache(Some(Duration::from_secs(3600)));
        let cached = Arc::new(cached);
        let callers: Vec<_> = (0..32)
            .map(|_| {
                let cached = Arc::clone(&cached);
                tokio::spawn(async move { cached.credentials().await.unwrap() })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().access_key_id(), "key-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
