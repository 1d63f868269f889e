//! Log setup: text or JSON lines, level from `--v`, `RUST_LOG` overriding both.

use tracing_subscriber::EnvFilter;

use crate::runtime::flags::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` or the directive did not parse.
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("logging already initialised: {0}")]
    Init(String),
}

/// The filter: `RUST_LOG` when set, else `directive` for our crates and `warn` for the rest
/// (kube and hyper are chatty at debug).
pub fn filter(directive: &str, rust_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(spec) => Ok(EnvFilter::try_new(spec)?),
        None => Ok(EnvFilter::try_new(format!(
            "warn,capmaas_controllers={directive},capmaas_manager={directive},maas_client={directive},kube_lease_manager=info"
        ))?),
    }
}

/// Installs the global subscriber.
pub fn init(format: LogFormat, directive: &str) -> Result<(), TelemetryError> {
    let filter = filter(directive, std::env::var("RUST_LOG").ok().as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        // Colour codes only on a terminal: a pod's log goes to a collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| TelemetryError::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = filter("debug", None).unwrap().to_string();
        assert!(f.contains("capmaas_controllers=debug"), "{f}");
        assert_eq!(filter("info", Some("trace")).unwrap().to_string(), "trace");
        assert!(filter("info", Some("a=b=c")).is_err());
    }
}
