//! Flags of spectrocloud's Go provider that have no job here, accepted so that an install of
//! the Go provider keeps starting when only its image is swapped: `--webhook-port` (no webhooks:
//! the CRDs validate with CEL), `--feature-gates`, `--cluster-role` (its spectro branches) and
//! klog's own flags. Each one given is named once in the log at start.

use clap::Args;

/// The accepted-and-ignored flags.
#[derive(Clone, Debug, Default, Args)]
pub struct GoProviderFlags {
    /// Accepted for compatibility: this manager serves no webhooks (the CRDs validate with CEL).
    #[arg(long, default_value_t = 0)]
    pub webhook_port: u16,
    /// Accepted for compatibility (`Name=true,Other=false`); no feature gate changes anything.
    #[arg(long, default_value = "", value_parser = parse_feature_gates)]
    pub feature_gates: String,
    /// Accepted for compatibility with the Go provider's spectro branches (`hcp` or `wlc`).
    #[arg(long, default_value = "", value_parser = ["", "hcp", "wlc"])]
    pub cluster_role: String,
    /// klog's flags, accepted and ignored: logs go to standard error as lines or JSON.
    #[command(flatten)]
    pub klog: KlogFlags,
}

/// klog's flags as Go managers spell them (underscores included).
#[derive(Clone, Debug, Default, Args)]
pub struct KlogFlags {
    /// klog: log to standard error (always so here).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub logtostderr: Option<bool>,
    /// klog: log to standard error as well as files.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub alsologtostderr: Option<bool>,
    /// klog: per-file verbosity.
    #[arg(long, hide = true)]
    pub vmodule: Option<String>,
    /// klog: the level from which logs go to standard error.
    #[arg(long, hide = true)]
    pub stderrthreshold: Option<String>,
    /// klog: a directory for log files.
    #[arg(long = "log_dir", alias = "log-dir", hide = true)]
    pub log_dir: Option<String>,
    /// klog: a log file.
    #[arg(long = "log_file", alias = "log-file", hide = true)]
    pub log_file: Option<String>,
    /// klog: no header prefix on log lines.
    #[arg(long = "skip_headers", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub skip_headers: Option<bool>,
    /// klog: the file directory in the header.
    #[arg(long = "add_dir_header", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub add_dir_header: Option<bool>,
}

impl GoProviderFlags {
    /// One line per flag given that changes nothing here, for the log at start.
    pub fn ignored(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.webhook_port != 0 {
            lines.push(format!(
                "--webhook-port={}: no webhooks are served; the CRDs validate with CEL",
                self.webhook_port
            ));
        }
        if !self.feature_gates.is_empty() {
            lines.push(format!(
                "--feature-gates={}: this manager has no feature gates",
                self.feature_gates
            ));
        }
        if !self.cluster_role.is_empty() {
            lines.push(format!(
                "--cluster-role={}: one manager reconciles every cluster",
                self.cluster_role
            ));
        }
        let k = &self.klog;
        let klog_given = k.logtostderr.is_some()
            || k.alsologtostderr.is_some()
            || k.vmodule.is_some()
            || k.stderrthreshold.is_some()
            || k.log_dir.is_some()
            || k.log_file.is_some()
            || k.skip_headers.is_some()
            || k.add_dir_header.is_some();
        if klog_given {
            lines.push("klog flags: logs always go to standard error (--log-format)".to_string());
        }
        lines
    }
}

/// Checks the `Name=bool,...` form CAPI's managers take, so a typo is refused as there.
fn parse_feature_gates(value: &str) -> Result<String, String> {
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, enabled) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected Name=true or Name=false"))?;
        if name.trim().is_empty() || enabled.trim().parse::<bool>().is_err() {
            return Err(format!("{pair:?}: expected Name=true or Name=false"));
        }
    }
    Ok(value.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_gates_take_names_and_booleans() {
        assert!(parse_feature_gates("MachinePool=true, ClusterTopology=false").is_ok());
        assert!(parse_feature_gates("").is_ok());
        assert!(parse_feature_gates("MachinePool").is_err());
        assert!(parse_feature_gates("MachinePool=yes").is_err());
        assert!(parse_feature_gates("=true").is_err());
    }

    #[test]
    fn nothing_given_is_nothing_to_say() {
        assert!(GoProviderFlags::default().ignored().is_empty());
    }
}
