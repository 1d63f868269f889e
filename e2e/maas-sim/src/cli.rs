//! The command line of the `maas-sim` binary, turned into a `SimConfig`. Parsing of the fault
//! flags is pure and tested here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config::{SimConfig, SimUser};
use crate::faults::{BreakMachine, FaultConfig, FaultRule};

/// Flags of `maas-sim`.
#[derive(Debug, Clone, Parser)]
#[command(name = "maas-sim", about = "A MAAS 2.0 API simulator", version)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5240")]
    pub listen: SocketAddr,
    /// Admin API key `consumer:token:secret`; generated when absent.
    #[arg(long, env = "MAAS_SIM_API_KEY")]
    pub api_key: Option<String>,
    /// More users, `NAME=consumer:token:secret` (repeatable).
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// Plain machines to generate (without --inventory).
    #[arg(long, default_value_t = 10)]
    pub machines: usize,
    /// GPU machines to generate (without --inventory).
    #[arg(long, default_value_t = 2)]
    pub gpu_machines: usize,
    /// Seconds from deploy to Deployed (0: on the next read).
    #[arg(long, default_value_t = 5.0)]
    pub deploy_seconds: f64,
    /// Seconds from release to Ready (default: a third of --deploy-seconds).
    #[arg(long)]
    pub release_seconds: Option<f64>,
    /// Seconds of disk erasing (default: half of --deploy-seconds).
    #[arg(long)]
    pub erase_seconds: Option<f64>,
    /// Inventory file, YAML or TOML.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// JSON snapshot file, loaded at start and kept up to date.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Kubeconfig where Deployed machines register as Nodes.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Fault configuration file (YAML or JSON, the shape of `POST /_sim/faults`).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Injected errors `OP:RATE:CODE[:RETRY_AFTER]`, e.g. `machines:allocate:0.2:503:10` (repeatable).
    #[arg(long = "error-rate")]
    pub error_rates: Vec<String>,
    /// Added latency `OP:MILLISECONDS` (repeatable; OP may be `*`).
    #[arg(long = "latency")]
    pub latencies: Vec<String>,
    /// Connection resets `OP:RATE` (repeatable).
    #[arg(long = "reset-rate")]
    pub reset_rates: Vec<String>,
    /// Probability that a deployment fails.
    #[arg(long, default_value_t = 0.0)]
    pub deploy_failure_rate: f64,
    /// A machine that goes Broken, `NAME[:AFTER_SECONDS]` (repeatable).
    #[arg(long = "break-machine")]
    pub break_machines: Vec<String>,
    /// A machine whose every deployment fails, system id or host name (repeatable).
    #[arg(long = "fail-deploy-machine")]
    pub fail_deploy_machines: Vec<String>,
    /// Seed of the fault draws.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds an idle keep-alive connection stays open (MAAS's front end: 65).
    #[arg(long, default_value_t = crate::config::DEFAULT_IDLE_TIMEOUT_SECONDS)]
    pub idle_timeout_seconds: f64,
    /// Issue the main API key to a non-admin user, as a MAAS account without admin rights.
    #[arg(long)]
    pub non_admin: bool,
    /// Machines Deployed to another non-admin user at start (default 2 with --non-admin).
    #[arg(long)]
    pub other_user_machines: Option<usize>,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// Splits `OP:rest` where OP itself may contain one `:` (`machines:allocate`).
fn split_fields(spec: &str, numeric_fields: usize) -> Result<(String, Vec<String>), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let min = 1 + numeric_fields;
    if parts.len() < min {
        return Err(format!(
            "{spec:?}: expected OP followed by {numeric_fields} field(s)"
        ));
    }
    // The op takes one or two leading parts: two when the second is not a number.
    let op_parts = if parts.len() > min && parts[1].parse::<f64>().is_err() {
        2
    } else {
        1
    };
    Ok((
        parts[..op_parts].join(":"),
        parts[op_parts..].iter().map(|s| s.to_string()).collect(),
    ))
}

fn num<T: std::str::FromStr>(spec: &str, value: Option<&String>) -> Result<T, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{spec:?}: bad number"))
}

/// Builds the fault configuration from the fault flags.
pub fn faults_from_flags(cli: &Cli) -> Result<FaultConfig, String> {
    let mut config = match &cli.faults {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => FaultConfig::default(),
    };
    for spec in &cli.error_rates {
        let (op, fields) = split_fields(spec, 2)?;
        let mut r = FaultRule::on(&op);
        r.error_rate = num(spec, fields.first())?;
        r.status = num(spec, fields.get(1))?;
        r.retry_after = match fields.get(2) {
            Some(v) => Some(num(spec, Some(v))?),
            None => None,
        };
        config.rules.push(r);
    }
    for spec in &cli.latencies {
        let (op, fields) = split_fields(spec, 1)?;
        let mut r = FaultRule::on(&op);
        r.latency_ms = num(spec, fields.first())?;
        config.rules.push(r);
    }
    for spec in &cli.reset_rates {
        let (op, fields) = split_fields(spec, 1)?;
        let mut r = FaultRule::on(&op);
        r.reset_rate = num(spec, fields.first())?;
        config.rules.push(r);
    }
    for spec in &cli.break_machines {
        let (machine, after) = match spec.rsplit_once(':') {
            Some((m, s)) => (m.to_string(), num(spec, Some(&s.to_string()))?),
            None => (spec.clone(), 0.0),
        };
        config.break_machines.push(BreakMachine {
            machine,
            after_seconds: after,
        });
    }
    config
        .fail_deploy_machines
        .extend(cli.fail_deploy_machines.iter().cloned());
    if cli.deploy_failure_rate > 0.0 {
        config.deploy_failure_rate = cli.deploy_failure_rate;
    }
    if cli.seed.is_some() {
        config.seed = cli.seed;
    }
    Ok(config)
}

/// The simulator configuration the flags describe.
pub fn config_from_cli(cli: &Cli) -> Result<SimConfig, String> {
    let mut users = Vec::new();
    for spec in &cli.users {
        let (username, api_key) = spec
            .split_once('=')
            .ok_or_else(|| "--user takes NAME=consumer:token:secret".to_string())?;
        users.push(SimUser {
            username: username.to_string(),
            api_key: api_key.to_string(),
        });
    }
    Ok(SimConfig {
        listen: cli.listen,
        api_key: cli.api_key.clone(),
        users,
        machines: cli.machines,
        gpu_machines: cli.gpu_machines,
        deploy_seconds: cli.deploy_seconds,
        release_seconds: cli.release_seconds,
        erase_seconds: cli.erase_seconds,
        inventory_file: cli.inventory.clone(),
        inventory: None,
        state_file: cli.state_file.clone(),
        kubeconfig: cli.kubeconfig.clone(),
        faults: faults_from_flags(cli)?,
        idle_timeout_seconds: cli.idle_timeout_seconds,
        non_admin: cli.non_admin,
        other_user_machines: cli.other_user_machines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("maas-sim").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn required_flags_parse() {
        let cli = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "a:b:c",
            "--machines",
            "3",
            "--gpu-machines",
            "1",
            "--deploy-seconds",
            "0",
            "--inventory",
            "inv.yaml",
            "--state-file",
            "s.json",
        ]);
        let c = config_from_cli(&cli).unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.machines, 3);
        assert_eq!(c.gpu_machines, 1);
        assert_eq!(c.deploy_seconds, 0.0);
        assert_eq!(c.api_key.as_deref(), Some("a:b:c"));
        assert!(!c.non_admin);
        assert_eq!(c.effective_other_user_machines(), 0);
        assert_eq!(c.idle_timeout_seconds, 65.0);
    }

    #[test]
    fn non_admin_and_connection_flags() {
        let c = config_from_cli(&parse(&[
            "--non-admin",
            "--idle-timeout-seconds",
            "65",
            "--fail-deploy-machine",
            "node-002",
        ]))
        .unwrap();
        assert!(c.non_admin);
        assert_eq!(c.effective_other_user_machines(), 2);
        assert_eq!(c.idle_timeout_seconds, 65.0);
        assert_eq!(c.faults.fail_deploy_machines, vec!["node-002".to_string()]);
        let c = config_from_cli(&parse(&["--non-admin", "--other-user-machines", "0"])).unwrap();
        assert_eq!(c.effective_other_user_machines(), 0);
    }

    #[test]
    fn fault_files_in_yaml_and_json_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("faults.yaml");
        std::fs::write(
            &yaml,
            "rules:\n  - op: machines:allocate\n    error_rate: 0.5\n    status: 409\nseed: 7\n",
        )
        .unwrap();
        let json = dir.path().join("faults.json");
        std::fs::write(
            &json,
            r#"{"rules": [{"op": "machines:allocate", "error_rate": 0.5, "status": 409}], "seed": 7}"#,
        )
        .unwrap();
        let from = |path: &std::path::Path| {
            faults_from_flags(&parse(&["--faults", path.to_str().unwrap()])).unwrap()
        };
        let a = from(&yaml);
        assert_eq!(a, from(&json));
        assert_eq!(a.seed, Some(7));
        assert_eq!(
            (
                a.rules[0].op.as_str(),
                a.rules[0].error_rate,
                a.rules[0].status
            ),
            ("machines:allocate", 0.5, 409)
        );
    }

    #[test]
    fn bad_fault_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.yaml");
        std::fs::write(&path, "rules:\n  - op: deploy\n    bogus: 1\n").unwrap();
        let err = faults_from_flags(&parse(&["--faults", path.to_str().unwrap()])).unwrap_err();
        assert!(err.contains("faults.yaml"), "{err}");
    }

    #[test]
    fn fault_flags() {
        let cli = parse(&[
            "--error-rate",
            "machines:allocate:0.5:409:5",
            "--error-rate",
            "deploy:1:503",
            "--latency",
            "*:20",
            "--reset-rate",
            "machine:read:0.1",
            "--break-machine",
            "node-001:2.5",
            "--deploy-failure-rate",
            "0.25",
            "--seed",
            "7",
        ]);
        let f = faults_from_flags(&cli).unwrap();
        assert_eq!(f.rules.len(), 4);
        assert_eq!(
            (
                f.rules[0].op.as_str(),
                f.rules[0].error_rate,
                f.rules[0].status,
                f.rules[0].retry_after
            ),
            ("machines:allocate", 0.5, 409, Some(5))
        );
        assert_eq!(
            (
                f.rules[1].op.as_str(),
                f.rules[1].status,
                f.rules[1].retry_after
            ),
            ("deploy", 503, None)
        );
        assert_eq!((f.rules[2].op.as_str(), f.rules[2].latency_ms), ("*", 20));
        assert_eq!(
            (f.rules[3].op.as_str(), f.rules[3].reset_rate),
            ("machine:read", 0.1)
        );
        assert_eq!(
            f.break_machines,
            vec![BreakMachine {
                machine: "node-001".into(),
                after_seconds: 2.5
            }]
        );
        assert_eq!(f.deploy_failure_rate, 0.25);
        assert_eq!(f.seed, Some(7));
        assert!(faults_from_flags(&parse(&["--error-rate", "deploy:x:503"])).is_err());
    }
}
