//! Two manager replicas with leader election, the leader killed with SIGKILL while machines
//! provision: the standby is Ready while it waits (so a rolling update completes), takes the
//! Lease within its duration (plus one renewal period of the waiting replica) and finishes the
//! work, and MAAS's ledger shows no double action.

use std::time::{Duration, Instant};

use capmaas_controllers::runtime::leader::{LEASE_DURATION_SECONDS, LEASE_GRACE_SECONDS};
use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, Manager, TestEnv};
use capmaas_e2e::harness::{audit, cluster_yaml, manifests, scenario};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

const NS: &str = "leader-failover";
const CLUSTER: &str = "failover";
const LEASE: &str = "controller-leader-election-capmaas";
const WORKERS: usize = 5;
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(200);

fn identity(manager: &Manager) -> String {
    format!("capmaas-{}", manager.process.id().unwrap_or_default())
}

async fn holder(env: &Env) -> Result<Option<String>, HarnessError> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    Ok(leases
        .get_opt(LEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

async fn wait_holder(env: &Env, who: &str, limit: Duration) -> Result<(), HarnessError> {
    wait_for(&format!("{who} to hold the Lease"), POLL, limit, || async {
        let now = holder(env).await?;
        Ok((
            (now.as_deref() == Some(who)).then_some(()),
            format!("{now:?}"),
        ))
    })
    .await
}

async fn scenario(env: &mut Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    let args = ["--leader-elect".to_string()];
    let leader = env.start_manager("capmaas-manager-a", &args).await?;
    wait_holder(env, &identity(&leader), LIMIT).await?;
    let standby = env.start_manager("capmaas-manager-b", &args).await?;
    // A standby is Ready, or a rolling update with maxUnavailable 0 would never finish.
    wait_for("the standby to be Ready", POLL, LIMIT, || async {
        let ready = standby.is_ready().await;
        Ok((ready.then_some(()), format!("ready: {ready}")))
    })
    .await?;
    assert_ne!(
        holder(env).await?.as_deref(),
        Some(identity(&standby).as_str()),
        "Ready while standing by, not leading"
    );

    let text = cluster_yaml::cluster(CLUSTER, None) + &cluster_yaml::workers(CLUSTER, WORKERS);
    let objects = manifests::parse(&text, std::path::Path::new("leader_failover.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    wait_for("a machine deploying", POLL, LIMIT, || async {
        let n = env.sim.state().in_status("Deploying");
        Ok(((n >= 1).then_some(()), format!("{n} deploying")))
    })
    .await?;
    let takeover = kill_the_leader(env, leader, &standby).await?;
    env.manager = Some(standby);
    assert!(
        takeover <= Duration::from_secs(LEASE_DURATION_SECONDS + LEASE_GRACE_SECONDS),
        "takeover within the lease duration and one retry: {takeover:?}"
    );
    observe::wait_machines_running(&env.client, NS, WORKERS, LIMIT).await?;
    let running = audit::audit(env, NS).await?;
    eprintln!("after the failover: {running}");
    assert_eq!(running.defects(), 0, "{running}");
    assert_eq!(
        (running.ledger.acquisitions, running.ledger.deployments),
        (WORKERS, WORKERS),
        "one allocation and one deployment per worker across the failover"
    );
    scenario::delete_cluster(env, NS, CLUSTER).await?;
    let after = audit::wait_until_free(env, NS, CLUSTER, LIMIT).await?;
    assert_eq!(after.defects(), 0, "{after}");
    Ok(())
}

/// Kills the leader with SIGKILL and returns how long the standby took to hold the Lease.
async fn kill_the_leader(
    env: &Env,
    leader: Manager,
    standby: &Manager,
) -> Result<Duration, HarnessError> {
    let requests_before = env.sim.requests().total;
    leader.kill().await;
    let killed = Instant::now();
    wait_holder(env, &identity(standby), LIMIT).await?;
    let takeover = killed.elapsed();
    eprintln!(
        "leader killed after {requests_before} MAAS requests; the standby held the Lease {:.1} s later",
        takeover.as_secs_f64()
    );
    Ok(takeover)
}

#[tokio::test]
async fn the_standby_takes_over_a_killed_leader_and_nothing_is_done_twice() {
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            start_manager: false,
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
