//! Command-line flags of `capmaas-manager`. HyperShift and clusterctl templates pass the
//! controller-runtime spellings (`--v=2`, `--sync-period=15m`), so those are accepted verbatim.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::runtime::compat_flags::GoProviderFlags;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The manager's flags.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "capmaas-manager",
    version,
    about = "Cluster API infrastructure provider for MAAS"
)]
pub struct Flags {
    /// Watch only this namespace (works with a namespaced Role); all namespaces when empty.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Run controllers only while holding the leader Lease.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease; defaults to `--namespace`, then the pod's namespace.
    #[arg(long, default_value = "")]
    pub leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "controller-leader-election-capmaas")]
    pub leader_election_id: String,
    /// How often every object is reconciled even without a change (Go duration, e.g. `15m`).
    #[arg(long, default_value = "10h", value_parser = parse_go_duration)]
    pub sync_period: Duration,
    /// Log verbosity as klog counts it: up to 2 the normal operational detail (info), 3-4
    /// debug, 5 and more trace.
    #[arg(long = "v", short = 'v', default_value_t = 0)]
    pub verbosity: u8,
    /// Address of the metrics endpoint (`0` disables it); `--metrics-bind-addr` is the Go
    /// provider's spelling.
    #[arg(long, alias = "metrics-bind-addr", default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: String,
    /// Address of `/healthz` and `/readyz`; `--health-addr` is the Go provider's spelling.
    #[arg(long, alias = "health-addr", default_value = "0.0.0.0:9440")]
    pub health_probe_bind_address: String,
    /// Reconcile only objects whose `cluster.x-k8s.io/watch-filter` label has this value, as
    /// Cluster API's managers do; every object when empty.
    #[arg(long, default_value = "")]
    pub watch_filter: String,
    /// The Go provider's flags that have no job here (accepted so its manifests still start).
    #[command(flatten)]
    pub go_provider: GoProviderFlags,
    /// MaasMachines reconciled at the same time (bounds MAAS load; at least 1, as 0 would mean
    /// no bound at all).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub machine_concurrency: u16,
    /// MaasClusters reconciled at the same time (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub cluster_concurrency: u16,
    /// Accepted for compatibility; the manager serves no webhooks.
    #[arg(long, default_value = "")]
    pub tls_min_version: String,
    /// Accepted for compatibility; the manager serves no webhooks.
    #[arg(long, default_value = "")]
    pub tls_cipher_suites: String,
    /// Kubeconfig file; in-cluster configuration when absent.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// PEM bundle of CAs trusted for MAAS TLS (in addition to the system roots): a file, or the
    /// PEM text itself.
    #[arg(long, env = "MAAS_CA_BUNDLE")]
    pub maas_ca_bundle: Option<PathBuf>,
    /// Skip MAAS TLS verification (tests only).
    #[arg(long, default_value_t = false)]
    pub maas_insecure_skip_tls_verify: bool,
    /// How often to release MAAS machines whose MaasMachine is gone (Go duration; `0` disables).
    #[arg(long, default_value = "10m", value_parser = parse_go_duration)]
    pub orphan_sweep_interval: Duration,
    /// How long a machine must stay orphaned before the sweep releases it (Go duration): while
    /// `clusterctl move` runs, the source's objects are gone before the target has adopted the
    /// machines.
    #[arg(long, default_value = "5m", value_parser = parse_go_duration)]
    pub orphan_sweep_grace: Duration,
    /// MAAS URL (`http://maas:5240/MAAS`).
    #[arg(long, env = "MAAS_ENDPOINT", hide_env_values = true)]
    pub maas_endpoint: Option<String>,
    /// MAAS API key (`consumer:token:secret`); never logged.
    #[arg(long, env = "MAAS_API_KEY", hide_env_values = true)]
    pub maas_api_key: Option<String>,
    /// Default zone for machines whose Machine and MaasMachine name none.
    #[arg(long, env = "MAAS_ZONE")]
    pub maas_zone: Option<String>,
}

impl Flags {
    /// The namespace to watch, `None` for all.
    pub fn watch_namespace(&self) -> Option<&str> {
        Some(self.namespace.trim()).filter(|n| !n.is_empty())
    }

    /// The tracing filter directive for `--v`.
    pub fn log_directive(&self) -> &'static str {
        verbosity_directive(self.verbosity)
    }

    /// The `cluster.x-k8s.io/watch-filter` value objects must carry, `None` for all objects.
    pub fn watch_filter(&self) -> Option<&str> {
        Some(self.watch_filter.trim()).filter(|v| !v.is_empty())
    }

    /// The default zone, `None` when blank.
    pub fn default_zone(&self) -> Option<&str> {
        self.maas_zone
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty())
    }
}

/// The tracing level for a klog verbosity: klog's `--v=2` is the normal operational detail
/// Kubernetes components run with, so it stays at info.
pub fn verbosity_directive(v: u8) -> &'static str {
    match v {
        0..=2 => "info",
        3 | 4 => "debug",
        _ => "trace",
    }
}

/// Error for an unreadable Go duration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: expected Go syntax such as 90s, 15m, 1h30m")]
pub struct DurationError(pub String);

/// Parses a Go `time.ParseDuration` string (`300ms`, `1.5h`, `1h30m`, `0`); negative values are
/// refused because every flag here is a period.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(input.to_string());
    let s = input.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(err());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

/// Parses a bind address as controller-runtime spells it: `:8080` means all interfaces, `0`
/// disables the server.
pub fn parse_bind_address(value: &str) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
    let value = value.trim();
    if value.is_empty() || value == "0" {
        return Ok(None);
    }
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_string()
    };
    full.parse().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concurrency_of_zero_is_refused_with_its_reason() {
        for flag in ["--machine-concurrency=0", "--cluster-concurrency=0"] {
            let err = Flags::try_parse_from(["capmaas-manager", flag]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("0 is not in 1.."), "{flag}: {text}");
        }
    }

    fn parse(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("capmaas-manager").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn go_durations() {
        let ok = [
            ("15m", 900.0),
            ("10h", 36000.0),
            ("1h30m", 5400.0),
            ("90s", 90.0),
            ("1.5h", 5400.0),
            ("300ms", 0.3),
            ("0", 0.0),
            ("2m30.5s", 150.5),
        ];
        for (s, secs) in ok {
            assert_eq!(
                parse_go_duration(s),
                Ok(Duration::from_secs_f64(secs)),
                "{s}"
            );
        }
        for bad in ["", "15", "m", "-5m", "5x", "1h-", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hypershift_arguments_are_accepted() {
        let f = parse(&[
            "--namespace=hcp-ns",
            "--leader-elect=true",
            "--sync-period=15m",
            "--v=2",
        ]);
        assert_eq!(f.watch_namespace(), Some("hcp-ns"));
        assert!(f.leader_elect);
        assert_eq!(f.sync_period, Duration::from_secs(900));
        assert_eq!(f.verbosity, 2);
        assert_eq!(f.log_directive(), "info", "klog's --v=2 is normal detail");
    }

    #[test]
    fn separate_values_and_bare_booleans() {
        let f = parse(&[
            "--namespace",
            "ns",
            "--leader-elect",
            "--sync-period",
            "10h",
            "-v",
            "4",
            "--metrics-bind-address",
            ":8443",
            "--health-probe-bind-address=:8081",
            "--machine-concurrency=3",
            "--cluster-concurrency",
            "2",
            "--tls-min-version=VersionTLS12",
            "--tls-cipher-suites=TLS_AES_128_GCM_SHA256",
            "--log-format=json",
            "--maas-insecure-skip-tls-verify",
            "--orphan-sweep-interval=0",
            "--leader-election-namespace=kube-system",
            "--leader-election-id=x",
        ]);
        assert_eq!(f.namespace, "ns");
        assert!(f.leader_elect);
        assert_eq!(f.verbosity, 4);
        assert_eq!(f.log_directive(), "debug");
        assert_eq!(f.metrics_bind_address, ":8443");
        assert_eq!(f.machine_concurrency, 3);
        assert_eq!(f.cluster_concurrency, 2);
        assert_eq!(f.log_format, LogFormat::Json);
        assert!(f.maas_insecure_skip_tls_verify);
        assert_eq!(f.orphan_sweep_interval, Duration::ZERO);
        assert_eq!(f.leader_election_namespace, "kube-system");
    }

    #[test]
    fn the_go_providers_manifest_arguments_start_the_manager() {
        // What its config/default passes, and every flag its main.go defines.
        let f = parse(&["--metrics-bind-addr=127.0.0.1:8080", "--leader-elect"]);
        assert_eq!(f.metrics_bind_address, "127.0.0.1:8080");
        assert!(f.leader_elect);
        let f = parse(&[
            "--health-addr=:9440",
            "--webhook-port=9443",
            "--feature-gates=MachinePool=true",
            "--namespace=capmaas-system",
            "--sync-period=120m",
            "--machine-concurrency=2",
            "--leader-elect=true",
            "--cluster-role=hcp",
            "--v=10",
            "--logtostderr",
            "--alsologtostderr=false",
            "--vmodule=x=2",
            "--log_dir=/tmp",
            "--watch-filter=team-a",
        ]);
        assert_eq!(f.health_probe_bind_address, ":9440");
        assert_eq!(f.sync_period, Duration::from_secs(7200));
        assert_eq!(f.machine_concurrency, 2);
        assert_eq!(f.log_directive(), "trace");
        assert_eq!(f.watch_filter(), Some("team-a"));
        assert_eq!(
            f.go_provider.ignored().len(),
            4,
            "{:?}",
            f.go_provider.ignored()
        );
        assert!(Flags::try_parse_from(["m", "--cluster-role=other"]).is_err());
        assert!(Flags::try_parse_from(["m", "--feature-gates=Nope"]).is_err());
    }

    #[test]
    fn defaults() {
        let f = Flags::try_parse_from(["capmaas-manager", "--leader-elect=false"]).unwrap();
        assert!(!f.leader_elect);
        assert_eq!(f.sync_period, Duration::from_secs(36000));
        assert_eq!(f.log_directive(), "info");
        assert_eq!(f.orphan_sweep_interval, Duration::from_secs(600));
        assert_eq!(f.orphan_sweep_grace, Duration::from_secs(300));
        assert!(parse_go_duration("7d").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Flags::try_parse_from(["m", "--sync-period=soon"]).is_err());
        assert!(Flags::try_parse_from(["m", "--log-format=xml"]).is_err());
        assert!(Flags::try_parse_from(["m", "--v=high"]).is_err());
    }
}

#[cfg(test)]
mod bind_tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_address(":8080").unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("127.0.0.1:9440").unwrap(),
            Some("127.0.0.1:9440".parse().unwrap())
        );
        assert_eq!(parse_bind_address("0").unwrap(), None);
        assert!(parse_bind_address("nope").is_err());
    }
}
