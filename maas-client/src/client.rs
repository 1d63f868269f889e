//! The HTTP side of the client: building, signing, sending and retrying MAAS requests.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{ApiKey, authorization_header};
use crate::classify::classify_failure;
use crate::config::{MaasConfig, RetryConfig, TlsConfig};
use crate::endpoint::normalize_endpoint;
use crate::error::MaasError;
use crate::observer::{NoopObserver, RequestObserver, SharedObserver};
use crate::operation::Operation;
use crate::params::Pairs;
use crate::retry::{backoff, next_delay};

/// A typed async client for one MAAS region (API 2.0).
///
/// Cheap to clone (shared connection pool); all methods take `&self` and their futures are
/// `Send`, so one client serves every reconciler task. The operations are the methods of
/// [`crate::MaasApi`].
#[derive(Clone)]
pub struct MaasClient {
    inner: Arc<Inner>,
    observer: SharedObserver,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    retry: RetryConfig,
}

impl std::fmt::Debug for MaasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaasClient")
            .field("base", &self.inner.base.as_str())
            .field("key", &self.inner.key)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One logical MAAS call, before signing.
pub(crate) struct Call {
    pub(crate) op: Operation,
    pub(crate) method: Method,
    /// Path segments under the API base, e.g. `["machines", "abc123"]`; a trailing slash is
    /// always added.
    pub(crate) segments: Vec<String>,
    /// The MAAS `op` query parameter.
    pub(crate) api_op: Option<&'static str>,
    pub(crate) query: Pairs,
    /// Form body; `None` sends no body.
    pub(crate) form: Option<Pairs>,
}

impl Call {
    pub(crate) fn new(op: Operation, method: Method, segments: &[&str]) -> Self {
        Self {
            op,
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            api_op: None,
            query: Pairs::new(),
            form: None,
        }
    }

    pub(crate) fn api_op(mut self, api_op: &'static str) -> Self {
        self.api_op = Some(api_op);
        self
    }

    pub(crate) fn query(mut self, query: Pairs) -> Self {
        self.query = query;
        self
    }

    pub(crate) fn form(mut self, form: Pairs) -> Self {
        self.form = Some(form);
        self
    }
}

impl MaasClient {
    /// Builds a client: normalises the endpoint, parses the API key (a malformed key is refused
    /// here, with a message that states the format), reads the CA bundle and sets timeouts.
    pub fn new(config: MaasConfig) -> Result<Self, MaasError> {
        let base = normalize_endpoint(&config.endpoint)?;
        let key = ApiKey::parse(&config.api_key)?;
        let http = build_http(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                key,
                retry: config.retry,
            }),
            observer: Arc::new(NoopObserver),
        })
    }

    /// Sets the hook that sees every HTTP attempt (for the `capmaas_maas_requests_total` metric).
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The normalised API base, e.g. `http://maas:5240/MAAS/api/2.0/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The URL of a call: base, escaped segments, trailing slash, then `op` first in the query.
    pub(crate) fn url_for(&self, call: &Call) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(call.segments.iter());
            path.push("");
        }
        if call.api_op.is_some() || !call.query.is_empty() {
            let mut query = url.query_pairs_mut();
            if let Some(api_op) = call.api_op {
                query.append_pair("op", api_op);
            }
            for (key, value) in &call.query {
                query.append_pair(key, value);
            }
        }
        url
    }

    /// Runs a call (with retries) and decodes its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, MaasError> {
        let op = call.op;
        let body = self.execute(call).await?;
        serde_json::from_slice(&body).map_err(|err| MaasError::Decode {
            op,
            message: err.to_string(),
        })
    }

    /// Runs a call with retries for retryable failures, within the configured bounds. Every
    /// attempt is signed anew, so each carries a fresh nonce and timestamp.
    pub(crate) async fn execute(&self, call: Call) -> Result<Vec<u8>, MaasError> {
        let retry = self.inner.retry.clone();
        let mut slept = Duration::ZERO;
        let call = &call;
        (|| self.attempt(call))
            .retry(backoff(&retry))
            .when(MaasError::is_retryable)
            .adjust(|err, scheduled| {
                let delay = next_delay(err, scheduled, slept, &retry);
                if let Some(delay) = delay {
                    slept = slept.saturating_add(delay);
                }
                delay
            })
            .notify(|err, delay| {
                tracing::debug!(
                    op = call.op.as_str(),
                    kind = err.kind(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "retrying MAAS request"
                );
            })
            .await
    }

    /// One signed HTTP attempt.
    async fn attempt(&self, call: &Call) -> Result<Vec<u8>, MaasError> {
        let url = self.url_for(call);
        let auth = authorization_header(&self.inner.key);
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(form) = &call.form {
            request = request.form(form);
        }
        let started = Instant::now();
        let result = send(request).await;
        let took = started.elapsed();
        let elapsed_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok((status, retry_after, body)) => {
                self.observer.observe_timed(call.op, status.as_str(), took);
                tracing::debug!(
                    op = call.op.as_str(),
                    method = call.method.as_str(),
                    status = status.as_u16(),
                    elapsed_ms,
                    "MAAS request"
                );
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(classify_failure(
                        call.op,
                        status.as_u16(),
                        retry_after.as_deref(),
                        &body,
                    ))
                }
            }
            Err(err) => {
                let (outcome, error) = transport_failure(call.op, &err);
                self.observer.observe_timed(call.op, outcome, took);
                tracing::debug!(
                    op = call.op.as_str(),
                    method = call.method.as_str(),
                    outcome,
                    elapsed_ms,
                    "MAAS request failed"
                );
                Err(error)
            }
        }
    }
}

/// Sends the request and reads the whole body, so a timeout covers both.
async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Option<String>, Vec<u8>), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?.to_vec();
    Ok((status, retry_after, body))
}

/// Classifies a transport failure: timeouts and connection or stream failures are retryable,
/// errors in building the request are not, and a non-idempotent call that may have reached
/// MAAS has an unknown outcome (never resent). Returns the metric outcome with the error.
fn transport_failure(op: Operation, err: &reqwest::Error) -> (&'static str, MaasError) {
    let message = error_chain(err);
    if err.is_builder() || err.is_redirect() {
        return ("transport_error", MaasError::Transport { op, message });
    }
    if is_untrusted_certificate(&message) {
        // No request left: a certificate nobody trusts stays untrusted however often we ask.
        return ("tls_error", MaasError::UntrustedCertificate { op, message });
    }
    let outcome = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect_error"
    } else {
        "transport_error"
    };
    // A connection that never opened carried no request; anything later may have reached MAAS.
    if op.is_non_idempotent() && !err.is_connect() {
        return (
            outcome,
            MaasError::OutcomeUnknown {
                op,
                reason: message,
            },
        );
    }
    (
        outcome,
        MaasError::Retryable {
            op,
            reason: message,
            retry_after: None,
        },
    )
}

/// Whether a transport failure is MAAS's TLS certificate being refused: rustls names every
/// certificate it refuses `invalid peer certificate` (unknown issuer, expired, wrong name). The
/// type itself sits behind an `io::Error` whose `source` skips it, so the text is what is left.
fn is_untrusted_certificate(chain: &str) -> bool {
    chain.contains("invalid peer certificate")
}

/// The error and its sources on one line (reqwest's own message hides the root cause).
fn error_chain(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// How long an idle connection to MAAS is kept for reuse: well under the 65 s after which
/// MAAS's nginx front end closes it.
const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

fn build_http(config: &MaasConfig) -> Result<reqwest::Client, MaasError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        // MAAS answers a missing trailing slash with a redirect that drops POST bodies; we always
        // send the slash, and a redirect surfaces as an error instead of a silent loss.
        .redirect(reqwest::redirect::Policy::none())
        // MAAS's front end closes idle connections after 65 s; dropping ours first means a call
        // never goes out on a connection the server is closing (which, for a non-idempotent
        // call, would leave its outcome unknown).
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("capmaas-maas-client/", env!("CARGO_PKG_VERSION")));
    builder = apply_tls(builder, &config.tls)?;
    builder
        .build()
        .map_err(|err| MaasError::Config(format!("cannot build the HTTP client: {err}")))
}

fn apply_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, MaasError> {
    if let Some(pem) = &tls.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
            MaasError::Config(format!("the MAAS CA bundle is not valid PEM: {err}"))
        })?;
        if certs.is_empty() {
            return Err(MaasError::Config(
                "the MAAS CA bundle contains no certificate".to_owned(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if tls.insecure_skip_verify {
        tracing::warn!("MAAS TLS certificate verification is disabled");
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::is_untrusted_certificate;

    #[test]
    fn a_refused_certificate_is_told_from_a_network_failure() {
        // The chain reqwest gives for a certificate from a CA the client does not trust.
        let untrusted = "error sending request for url (https://maas.test/MAAS/api/2.0/): \
                         client error (Connect): invalid peer certificate: UnknownIssuer";
        assert!(is_untrusted_certificate(untrusted));
        let refused = "error sending request for url (http://maas.test/MAAS/api/2.0/): \
                       client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert!(!is_untrusted_certificate(refused));
    }
}
