//! MAAS restarted mid-run: the simulator is stopped (open connections cut, state written to
//! its file) and started again from that file, twice, first while machines deploy and then
//! while the rest finish. Every Machine reaches Running, MAAS's ledger shows one allocation and
//! one deployment per worker, and deleting the cluster leaves every machine free.

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use capmaas_e2e::harness::{audit, scenario};

const NS: &str = "maas-restart";
const CLUSTER: &str = "restarted";
const WORKERS: usize = 6;
const DOWN: Duration = Duration::from_secs(4);
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(500);

/// Waits until at least `n` machines are in `status`, then restarts MAAS.
async fn restart_when(env: &mut Env, status: &str, n: usize) -> Result<u64, HarnessError> {
    wait_for(&format!("{n} machines {status}"), POLL, LIMIT, || async {
        let now = env.sim.state().in_status(status);
        Ok(((now >= n).then_some(()), format!("{now} {status}")))
    })
    .await?;
    let before = env.sim.requests().total;
    env.restart_sim(DOWN).await?;
    let state = env.sim.state();
    eprintln!(
        "MAAS restarted after {before} requests, down {DOWN:?}: {} Deploying, {} Deployed",
        state.in_status("Deploying"),
        state.in_status("Deployed")
    );
    Ok(before)
}

async fn scenario(env: &mut Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    let text = cluster_yaml::cluster(CLUSTER, None) + &cluster_yaml::workers(CLUSTER, WORKERS);
    let objects = manifests::parse(&text, std::path::Path::new("maas_restart.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let mut requests = restart_when(env, "Deploying", 2).await?;
    requests += restart_when(env, "Deployed", 1).await?;
    let back = std::time::Instant::now();
    observe::wait_machines_running(&env.client, NS, WORKERS, LIMIT).await?;
    requests += env.sim.requests().total;
    let running = audit::audit(env, NS).await?;
    eprintln!(
        "after two MAAS restarts ({requests} MAAS requests): every Machine Running {:.1} s after \
         the second; {running}",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(running.defects(), 0, "{running}");
    assert_eq!(running.held.len(), WORKERS, "one machine per worker");
    assert_eq!(
        (running.ledger.acquisitions, running.ledger.deployments),
        (WORKERS, WORKERS),
        "one allocation and one deployment per worker across the restarts"
    );

    scenario::delete_cluster(env, NS, CLUSTER).await?;
    let after = audit::wait_until_free(env, NS, CLUSTER, LIMIT).await?;
    assert_eq!(after.defects(), 0, "{after}");
    Ok(())
}

#[tokio::test]
async fn maas_restarted_mid_deployment_every_machine_converges() {
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: WORKERS + 2,
            gpu_machines: 0,
            deploy_seconds: 15.0,
            sim_state_file: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let result = scenario(&mut env).await;
    env.finish(result).await;
}
