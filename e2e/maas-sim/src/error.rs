//! Errors of starting, running and stopping the simulator (not the HTTP errors it serves).

/// Why the simulator could not start, save or stop.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The inventory file is malformed.
    #[error("inventory {path}: {message}")]
    Inventory {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The inventory is well-formed but inconsistent (duplicate host names, bad subnet...).
    #[error("invalid inventory: {0}")]
    InvalidInventory(String),
    /// The configuration is inconsistent (bad API key format...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The state file could not be read or written.
    #[error("state file {path}: {message}")]
    StateFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The server task ended abnormally.
    #[error("server task failed: {0}")]
    Join(String),
}
