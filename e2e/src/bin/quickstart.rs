//! `make quickstart`: the whole stack on this machine (etcd, kube-apiserver,
//! kube-controller-manager, Cluster API core, the MAAS simulator and our manager), a sample
//! cluster applied, a live table until every Machine is Running, then instructions; runs until
//! Ctrl-C.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capmaas_e2e::harness::observe::{machine_rows, render_table};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, manifests, tools};
use clap::Parser;

/// Flags of the quickstart.
#[derive(Debug, Parser)]
#[command(about = "Run capmaas-rs with Cluster API and a MAAS simulator on this machine")]
struct Args {
    /// Plain machines in the simulated MAAS.
    #[arg(long, default_value_t = 8)]
    machines: usize,
    /// GPU machines in the simulated MAAS.
    #[arg(long, default_value_t = 4)]
    gpu_machines: usize,
    /// Seconds a simulated deployment takes.
    #[arg(long, default_value_t = 5.0)]
    deploy_seconds: f64,
    /// Where logs, certificates and the kubeconfig go.
    #[arg(long, default_value = "target/quickstart")]
    run_dir: PathBuf,
    /// Namespace of the sample cluster.
    #[arg(long, default_value = "demo")]
    namespace: String,
    /// Exit once every Machine is Running instead of serving until Ctrl-C.
    #[arg(long)]
    exit_when_running: bool,
}

const EXPECTED_MACHINES: usize = 6;

async fn run(args: &Args) -> Result<(), HarnessError> {
    let started = Instant::now();
    let run_dir =
        std::path::absolute(&args.run_dir).map_err(HarnessError::io("resolving", &args.run_dir))?;
    // A previous run's etcd data would resurrect its objects against a fresh simulator.
    let _ = std::fs::remove_dir_all(&run_dir);
    println!("==> starting etcd, kube-apiserver, kube-controller-manager, Cluster API core,");
    println!(
        "    the MAAS simulator ({} machines, {} with GPUs) and capmaas-manager; logs in {}",
        args.machines + args.gpu_machines,
        args.gpu_machines,
        run_dir.display()
    );
    let env = Env::start(EnvOptions {
        machines: args.machines,
        gpu_machines: args.gpu_machines,
        deploy_seconds: args.deploy_seconds,
        run_dir: Some(run_dir.clone()),
        ..Default::default()
    })
    .await?;
    println!(
        "==> environment up after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    env.namespace(&args.namespace).await?;
    env.workload_kubeconfig_secret(&args.namespace, "demo")
        .await?;
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let text = std::fs::read_to_string(&sample).map_err(HarnessError::io("reading", &sample))?;
    manifests::apply_all(
        &env.client,
        &args.namespace,
        &manifests::parse(&text, &sample)?,
    )
    .await?;
    println!(
        "==> applied {} into namespace {}; waiting for {EXPECTED_MACHINES} Machines to be Running",
        sample.display(),
        args.namespace
    );

    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows = machine_rows(&env.client, &args.namespace).await?;
        let running = rows.iter().filter(|r| r.phase == "Running").count();
        let table = render_table(&rows);
        if table != last {
            println!(
                "\n[{:>5.1}s] {running}/{EXPECTED_MACHINES} Machines Running\n{table}",
                started.elapsed().as_secs_f64()
            );
            last = table;
        }
        if running == EXPECTED_MACHINES && rows.len() == EXPECTED_MACHINES {
            break;
        }
        if Instant::now() > deadline {
            env.print_logs(40);
            return Err(HarnessError::Timeout(format!(
                "{EXPECTED_MACHINES} Machines Running (logs in {})",
                run_dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    println!(
        "==> all {EXPECTED_MACHINES} Machines Running after {:.1}s\n",
        started.elapsed().as_secs_f64()
    );
    println!("Use it:");
    println!("  export KUBECONFIG={}", env.kubeconfig.display());
    println!(
        "  {}/kubectl get clusters,machines,maasmachines -n {}",
        tools::bin_dir()?.display(),
        args.namespace
    );
    println!(
        "  curl -s {}api/2.0/version/   # the simulated MAAS",
        env.sim.url()
    );
    println!("  MAAS API key: {}", env.sim.api_key());
    println!(
        "  curl -s http://{}/_sim/state   # every MAAS machine",
        env.sim.addr()
    );
    if args.exit_when_running {
        env.stop().await;
        return Ok(());
    }
    println!("\nPress Ctrl-C to stop everything.");
    let _ = tokio::signal::ctrl_c().await;
    println!("==> stopping");
    env.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args).await {
        eprintln!("quickstart failed: {e}");
        std::process::exit(1);
    }
}
