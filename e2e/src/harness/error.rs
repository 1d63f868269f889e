//! Errors of the end-to-end harness.

use std::path::PathBuf;

/// What can go wrong while starting or driving the local control plane.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The Go-built tools are not in the cache and could not be built.
    #[error("control-plane tools are missing: {0} (run `make tools`)")]
    Tools(String),
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the harness was doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A child process could not be started.
    #[error("starting {name}: {source}")]
    Spawn {
        /// Which component.
        name: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A component did not become ready in time; its log tail says why.
    #[error("{name} did not become ready: {reason}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        /// Which component.
        name: String,
        /// What was being waited for.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certs(#[from] rcgen::Error),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Building the client configuration from the kubeconfig failed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A manifest could not be parsed.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// Waiting for a condition in the cluster timed out.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The MAAS simulator failed.
    #[error("MAAS simulator: {0}")]
    Sim(#[from] maas_sim::SimError),
}

impl HarnessError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| HarnessError::Io {
            action,
            path,
            source,
        }
    }
}
