//! A MachineHealthCheck remediates a worker whose Node is deleted: Cluster API deletes the
//! Machine, our provider releases its MAAS machine, and a replacement reaches Running, with MAAS
//! holding exactly the Machines' machines afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use capmaas_e2e::harness::manifests;
use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::scenario::{
    CLUSTER, LIMIT, POLL, ScenarioError, apply_in_namespace, delete_cluster_without_leaks, ensure,
    machine_system_ids, owned_system_ids, quickstart_sample, system_id_of,
    wait_maas_holds_exactly_the_machines,
};
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::json;

const NS: &str = "mhc";
const MHC: &str = "demo-workers-health";
const WORKER_PREFIX: &str = "demo-workers-";

/// Requests of `op` on the MAAS machine `system_id`.
fn machine_requests(env: &Env, op: &str, system_id: &str) -> usize {
    env.sim
        .requests()
        .log
        .iter()
        .filter(|r| r.op == op && r.path.contains(&format!("/machines/{system_id}/")))
        .count()
}

fn health_check() -> serde_json::Value {
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineHealthCheck",
        "metadata": {"name": MHC},
        "spec": {
            "clusterName": CLUSTER,
            "selector": {"matchLabels": {"pool": "workers"}},
            "checks": {
                "unhealthyNodeConditions": [
                    {"type": "Ready", "status": "Unknown", "timeoutSeconds": 30},
                    {"type": "Ready", "status": "False", "timeoutSeconds": 30}
                ]
            }
        }
    })
}

async fn worker_names(env: &Env) -> Result<BTreeSet<String>, ScenarioError> {
    Ok(observe::machine_rows(&env.client, NS)
        .await?
        .into_iter()
        .filter(|r| r.name.starts_with(WORKER_PREFIX))
        .map(|r| r.name)
        .collect())
}

async fn scenario(env: &Env) -> Result<(), ScenarioError> {
    apply_in_namespace(env, NS, &quickstart_sample()?).await?;
    observe::wait_machines_running(&env.client, NS, 6, LIMIT).await?;
    wait_maas_holds_exactly_the_machines(env, NS).await?;

    let mhc = health_check();
    manifests::apply_all(&env.client, NS, std::slice::from_ref(&mhc)).await?;
    let checks = manifests::api_for(&env.client, NS, &mhc);
    wait_for(
        "the MachineHealthCheck to see 3 healthy workers",
        POLL,
        LIMIT,
        || async {
            let status = checks.get(MHC).await?.data["status"].clone();
            let expected = status["expectedMachines"].as_i64();
            let healthy = status["currentHealthy"].as_i64();
            Ok((
                (expected == Some(3) && healthy == Some(3)).then_some(()),
                format!("expected {expected:?}, healthy {healthy:?}"),
            ))
        },
    )
    .await?;

    // Pick a worker and delete its Node.
    let rows = observe::machine_rows(&env.client, NS).await?;
    let victim = rows
        .iter()
        .find(|r| r.name.starts_with(WORKER_PREFIX) && r.node.is_some())
        .cloned()
        .ok_or_else(|| ScenarioError::Check("a worker bound to a Node".into()))?;
    let system_id = victim
        .provider_id
        .as_deref()
        .and_then(system_id_of)
        .map(str::to_string)
        .ok_or_else(|| ScenarioError::Check(format!("{} has a providerID", victim.name)))?;
    let machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::machines_resource());
    let infra = machines.get(&victim.name).await?.data["spec"]["infrastructureRef"]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ScenarioError::Check(format!("{} has an infrastructureRef", victim.name)))?;
    let node = victim.node.clone().unwrap_or_default();
    eprintln!(
        "deleting Node {node} of {} ({infra}, MAAS {system_id})",
        victim.name
    );
    ensure(
        machine_requests(env, "machine:release", &system_id) == 0,
        || format!("{system_id} not released before its Node goes"),
    )?;
    Api::<Node>::all(env.client.clone())
        .delete(&node, &DeleteParams::default())
        .await?;

    // Cluster API remediates: the Machine and its MaasMachine go, the MAAS machine is released.
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    wait_for(
        &format!("{} and {infra} to be deleted", victim.name),
        POLL,
        LIMIT,
        || async {
            let machine = machines.get_opt(&victim.name).await?.is_some();
            let maas_machine = maas_machines.get_opt(&infra).await?.is_some();
            Ok((
                (!machine && !maas_machine).then_some(()),
                format!("Machine left: {machine}, MaasMachine left: {maas_machine}"),
            ))
        },
    )
    .await?;
    let releases = machine_requests(env, "machine:release", &system_id);
    ensure(releases >= 1, || {
        format!("{system_id} was released through the MAAS API, saw {releases} releases")
    })?;

    // A replacement reaches Running, and MAAS holds exactly the Machines' machines: the released
    // one is free again unless a replacement took it.
    let rows = observe::wait_machines_running(&env.client, NS, 6, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    let workers = worker_names(env).await?;
    ensure(
        workers.len() == 3 && !workers.contains(&victim.name),
        || format!("3 workers without {}: {workers:?}", victim.name),
    )?;
    wait_maas_holds_exactly_the_machines(env, NS).await?;
    let in_use = machine_system_ids(&env.client, NS).await?;
    let state = env.sim.state();
    let released = state
        .machine(&system_id)
        .ok_or_else(|| ScenarioError::Check(format!("{system_id} is in MAAS")))?;
    ensure(
        in_use.contains(&system_id) || (released.status == "Ready" && released.owner.is_none()),
        || {
            format!(
                "{system_id} is Ready with no owner, or a replacement's: {} owner {:?}",
                released.status, released.owner
            )
        },
    )?;
    ensure(owned_system_ids(&env.sim).len() == 6, || {
        "MAAS owns 6 machines".into()
    })?;

    checks.delete(MHC, &DeleteParams::default()).await?;
    delete_cluster_without_leaks(env, NS).await?;
    Ok(())
}

#[tokio::test]
async fn machine_health_check_replaces_a_worker_whose_node_is_deleted() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 10,
            gpu_machines: 2,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    if let Err(e) = scenario(&env).await {
        panic!("{e}");
    }
    env.stop().await;
}
