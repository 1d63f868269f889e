//! `make bench-memory`: the manager's memory and CPU with N MaasMachines of one cluster in one
//! namespace, run as HyperShift's `capi-provider` Deployment runs it (`--namespace`, leader
//! election, `--sync-period=15m`, `--v=2`), against the real Cluster API core and the MAAS
//! simulator. Prints the figures; asserts nothing (a benchmark, not a test).
//!
//! HyperShift's limits for the container: 512Mi on its 4.19/4.20 lines, 100Mi (20Mi requested)
//! on 4.21.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capmaas_e2e::harness::audit::wait_until_free;
use capmaas_e2e::harness::manager::manager_binary;
use capmaas_e2e::harness::observe::wait_machines_running;
use capmaas_e2e::harness::process::{Component, free_port};
use capmaas_e2e::harness::scenario::delete_cluster;
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, cluster_yaml, manifests};
use clap::Parser;

const NS: &str = "clusters-hosted";
const CLUSTER: &str = "hosted";

/// Flags of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Memory and CPU of capmaas-manager with N MaasMachines in one namespace")]
struct Args {
    /// MaasMachines (and MAAS machines) of the one cluster.
    #[arg(long, default_value_t = 300)]
    machines: usize,
    /// Seconds of steady state measured after all are Running.
    #[arg(long, default_value_t = 60)]
    steady_seconds: u64,
    /// Where logs go (a fresh temporary directory by default).
    #[arg(long)]
    run_dir: Option<PathBuf>,
}

/// Resident memory now and at its peak, in KiB, and CPU seconds, of process `pid` (Linux).
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    rss_kib: u64,
    peak_kib: u64,
    cpu_seconds: f64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    // USER_HZ is 100 on every Linux this runs on.
    Usage {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
        cpu_seconds: ticks.iter().sum::<f64>() / 100.0,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Starts the manager with the fork's args and env; returns it once `/healthz` answers.
async fn start_provider(env: &Env) -> Result<Component, HarnessError> {
    let health = free_port()?;
    let args = vec![
        "--v=2".to_string(),
        "--leader-elect=true".to_string(),
        "--sync-period=15m".to_string(),
        format!("--namespace={NS}"),
        format!("--kubeconfig={}", env.kubeconfig.display()),
        format!("--health-probe-bind-address=127.0.0.1:{health}"),
        format!("--metrics-bind-address=127.0.0.1:{}", free_port()?),
    ];
    let envs = vec![
        ("MAAS_ENDPOINT".to_string(), env.sim.url()),
        ("MAAS_API_KEY".to_string(), env.sim.api_key().to_string()),
    ];
    let mut process = Component::spawn(
        "capi-provider",
        &manager_binary()?,
        &args,
        &envs,
        env.run_dir(),
    )?;
    let url = format!("http://127.0.0.1:{health}/healthz");
    for _ in 0..600 {
        process.check_running()?;
        if matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success()) {
            return Ok(process);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(process.not_ready("/healthz never answered 200".into()))
}

/// Samples the manager's usage every second until `until` resolves; returns the largest RSS seen.
async fn sampled<F: std::future::Future>(pid: u32, until: F) -> (F::Output, u64) {
    tokio::pin!(until);
    let mut largest = 0;
    loop {
        tokio::select! {
            out = &mut until => return (out, largest.max(usage(pid).rss_kib)),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                largest = largest.max(usage(pid).rss_kib);
            }
        }
    }
}

async fn run(args: &Args) -> Result<(), HarnessError> {
    let n = args.machines;
    let env = Env::start(EnvOptions {
        machines: n,
        gpu_machines: 0,
        start_manager: false,
        run_dir: args.run_dir.clone(),
        ..Default::default()
    })
    .await?;
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    let provider = start_provider(&env).await?;
    let pid = provider
        .id()
        .ok_or_else(|| HarnessError::Tools("the manager has no pid".into()))?;
    let idle = usage(pid);
    let text = cluster_yaml::cluster(CLUSTER, None) + &cluster_yaml::workers(CLUSTER, n);
    let objects = manifests::parse(&text, std::path::Path::new("bench"))?;
    let started = Instant::now();
    manifests::apply_all(&env.client, NS, &objects).await?;
    let limit = Duration::from_secs(120 + 3 * n as u64);
    let (running, provisioning_rss) =
        sampled(pid, wait_machines_running(&env.client, NS, n, limit)).await;
    running?;
    let to_running = started.elapsed();
    let at_running = usage(pid);
    let steady = Duration::from_secs(args.steady_seconds);
    let ((), steady_rss) = sampled(pid, tokio::time::sleep(steady)).await;
    let after_steady = usage(pid);
    let deleting = Instant::now();
    delete_cluster(&env, NS, CLUSTER).await?;
    let (freed, _) = sampled(pid, wait_until_free(&env, NS, CLUSTER, limit)).await;
    let leaked = freed?.leaked.len();
    print_figures(&Figures {
        machines: n,
        idle,
        to_running,
        provisioning_rss,
        at_running,
        steady,
        steady_rss,
        after_steady,
        deletion: deleting.elapsed(),
        leaked,
        end: usage(pid),
    });
    env.stop().await;
    Ok(())
}

/// What one run measured.
struct Figures {
    machines: usize,
    idle: Usage,
    to_running: Duration,
    provisioning_rss: u64,
    at_running: Usage,
    steady: Duration,
    steady_rss: u64,
    after_steady: Usage,
    deletion: Duration,
    leaked: usize,
    end: Usage,
}

fn print_figures(f: &Figures) {
    let n = f.machines;
    println!("capmaas-manager, {n} MaasMachines of one cluster in one namespace (--namespace)");
    println!(
        "  idle after start:        RSS {:.1} MiB",
        mib(f.idle.rss_kib)
    );
    println!(
        "  all {n} Running in:      {:.1} s (largest RSS sampled {:.1} MiB, CPU {:.1} s)",
        f.to_running.as_secs_f64(),
        mib(f.provisioning_rss),
        f.at_running.cpu_seconds
    );
    println!(
        "  {} s steady:             RSS {:.1} MiB (largest sampled {:.1} MiB), CPU {:.1} s in it",
        f.steady.as_secs(),
        mib(f.after_steady.rss_kib),
        mib(f.steady_rss),
        f.after_steady.cpu_seconds - f.at_running.cpu_seconds
    );
    println!(
        "  deletion:                {:.1} s, {} leaked",
        f.deletion.as_secs_f64(),
        f.leaked
    );
    println!(
        "  peak RSS (VmHWM):        {:.1} MiB; CPU {:.1} s in all",
        mib(f.end.peak_kib),
        f.end.cpu_seconds
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-memory: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
