//! MAAS acting and the answer never arriving, through the real API server and CAPI core: ten
//! workers are created while MAAS applies every allocate and deploy but loses the answers of
//! four of each (two by closing the connection, two by holding the answer past the client's
//! 30 s timeout): 8 of the 20 answers. The audit comes from MAAS's own state: one machine per MaasMachine, no machine
//! recorded twice, and nothing held once the cluster is deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use capmaas_e2e::harness::{audit, scenario};
use kube::api::{Api, DynamicObject, ListParams};
use maas_sim::{FaultConfig, FaultRule};

const NS: &str = "lost-answers";
const CLUSTER: &str = "lossy";
const WORKERS: usize = 10;
const LIMIT: Duration = Duration::from_secs(420);
const POLL: Duration = Duration::from_secs(1);
/// Longer than the client's request timeout: the client gives up, MAAS has acted.
const HOLD_MS: u64 = 31_000;
/// Answers of each op lost by closing the connection after MAAS acted.
const CLOSED: u32 = 2;
/// Answers of each op held past the client's timeout after MAAS acted.
const HELD: u32 = 2;

fn manifest() -> String {
    cluster_yaml::cluster(CLUSTER, None) + &cluster_yaml::workers(CLUSTER, WORKERS)
}

/// MAAS applies the call, then loses the answer: the first [`CLOSED`] calls by closing the
/// connection, the next [`HELD`] by holding it past the client's timeout.
fn losing(op: &str) -> FaultRule {
    FaultRule {
        lose_next: CLOSED,
        hold_next: HELD,
        hold_ms: HOLD_MS,
        ..FaultRule::on(op)
    }
}

/// The agent names the held machines carry: one per MaasMachine that allocated.
fn agent_names(env: &Env) -> BTreeSet<String> {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .filter_map(|m| m.agent_name.clone())
        .collect()
}

async fn all_ready(maas_machines: &Api<DynamicObject>) -> Result<(), HarnessError> {
    wait_for("every worker to be ready", POLL, LIMIT, || async {
        let ready = maas_machines
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|m| m.data["status"]["ready"].as_bool() == Some(true))
            .count();
        Ok((
            (ready == WORKERS).then_some(()),
            format!("{ready}/{WORKERS} ready"),
        ))
    })
    .await
}

async fn scenario(env: &Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.sim.set_faults(FaultConfig {
        rules: vec![losing("machines:allocate"), losing("machine:deploy")],
        ..Default::default()
    });
    env.sim.reset_requests();
    let objects = manifests::parse(&manifest(), std::path::Path::new("lost_answers.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    all_ready(&maas_machines).await?;
    let requests = env.sim.requests();
    let (allocates, deploys) = (
        requests.count_op("machines:allocate"),
        requests.count_op("machine:deploy"),
    );
    let closed = requests.count("machines:allocate", 0) + requests.count("machine:deploy", 0);
    let running = audit::audit(env, NS).await?;
    let running_agents = agent_names(env);
    eprintln!(
        "lost answers: {allocates} allocate and {deploys} deploy calls for {WORKERS} workers; \
         {closed} connections closed and {} answers held past the timeout after MAAS acted",
        2 * HELD
    );
    eprintln!(
        "  while running: {} agent names; {running}",
        running_agents.len()
    );
    env.sim.set_faults(FaultConfig::default());
    scenario::delete_cluster(env, NS, CLUSTER).await?;
    wait_for("every MaasMachine to go", POLL, LIMIT, || async {
        let left = maas_machines
            .list(&ListParams::default())
            .await?
            .items
            .len();
        Ok(((left == 0).then_some(()), format!("{left} left")))
    })
    .await?;
    let after = audit::audit(env, NS).await?;
    eprintln!("  after the cluster was deleted: {after}");
    assert_eq!(
        running.held.len(),
        WORKERS,
        "one machine per worker, no second allocation"
    );
    assert_eq!(
        running_agents.len(),
        WORKERS,
        "each held machine under its own worker"
    );
    assert_eq!(running.recorded.len(), WORKERS, "no machine recorded twice");
    assert!(
        running.recorded_twice.is_empty(),
        "no machine recorded twice"
    );
    assert_eq!(running.ledger.double_actions(), 0, "{running}");
    assert_eq!(after.held.len(), 0, "nothing leaked");
    Ok(())
}

#[tokio::test]
async fn lost_allocate_and_deploy_answers_leak_nothing_and_double_nothing() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: WORKERS + 6,
            gpu_machines: 0,
            deploy_seconds: 2.0,
            manager_args: vec!["--orphan-sweep-interval=0".to_string()],
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let result = scenario(&env).await;
    env.finish(result).await;
}
