//! What a [`crate::MaasClient`] needs to reach one MAAS: endpoint, key, timeouts, retries, TLS.

use std::fmt;
use std::time::Duration;

/// Everything needed to build a [`crate::MaasClient`].
///
/// Plain data so callers can fill it from flags, environment variables or a Secret; it is
/// validated (endpoint normalised, key parsed, CA bundle read) only when the client is built.
#[derive(Clone)]
pub struct MaasConfig {
    /// MAAS endpoint, e.g. `http://maas.example:5240/MAAS` (with or without trailing slash or the
    /// `/api/2.0/` suffix).
    pub endpoint: String,
    /// API key `consumer_key:token_key:token_secret`. Never printed by `Debug`.
    pub api_key: String,
    /// Upper bound for one HTTP attempt (connect, send, read the whole body).
    pub request_timeout: Duration,
    /// Upper bound for connecting, so an unreachable MAAS fails fast and is retried.
    pub connect_timeout: Duration,
    /// How retryable failures are retried.
    pub retry: RetryConfig,
    /// How the server certificate is checked.
    pub tls: TlsConfig,
}

impl MaasConfig {
    /// A configuration with the defaults: 30 s per request, 10 s to connect, the default retry
    /// bounds and TLS verification against the system roots.
    pub fn new(endpoint: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: api_key.into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
            tls: TlsConfig::default(),
        }
    }

    /// Replaces the per-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Replaces the retry bounds.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the TLS settings.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }
}

impl fmt::Debug for MaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaasConfig")
            .field("endpoint", &self.endpoint)
            .field("api_key", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Bounds for retrying requests that failed in a retryable way (see
/// [`crate::MaasError::is_retryable`]).
///
/// Both an attempt count and a total delay bound the loop, so a MAAS that keeps answering
/// `Retry-After` cannot hold a reconcile forever: once a bound is hit the retryable error is
/// returned and the caller requeues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first one included; 1 disables retries.
    pub max_attempts: u32,
    /// First backoff delay when MAAS gives no `Retry-After`.
    pub min_delay: Duration,
    /// Largest backoff delay when MAAS gives no `Retry-After`.
    pub max_delay: Duration,
    /// Largest sum of all delays slept for one call; a `Retry-After` that would pass it ends the
    /// retries at once.
    pub max_total_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_total_delay: Duration::from_secs(30),
        }
    }
}

impl RetryConfig {
    /// No retries at all: each call makes exactly one attempt.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// How the MAAS server certificate is verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM bundle of extra trusted CAs (a private MAAS CA), added to the system roots.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Skip certificate verification entirely. Only for labs; off unless set explicitly.
    pub insecure_skip_verify: bool,
}
