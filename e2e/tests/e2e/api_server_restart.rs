//! The management cluster's API server restarted mid-run: etcd and kube-apiserver are stopped
//! and started again on the same ports and data, once while machines provision and once while
//! the cluster is deleted. The manager (and CAPI core) reconnect by themselves; every Machine
//! reaches Running, MAAS's ledger shows one allocation and one deployment per worker, and the
//! deletion leaves every machine free.

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use capmaas_e2e::harness::{audit, scenario};

const NS: &str = "api-restart";
const CLUSTER: &str = "outage";
const WORKERS: usize = 5;
const DOWN: Duration = Duration::from_secs(5);
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(500);

fn deploying(env: &Env) -> usize {
    env.sim.state().in_status("Deploying")
}

fn releases_started(env: &Env) -> usize {
    maas_sim::ledger::audit(&env.sim.ledger()).releases
}

/// Waits until `progress` counts at least one, then restarts the API server.
async fn restart_when(
    env: &mut Env,
    what: &str,
    progress: fn(&Env) -> usize,
) -> Result<(), HarnessError> {
    wait_for(what, POLL, LIMIT, || async {
        let n = progress(env);
        Ok(((n >= 1).then_some(()), format!("{n}")))
    })
    .await?;
    env.restart_api_server(DOWN).await?;
    eprintln!("API server restarted (down {DOWN:?}) after {what}");
    Ok(())
}

async fn scenario(env: &mut Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    let text = cluster_yaml::cluster(CLUSTER, None) + &cluster_yaml::workers(CLUSTER, WORKERS);
    let objects = manifests::parse(&text, std::path::Path::new("api_server_restart.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    restart_when(env, "a machine deploying", deploying).await?;
    observe::wait_machines_running(&env.client, NS, WORKERS, LIMIT).await?;
    let running = audit::audit(env, NS).await?;
    eprintln!("after the restart: {running}");
    assert_eq!(running.defects(), 0, "{running}");
    assert_eq!(
        (running.ledger.acquisitions, running.ledger.deployments),
        (WORKERS, WORKERS),
        "one allocation and one deployment per worker across the restart"
    );

    scenario::delete_cluster(env, NS, CLUSTER).await?;
    restart_when(env, "the first release", releases_started).await?;
    let after = audit::wait_until_free(env, NS, CLUSTER, LIMIT).await?;
    eprintln!("after the deletion: {after}");
    assert_eq!(after.defects(), 0, "{after}");
    assert_eq!(
        after.ledger.releases, WORKERS,
        "one release per machine, none repeated after the restart"
    );
    Ok(())
}

#[tokio::test]
async fn api_server_restarts_lose_nothing_and_repeat_nothing() {
    let Some(mut env) = TestEnv::own(
        NS,
        EnvOptions {
            machines: WORKERS + 2,
            gpu_machines: 0,
            deploy_seconds: 4.0,
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
