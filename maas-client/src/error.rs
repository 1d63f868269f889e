//! The one error type of the client, split the way callers must react to it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::operation::Operation;

/// Why a MAAS call failed.
///
/// The variants follow what a controller does next: `NotFound` (the machine is gone: a failure
/// condition), `Conflict` (a business refusal such as no matching machine: wait for a change),
/// `Retryable` (try again soon; the client already did within its bounds), `BadRequest` (our
/// request is wrong: a terminal error with MAAS's field messages), auth errors (fix the
/// credentials), and the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaasError {
    /// The configuration is unusable (endpoint, API key format, CA bundle).
    #[error("invalid MAAS client configuration: {0}")]
    Config(String),
    /// 404: the object does not exist (or is not visible to this user).
    #[error("MAAS {op}: not found: {message}")]
    NotFound {
        /// The operation that failed.
        op: Operation,
        /// MAAS's text, e.g. `No Machine matches the given query.`
        message: String,
    },
    /// 409 without `Retry-After`: MAAS refuses for a business reason (no machine matches the
    /// constraints, wrong state for the action). Retrying the same call will not help.
    #[error("MAAS {op}: conflict: {message}")]
    Conflict {
        /// The operation that failed.
        op: Operation,
        /// MAAS's text, e.g. `No available machine matches constraints: ...`
        message: String,
    },
    /// A transient failure: 409 or 503 with `Retry-After`, 503 without it, a connection error
    /// or a timeout. Returned once the retry bounds are used up.
    #[error("MAAS {op}: temporarily unavailable: {reason}{}", retry_hint(*.retry_after))]
    Retryable {
        /// The operation that failed.
        op: Operation,
        /// What happened (status and text, or the transport failure).
        reason: String,
        /// How long MAAS asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// A non-idempotent call (allocate, deploy, release, ...) whose request may have reached MAAS
    /// but whose answer never arrived (timeout, connection lost after sending, a 5xx without
    /// `Retry-After`). MAAS may have acted: the client does not resend it, the caller looks.
    #[error("MAAS {op}: outcome unknown (MAAS may have acted; look before acting again): {reason}")]
    OutcomeUnknown {
        /// The operation whose outcome is unknown.
        op: Operation,
        /// What happened to the answer.
        reason: String,
    },
    /// 400: MAAS rejected a parameter.
    #[error("MAAS {op}: bad request: {message}")]
    BadRequest {
        /// The operation that failed.
        op: Operation,
        /// The body as text (for a JSON body, the field messages joined).
        message: String,
        /// Field name to messages, when MAAS answered with its JSON form errors.
        fields: BTreeMap<String, Vec<String>>,
    },
    /// 401: the API key is unknown, or the request signature was refused.
    #[error("MAAS {op}: unauthorized: {message}")]
    Unauthorized {
        /// The operation that failed.
        op: Operation,
        /// MAAS's text, e.g. `Authorization Error: Invalid API key.`
        message: String,
    },
    /// 403: the key is valid but this user may not do this.
    #[error("MAAS {op}: forbidden: {message}")]
    Forbidden {
        /// The operation that failed.
        op: Operation,
        /// MAAS's text.
        message: String,
    },
    /// Any other status.
    #[error("MAAS {op}: unexpected HTTP {status}: {body}")]
    Unexpected {
        /// The operation that failed.
        op: Operation,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// A success response whose body did not decode into the expected type.
    #[error("MAAS {op}: cannot decode the response: {message}")]
    Decode {
        /// The operation that failed.
        op: Operation,
        /// The decoder's message (position and expectation; never the body itself).
        message: String,
    },
    /// MAAS's TLS certificate was refused (unknown issuer, expired, another host's name): the
    /// CA bundle or the endpoint is wrong. Retrying will not help; no request was sent.
    #[error(
        "MAAS {op}: MAAS's TLS certificate is not trusted (set the MAAS CA bundle or fix the endpoint): {message}"
    )]
    UntrustedCertificate {
        /// The operation that failed.
        op: Operation,
        /// The transport's message, with the TLS library's reason.
        message: String,
    },
    /// A transport failure that retrying will not fix (e.g. an invalid request).
    #[error("MAAS {op}: HTTP transport error: {message}")]
    Transport {
        /// The operation that failed.
        op: Operation,
        /// The transport's message.
        message: String,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {} s)", d.as_secs_f64()))
        .unwrap_or_default()
}

impl MaasError {
    /// Whether the same call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MaasError::Retryable { .. })
    }

    /// The class of the failure, for callers that decide what to do next: unlike the error
    /// itself, the class is an exhaustive enum, so a new class is a compile error at every
    /// caller instead of a silent fallback.
    pub fn class(&self) -> MaasErrorClass {
        match self {
            MaasError::Config(_) => MaasErrorClass::Config,
            MaasError::NotFound { .. } => MaasErrorClass::NotFound,
            MaasError::Conflict { .. } => MaasErrorClass::Conflict,
            MaasError::Retryable { .. } => MaasErrorClass::Retryable,
            MaasError::OutcomeUnknown { .. } => MaasErrorClass::OutcomeUnknown,
            MaasError::BadRequest { .. } => MaasErrorClass::BadRequest,
            MaasError::Unauthorized { .. } => MaasErrorClass::Unauthorized,
            MaasError::Forbidden { .. } => MaasErrorClass::Forbidden,
            MaasError::Unexpected { .. } => MaasErrorClass::Unexpected,
            MaasError::Decode { .. } => MaasErrorClass::Decode,
            MaasError::Transport { .. } => MaasErrorClass::Transport,
            MaasError::UntrustedCertificate { .. } => MaasErrorClass::Config,
        }
    }

    /// A stable short label for metrics, events and condition reasons.
    pub fn kind(&self) -> &'static str {
        self.class().as_str()
    }

    /// The operation that failed, where there was one.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            MaasError::Config(_) => None,
            MaasError::NotFound { op, .. }
            | MaasError::Conflict { op, .. }
            | MaasError::Retryable { op, .. }
            | MaasError::OutcomeUnknown { op, .. }
            | MaasError::BadRequest { op, .. }
            | MaasError::Unauthorized { op, .. }
            | MaasError::Forbidden { op, .. }
            | MaasError::Unexpected { op, .. }
            | MaasError::Decode { op, .. }
            | MaasError::Transport { op, .. }
            | MaasError::UntrustedCertificate { op, .. } => Some(*op),
        }
    }

    /// The delay MAAS asked for, when this is a retryable error that carried `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            MaasError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The classes of [`MaasError`], one per variant, matched exhaustively by callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaasErrorClass {
    /// The client configuration is unusable (endpoint, key format, a CA that does not sign
    /// MAAS's certificate).
    Config,
    /// 404.
    NotFound,
    /// 409 without `Retry-After`: a business refusal.
    Conflict,
    /// Transient: 409/503 with `Retry-After`, 503, connection errors, timeouts.
    Retryable,
    /// A non-idempotent call that may or may not have been applied.
    OutcomeUnknown,
    /// 400.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// Any other HTTP status.
    Unexpected,
    /// A success body that did not decode.
    Decode,
    /// A transport failure retrying will not fix.
    Transport,
}

impl MaasErrorClass {
    /// The stable label (`not_found`, `retryable`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MaasErrorClass::Config => "config",
            MaasErrorClass::NotFound => "not_found",
            MaasErrorClass::Conflict => "conflict",
            MaasErrorClass::Retryable => "retryable",
            MaasErrorClass::OutcomeUnknown => "outcome_unknown",
            MaasErrorClass::BadRequest => "bad_request",
            MaasErrorClass::Unauthorized => "unauthorized",
            MaasErrorClass::Forbidden => "forbidden",
            MaasErrorClass::Unexpected => "unexpected",
            MaasErrorClass::Decode => "decode",
            MaasErrorClass::Transport => "transport",
        }
    }
}
