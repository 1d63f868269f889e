//! Why bootstrap data marked or detected as Ignition cannot be deployed.
//!
//! Messages go into conditions and events, so they name positions and versions, never content
//! (the config carries a bearer token).

use thiserror::Error;

/// A malformed Ignition value: the machine is not deployed until the secret is fixed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IgnitionError {
    /// The value is not a JSON object.
    #[error("Ignition config is not a JSON object (line {line}, column {column})")]
    NotJson {
        /// Line of the first error, 1-based (0 when the value parsed but is not an object).
        line: usize,
        /// Column of the first error, 1-based.
        column: usize,
    },
    /// No `ignition.version` string.
    #[error("Ignition config has no ignition.version")]
    NoVersion,
    /// `ignition.version` is not a semantic version.
    #[error("Ignition config version {0:?} is not a semantic version")]
    BadVersion(String),
    /// A version other than 3.x: 2.x configs have another shape and Ignition 3 refuses them.
    #[error("Ignition config version {0} is not supported (3.x only)")]
    UnsupportedVersion(String),
    /// The config does not match the schema of its version.
    #[error("Ignition config does not match the {version} schema (line {line}, column {column})")]
    Schema {
        /// The config's version.
        version: String,
        /// Line of the first error.
        line: usize,
        /// Column of the first error.
        column: usize,
    },
    /// The patched config could not be written back (never expected for a parsed config).
    #[error("patched Ignition config could not be serialized")]
    Serialize,
}

impl IgnitionError {
    /// The stable condition and event reason.
    pub const REASON: &'static str = "InvalidBootstrapData";

    /// A position-only error from serde: its message may quote the config, this never does.
    pub(crate) fn not_json(e: &serde_json::Error) -> Self {
        IgnitionError::NotJson {
            line: e.line(),
            column: e.column(),
        }
    }

    pub(crate) fn schema(version: &str, e: &serde_json::Error) -> Self {
        IgnitionError::Schema {
            version: version.to_string(),
            line: e.line(),
            column: e.column(),
        }
    }
}
