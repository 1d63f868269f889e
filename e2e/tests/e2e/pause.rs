//! Pausing stops the provider from acting: a Cluster created paused gets no MAAS machine until it
//! is unpaused, and a running machine whose MaasMachine carries the paused annotation is not
//! released when that MaasMachine is deleted, until the annotation goes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::scenario::{
    CLUSTER, LIMIT, POLL, ScenarioError, apply_in_namespace, capi_resource,
    delete_cluster_without_leaks, ensure, owned_system_ids, quickstart_sample, system_id_of,
    wait_maas_holds_exactly_the_machines,
};
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use maas_sim::SimHandle;
use serde_json::{Value, json};

const NS: &str = "pause";
const PAUSED_ANNOTATION: &str = "cluster.x-k8s.io/paused";
/// How many polls (at `POLL` apart) a paused state is watched for before it is lifted.
const HOLD_POLLS: usize = 30;
/// The control-plane MaasMachine paused and deleted in the second half.
const TARGET: &str = "demo-cp-0";

fn maas_clusters(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "MaasCluster"),
            "maasclusters",
        ),
    )
}

fn maas_machines(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource())
}

/// The reason of the object's `Ready` condition when it is False.
fn ready_false_reason(obj: &DynamicObject) -> Option<&str> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "False")?
        .get("reason")?
        .as_str()
}

/// Whether the object's `Paused` condition (CAPI v1beta2 contract) is True.
fn paused_condition(obj: &DynamicObject) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Paused" && c["status"] == "True")
        })
}

/// Requests of `op` on the MAAS machine `system_id`.
fn machine_requests(sim: &SimHandle, op: &str, system_id: &str) -> usize {
    sim.requests()
        .log
        .iter()
        .filter(|r| r.op == op && r.path.contains(&format!("/machines/{system_id}/")))
        .count()
}

/// Sets or removes the paused annotation of a MaasMachine.
async fn annotate_paused(env: &Env, name: &str, paused: bool) -> Result<(), ScenarioError> {
    let value = if paused { json!("") } else { Value::Null };
    maas_machines(env)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {PAUSED_ANNOTATION: value}}})),
        )
        .await?;
    Ok(())
}

/// A Cluster created paused: the MaasMachines show Paused and MAAS is asked for nothing;
/// unpaused, every Machine reaches Running.
async fn paused_cluster_is_left_alone(env: &Env) -> Result<(), ScenarioError> {
    let mut objects = quickstart_sample()?;
    let cluster = objects
        .iter_mut()
        .find(|o| o["kind"] == "Cluster")
        .ok_or_else(|| ScenarioError::Check("the sample has a Cluster".into()))?;
    cluster["spec"]["paused"] = json!(true);
    apply_in_namespace(env, NS, &objects).await?;

    let machines = maas_machines(env);
    let clusters = maas_clusters(env);
    let lp = ListParams::default();
    // Every object names the pause, in its Ready reason and its Paused condition. The MaasCluster
    // has no owner yet (Cluster API does not reconcile a paused Cluster): it finds the Cluster
    // through its cluster-name label.
    wait_for(
        "the 3 MaasMachines and the MaasCluster to show Paused",
        POLL,
        LIMIT,
        || async {
            let objs = machines.list(&lp).await?.items;
            let paused = objs
                .iter()
                .filter(|o| ready_false_reason(o) == Some("Paused") && paused_condition(o))
                .count();
            let cluster_paused = clusters
                .list(&lp)
                .await?
                .items
                .iter()
                .filter(|c| ready_false_reason(c) == Some("Paused") && paused_condition(c))
                .count();
            Ok((
                (objs.len() == 3 && paused == 3 && cluster_paused == 1).then_some(()),
                format!(
                    "{paused}/{} MaasMachines paused, {cluster_paused} MaasCluster paused",
                    objs.len()
                ),
            ))
        },
    )
    .await?;

    // While paused, nothing moves: no allocation, no MAAS machine owned, no providerID.
    for _ in 0..HOLD_POLLS {
        let allocations = env.sim.requests().count_op("machines:allocate");
        ensure(allocations == 0, || {
            format!("no allocation while paused, saw {allocations}")
        })?;
        let owned = owned_system_ids(&env.sim);
        ensure(owned.is_empty(), || {
            format!("no MAAS machine owned while paused: {owned:?}")
        })?;
        let dns = env
            .sim
            .state()
            .dnsresources
            .iter()
            .filter(|d| d.fqdn.starts_with(&format!("{CLUSTER}-")))
            .count();
        ensure(dns == 0, || {
            format!("no DNS record while paused, saw {dns}")
        })?;
        for m in machines.list(&lp).await?.items {
            let name = m.name_any();
            ensure(m.data["spec"]["systemID"].is_null(), || {
                format!("{name} got no systemID while paused")
            })?;
            ensure(ready_false_reason(&m) == Some("Paused"), || {
                format!("{name} still shows Paused")
            })?;
        }
        tokio::time::sleep(POLL).await;
    }

    let clusters_api: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &capi_resource("Cluster", "clusters"),
    );
    clusters_api
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await?;
    let rows = observe::wait_machines_running(&env.client, NS, 6, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    wait_maas_holds_exactly_the_machines(env, NS).await?;
    let allocations = env.sim.requests().count_op("machines:allocate");
    ensure(allocations >= 6, || {
        format!("unpaused, every machine was allocated: {allocations} allocations")
    })?;
    Ok(())
}

/// A running machine whose MaasMachine is paused and deleted keeps its MAAS machine until the
/// pause is lifted; then the machine is released and the MaasMachine goes.
async fn paused_deletion_waits(env: &Env) -> Result<(), ScenarioError> {
    let machines = maas_machines(env);
    let target = machines.get(TARGET).await?;
    let system_id = target.data["spec"]["providerID"]
        .as_str()
        .and_then(system_id_of)
        .map(str::to_string)
        .ok_or_else(|| ScenarioError::Check(format!("{TARGET} has a providerID")))?;

    annotate_paused(env, TARGET, true).await?;
    wait_for(&format!("{TARGET} to show Paused"), POLL, LIMIT, || async {
        let m = machines.get(TARGET).await?;
        let reason = ready_false_reason(&m).map(str::to_string);
        Ok((
            (reason.as_deref() == Some("Paused")).then_some(()),
            format!("Ready=False reason {reason:?}"),
        ))
    })
    .await?;
    machines.delete(TARGET, &DeleteParams::default()).await?;

    for _ in 0..HOLD_POLLS {
        let m = machines.get_opt(TARGET).await?;
        ensure(
            m.as_ref()
                .is_some_and(|m| m.metadata.deletion_timestamp.is_some()),
            || format!("{TARGET} stays, marked for deletion, while paused"),
        )?;
        let state = env.sim.state();
        let maas = state
            .machine(&system_id)
            .ok_or_else(|| ScenarioError::Check(format!("{system_id} is in MAAS")))?;
        ensure(maas.owner.is_some() && maas.status == "Deployed", || {
            format!(
                "{system_id} stays Deployed and owned while paused: {} owner {:?}",
                maas.status, maas.owner
            )
        })?;
        let releases = machine_requests(&env.sim, "machine:release", &system_id);
        ensure(releases == 0, || {
            format!("no release of {system_id} while paused, saw {releases}")
        })?;
        tokio::time::sleep(POLL).await;
    }

    annotate_paused(env, TARGET, false).await?;
    wait_for(
        &format!("{TARGET} to go once unpaused"),
        POLL,
        LIMIT,
        || async {
            let left = machines.get_opt(TARGET).await?.is_some();
            Ok(((!left).then_some(()), format!("still there: {left}")))
        },
    )
    .await?;
    wait_for(
        &format!("{system_id} to be Ready with no owner"),
        POLL,
        LIMIT,
        || async {
            let state = env.sim.state();
            let m = state.machine(&system_id);
            let status = m.map(|m| (m.status.clone(), m.owner.clone()));
            let free = m.is_some_and(|m| m.status == "Ready" && m.owner.is_none());
            Ok((free.then_some(()), format!("{status:?}")))
        },
    )
    .await?;
    let releases = machine_requests(&env.sim, "machine:release", &system_id);
    ensure(releases >= 1, || {
        format!("{system_id} was released through the MAAS API")
    })?;
    Ok(())
}

async fn scenario(env: &Env) -> Result<(), ScenarioError> {
    paused_cluster_is_left_alone(env).await?;
    paused_deletion_waits(env).await?;
    delete_cluster_without_leaks(env, NS).await?;
    Ok(())
}

#[tokio::test]
async fn paused_objects_are_not_acted_on_until_unpaused() {
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
