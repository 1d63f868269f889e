//! The manager killed with SIGKILL mid-flight, twice: right after its first allocate calls and
//! again while machines deploy. A fresh manager picks up from what the first one recorded:
//! every Machine reaches Running, MAAS holds exactly the Machines' machines (no leak, no double
//! allocation), and deleting the Cluster leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, manifests, tools};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use maas_sim::{FaultConfig, FaultRule};

const NS: &str = "restart";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(200);
const MACHINES: usize = 6;
const ALLOCATE: &str = "machines:allocate";

/// MAAS machines the simulator says someone owns.
fn owned(env: &Env) -> BTreeSet<String> {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| m.system_id.clone())
        .collect()
}

/// How many MAAS machines are in `status`.
fn in_status(env: &Env, status: &str) -> usize {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.status == status)
        .count()
}

/// The system ids behind the namespace's Machines (from their providerIDs).
async fn machine_system_ids(env: &Env) -> Result<BTreeSet<String>, HarnessError> {
    Ok(observe::machine_rows(&env.client, NS)
        .await?
        .into_iter()
        .filter_map(|r| r.provider_id)
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect())
}

/// Kills the running manager as a crash would and starts a fresh one.
async fn crash_and_restart(env: &mut Env, name: &str) -> Result<(), HarnessError> {
    if let Some(old) = env.manager.take() {
        old.kill().await;
    }
    eprintln!(
        "killed the manager: {} allocate answers so far, {} Allocated, {} Deploying, {} Deployed",
        env.sim.requests().count(ALLOCATE, 200),
        in_status(env, "Allocated"),
        in_status(env, "Deploying"),
        in_status(env, "Deployed"),
    );
    env.manager = Some(env.start_manager(name, &[]).await?);
    Ok(())
}

async fn scenario(env: &mut Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, "demo").await?;
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let objects = manifests::parse(&std::fs::read_to_string(&sample).unwrap(), &sample)?;
    // Owner data answers slowly, so the first crash lands after MAAS allocated machines and
    // before the manager finished claiming and deploying them.
    env.sim.set_faults(FaultConfig {
        rules: vec![FaultRule {
            latency_ms: 3000,
            ..FaultRule::on("machine:set_owner_data")
        }],
        ..Default::default()
    });
    env.sim.reset_requests();
    manifests::apply_all(&env.client, NS, &objects).await?;

    // Crash 1: as soon as MAAS has answered an allocate call.
    wait_for("the first allocate answer", POLL, LIMIT, || async {
        let n = env.sim.requests().count(ALLOCATE, 200);
        Ok(((n >= 1).then_some(()), format!("{n} allocated")))
    })
    .await?;
    let allocated_before_crash = in_status(env, "Allocated");
    env.sim.set_faults(FaultConfig::default());
    crash_and_restart(env, "capmaas-manager-2").await?;
    assert!(
        allocated_before_crash >= 1,
        "the first crash must land between allocate and deploy"
    );

    // Crash 2: while machines deploy.
    wait_for("a machine deploying", POLL, LIMIT, || async {
        let n = in_status(env, "Deploying");
        Ok(((n >= 1).then_some(()), format!("{n} deploying")))
    })
    .await?;
    crash_and_restart(env, "capmaas-manager-3").await?;

    let rows = observe::wait_machines_running(&env.client, NS, MACHINES, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    let ids = machine_system_ids(env).await?;
    assert_eq!(
        ids.len(),
        MACHINES,
        "every Machine has its own MAAS machine"
    );
    assert_eq!(owned(env), ids, "MAAS owns exactly the Machines' machines");
    let requests = env.sim.requests();
    eprintln!("MAAS requests by operation and code: {:?}", requests.counts);
    assert_eq!(
        requests.count(ALLOCATE, 200),
        MACHINES as u64,
        "one successful allocation per Machine, none repeated after a crash"
    );

    // The worker template advertises one machine's capacity for scale-from-zero.
    let templates: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "infrastructure.cluster.x-k8s.io",
                "v1beta1",
                "MaasMachineTemplate",
            ),
            "maasmachinetemplates",
        ),
    );
    let template_status = wait_for("the worker template's capacity", POLL, LIMIT, || async {
        let t = templates.get("demo-worker").await?;
        let status = t.data["status"].clone();
        let done = !status["capacity"].is_null();
        Ok((done.then_some(status.clone()), format!("{status}")))
    })
    .await?;
    // The capacity is the smallest Ready MAAS machine that matches (which machines are still
    // free depends on the allocations so far), never less than the spec's minimums.
    let number = |key: &str| {
        let text = template_status["capacity"][key]
            .as_str()
            .unwrap_or_default();
        text.trim_end_matches("Mi").parse::<u64>().unwrap_or(0)
    };
    assert!(
        number("cpu") >= 1 && number("memory") >= 2048,
        "{template_status}"
    );
    assert_eq!(
        template_status["nodeInfo"],
        serde_json::json!({"architecture": "amd64", "operatingSystem": "linux"})
    );
    assert!(
        template_status["availableMachines"].as_i64().is_some(),
        "{template_status}"
    );
    assert_eq!(
        template_status["conditions"][0]["type"], "MachinesAvailable",
        "{template_status}"
    );

    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
            "clusters",
        ),
    );
    clusters.delete("demo", &DeleteParams::default()).await?;
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    wait_for("the MaasMachines to go", POLL, LIMIT, || async {
        let left = maas_machines
            .list(&ListParams::default())
            .await?
            .items
            .len();
        Ok(((left == 0).then_some(()), format!("{left} left")))
    })
    .await?;
    wait_for(
        "every MAAS machine to be Ready with no owner",
        POLL,
        LIMIT,
        || async {
            let state = env.sim.state();
            let busy = state
                .machines
                .iter()
                .filter(|m| m.owner.is_some() || m.status != "Ready")
                .count();
            Ok(((busy == 0).then_some(()), format!("{busy} busy")))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn killed_managers_leave_no_leak_and_no_double_allocation() {
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 10,
            gpu_machines: 0,
            // Long enough for the second crash to land while machines deploy.
            deploy_seconds: 8.0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    if let Err(e) = scenario(&mut env).await {
        panic!("{e}");
    }
    env.stop().await;
}
