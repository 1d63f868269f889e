//! The reconcilers' error type, split into transient (retry soon) and terminal (wait for a
//! change), each with a stable label for metrics, events and condition reasons.

use std::time::Duration;

use maas_client::{MaasError, MaasErrorClass};

/// How soon a pass that lost a write race runs again.
pub const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// The stage of a pass that failed: reading the objects, a step against MAAS, a durable write of
/// the pass's progress, the status write, or the workload cluster's Node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the objects (and credentials) the facts are built from.
    Fetch,
    /// A step against MAAS.
    MaasStep,
    /// A durable write of the pass's progress (annotations, spec fields, finalizers).
    Store,
    /// The status write.
    Status,
    /// The workload cluster's Node.
    Node,
}

impl Stage {
    /// The label in messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::MaasStep => "MAAS step",
            Stage::Store => "store",
            Stage::Status => "status",
            Stage::Node => "node",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a reconcile pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A MAAS call failed.
    #[error("MAAS step: {0}")]
    Maas(#[from] MaasError),
    /// A Kubernetes call failed.
    #[error("{stage}: Kubernetes {action}: {source}")]
    Kube {
        /// The stage of the pass.
        stage: Stage,
        /// What we were doing.
        action: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A Kubernetes object we need is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// No MAAS credentials are configured for this object.
    #[error("no MAAS credentials: set MAAS_ENDPOINT and MAAS_API_KEY or an identity Secret")]
    MissingCredentials,
    /// The object's cluster was not found, so whose MAAS credentials apply is unknown: no MAAS
    /// call is made with a guess.
    #[error("MAAS credentials unknown: {0}; no MAAS call is made until it is back")]
    CredentialsUnknown(String),
    /// This replica's hold on the leader Lease ended: no further step of the pass starts.
    #[error("the hold on the leader Lease has ended; the pass stops before its next step")]
    NotLeader,
    /// The pass took more steps than any legitimate sequence needs.
    #[error("reconcile did not settle after {0} steps")]
    TooManySteps(usize),
}

impl ReconcileError {
    /// A Kubernetes error of `stage` while doing `action`, for `map_err`.
    pub fn kube(stage: Stage, action: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| ReconcileError::Kube {
            stage,
            action,
            source,
        }
    }

    /// The stage of the pass that failed.
    pub fn stage(&self) -> Stage {
        match self {
            ReconcileError::Maas(_)
            | ReconcileError::TooManySteps(_)
            | ReconcileError::NotLeader => Stage::MaasStep,
            ReconcileError::Kube { stage, .. } => *stage,
            ReconcileError::Invalid(_)
            | ReconcileError::MissingCredentials
            | ReconcileError::CredentialsUnknown(_) => Stage::Fetch,
        }
    }

    /// Whether a Kubernetes write lost a race with another writer (409): the object changed
    /// under us, the watch brings the new version, and a pass on it a moment later settles it.
    /// Nothing is wrong, so nothing is reported.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReconcileError::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }

    /// Whether retrying soon may help (unreachable MAAS, API server hiccups); terminal errors
    /// wait for the object or the configuration to change.
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Maas(e) => match e.class() {
                MaasErrorClass::Retryable
                | MaasErrorClass::OutcomeUnknown
                | MaasErrorClass::Transport
                | MaasErrorClass::Unexpected
                | MaasErrorClass::Unauthorized
                | MaasErrorClass::Forbidden => true,
                MaasErrorClass::Config
                | MaasErrorClass::NotFound
                | MaasErrorClass::Conflict
                | MaasErrorClass::BadRequest
                | MaasErrorClass::Decode => false,
            },
            ReconcileError::Kube { .. } => true,
            ReconcileError::Invalid(_) | ReconcileError::MissingCredentials => false,
            // The Cluster or MaasCluster may be created a moment later; looking costs no MAAS call.
            ReconcileError::CredentialsUnknown(_) => true,
            ReconcileError::TooManySteps(_) | ReconcileError::NotLeader => true,
        }
    }

    /// A stable label for metrics, events and condition reasons.
    pub fn label(&self) -> &'static str {
        match self {
            ReconcileError::Maas(e) => match e.class() {
                MaasErrorClass::Unauthorized | MaasErrorClass::Forbidden => "MaasAuthFailed",
                MaasErrorClass::Retryable | MaasErrorClass::Transport => "MaasUnavailable",
                // The next pass looks at MAAS (adoption lookup, a read) before acting again.
                MaasErrorClass::OutcomeUnknown => "MaasOutcomeUnknown",
                MaasErrorClass::BadRequest => "MaasRejected",
                MaasErrorClass::NotFound => "MaasNotFound",
                MaasErrorClass::Conflict => "MaasConflict",
                MaasErrorClass::Config => "MaasConfigInvalid",
                MaasErrorClass::Unexpected | MaasErrorClass::Decode => "MaasError",
            },
            ReconcileError::Kube { .. } => "KubernetesError",
            ReconcileError::Invalid(_) => "InvalidObject",
            ReconcileError::MissingCredentials => "MissingCredentials",
            ReconcileError::CredentialsUnknown(_) => "CredentialsUnknown",
            ReconcileError::TooManySteps(_) => "NotSettling",
            ReconcileError::NotLeader => "NotLeader",
        }
    }

    /// The error as a condition message: what failed and what kind of failure, without MAAS's
    /// text or the transport's words, which can change on every call (MAAS's "Expired timestamp:
    /// given X and now Y" under clock skew). A condition that changed on every failure would
    /// rewrite the status, and the status write would wake the object again at once. The whole
    /// text goes into the log and the event.
    pub fn condition_message(&self) -> String {
        match self {
            ReconcileError::Maas(e) => {
                let op = e
                    .operation()
                    .map_or_else(|| "client".to_string(), |op| op.to_string());
                let hint = match e.class() {
                    MaasErrorClass::Unauthorized => {
                        "the API key was refused; check the credentials"
                    }
                    MaasErrorClass::Forbidden => "the MAAS user may not do this",
                    MaasErrorClass::Retryable | MaasErrorClass::Transport => {
                        "MAAS is unreachable or busy; retrying with backoff"
                    }
                    MaasErrorClass::OutcomeUnknown => {
                        "the answer was lost; MAAS is looked at before acting again"
                    }
                    MaasErrorClass::BadRequest => return self.to_string(),
                    MaasErrorClass::NotFound => "not found",
                    MaasErrorClass::Conflict => "refused in the current state",
                    MaasErrorClass::Config => {
                        "the client configuration is invalid (endpoint, API key or CA bundle); \
                         see the events"
                    }
                    MaasErrorClass::Unexpected | MaasErrorClass::Decode => {
                        "unexpected answer; see the events"
                    }
                };
                format!("MAAS {op}: {hint}")
            }
            ReconcileError::Kube {
                stage,
                action,
                source,
            } => {
                let code = match source {
                    kube::Error::Api(s) => format!("HTTP {}", s.code),
                    _ => "no answer".to_string(),
                };
                format!("{stage}: Kubernetes {action} failed ({code})")
            }
            ReconcileError::Invalid(_)
            | ReconcileError::MissingCredentials
            | ReconcileError::CredentialsUnknown(_)
            | ReconcileError::NotLeader
            | ReconcileError::TooManySteps(_) => self.to_string(),
        }
    }

    /// When to try again: MAAS's own hint when it gave one, else a short delay for transient
    /// errors and a long one for terminal errors (a change to the object triggers sooner).
    pub fn requeue_after(&self) -> Duration {
        if self.is_conflict() {
            return CONFLICT_RETRY;
        }
        if let ReconcileError::Maas(e) = self
            && let Some(after) = e.retry_after()
        {
            return after;
        }
        if self.is_transient() {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(300)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maas_client::Operation;

    #[test]
    fn condition_messages_carry_no_per_call_noise() {
        let skewed = |given: u64| {
            ReconcileError::Maas(MaasError::Unauthorized {
                op: Operation::ReadMachine,
                message: format!("Expired timestamp: given {given} and now {}", given + 400),
            })
        };
        assert_eq!(skewed(1).condition_message(), skewed(2).condition_message());
        assert!(!skewed(1).condition_message().contains("given"));
        assert!(
            skewed(1).to_string().contains("given 1"),
            "the event keeps the text"
        );
        let down = |reason: &str| {
            ReconcileError::Maas(MaasError::Retryable {
                op: Operation::Allocate,
                reason: reason.into(),
                retry_after: None,
            })
        };
        assert_eq!(
            down("connection refused (port 5240)").condition_message(),
            down("timed out after 30.001 s").condition_message()
        );
    }

    #[test]
    fn classification_and_labels() {
        let retry = ReconcileError::Maas(MaasError::Retryable {
            op: Operation::Allocate,
            reason: "503".into(),
            retry_after: Some(Duration::from_secs(10)),
        });
        assert!(retry.is_transient());
        assert_eq!(retry.label(), "MaasUnavailable");
        assert_eq!(retry.requeue_after(), Duration::from_secs(10));

        let auth = ReconcileError::Maas(MaasError::Unauthorized {
            op: Operation::Version,
            message: "x".into(),
        });
        assert!(auth.is_transient());
        assert_eq!(auth.label(), "MaasAuthFailed");
        assert_eq!(auth.requeue_after(), Duration::from_secs(15));

        let bad = ReconcileError::Maas(MaasError::BadRequest {
            op: Operation::Allocate,
            message: "zone".into(),
            fields: Default::default(),
        });
        assert!(!bad.is_transient());
        assert_eq!(bad.label(), "MaasRejected");
        assert_eq!(bad.requeue_after(), Duration::from_secs(300));

        let conflict = ReconcileError::Kube {
            stage: Stage::Store,
            action: "update finalizers",
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure("the object has been modified", "Conflict")
                    .with_code(409),
            )),
        };
        assert!(conflict.is_conflict());
        assert_eq!(conflict.requeue_after(), CONFLICT_RETRY);
        let gone = ReconcileError::Kube {
            stage: Stage::Fetch,
            action: "read",
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure("not found", "NotFound").with_code(404),
            )),
        };
        assert!(!gone.is_conflict());
        assert_eq!(gone.requeue_after(), Duration::from_secs(15));
        assert!(!retry.is_conflict());

        assert_eq!(conflict.stage(), Stage::Store);
        assert!(
            conflict
                .to_string()
                .starts_with("store: Kubernetes update finalizers")
        );
        assert_eq!(retry.stage(), Stage::MaasStep);
        assert!(!ReconcileError::MissingCredentials.is_transient());
        assert_eq!(
            ReconcileError::MissingCredentials.label(),
            "MissingCredentials"
        );
    }
}
