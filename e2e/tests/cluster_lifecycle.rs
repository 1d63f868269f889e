//! The quickstart cluster end to end, driven by the real Cluster API core: every Machine reaches
//! Running, the MAAS DNS record follows the control plane, the MachineDeployment scales up and
//! down, and deleting the Cluster leaves no MAAS machine behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, manifests, tools};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

const NS: &str = "lifecycle";
const LIMIT: Duration = Duration::from_secs(300);

fn capi(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", kind),
        plural,
    )
}

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

/// The system ids behind the namespace's Machines (from their providerIDs).
async fn machine_system_ids(env: &Env) -> BTreeSet<String> {
    observe::machine_rows(&env.client, NS)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.provider_id)
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect()
}

async fn scenario(env: &Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, "demo").await?;
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let objects = manifests::parse(&std::fs::read_to_string(&sample).unwrap(), &sample)?;
    manifests::apply_all(&env.client, NS, &objects).await?;

    // 3 control-plane Machines and 3 workers reach Running.
    let rows = observe::wait_machines_running(&env.client, NS, 6, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    assert!(rows.iter().all(|r| {
        r.provider_id
            .as_deref()
            .is_some_and(|p| p.starts_with("maas:///"))
    }));
    assert_eq!(
        owned(env),
        machine_system_ids(env).await,
        "MAAS owns exactly the Machines"
    );

    // The DNS record holds the control plane's IPs.
    let cp_ips: BTreeSet<String> = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| {
            rows.iter().any(|r| {
                r.name.starts_with("demo-cp-")
                    && r.provider_id
                        .as_deref()
                        .is_some_and(|p| p.ends_with(&m.system_id))
            })
        })
        .flat_map(|m| m.ip_addresses.clone())
        .collect();
    assert_eq!(cp_ips.len(), 3, "one IP per control-plane machine");
    wait_for(
        "the DNS record to hold the 3 control-plane IPs",
        Duration::from_millis(500),
        LIMIT,
        || {
            let cp_ips = cp_ips.clone();
            async move {
                let dns = env.sim.state().dnsresources;
                let record = dns.iter().find(|d| d.fqdn.starts_with("demo-"));
                let ips: BTreeSet<String> = record
                    .map(|d| d.ip_addresses.iter().cloned().collect())
                    .unwrap_or_default();
                Ok(((ips == cp_ips).then_some(()), format!("{ips:?}")))
            }
        },
    )
    .await?;

    // Scale the workers 3 -> 6 -> 1.
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &capi("MachineDeployment", "machinedeployments"),
    );
    for (replicas, total) in [(6, 9), (1, 4)] {
        deployments
            .patch(
                "demo-workers",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await?;
        observe::wait_machines_running(&env.client, NS, total, LIMIT).await?;
        let expected = machine_system_ids(env).await;
        wait_for(
            &format!("MAAS to hold exactly the {total} machines"),
            Duration::from_millis(500),
            LIMIT,
            || {
                let expected = expected.clone();
                async move {
                    let now = owned(env);
                    Ok((
                        (now == expected).then_some(()),
                        format!("{} owned", now.len()),
                    ))
                }
            },
        )
        .await?;
    }

    // Delete the Cluster: everything goes, and MAAS is back to all Ready with no owner.
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &capi("Cluster", "clusters"));
    clusters.delete("demo", &DeleteParams::default()).await?;
    let machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::machines_resource());
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    wait_for(
        "the Cluster and all its objects to go",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let left = machines.list(&ListParams::default()).await?.items.len()
                + maas_machines
                    .list(&ListParams::default())
                    .await?
                    .items
                    .len()
                + clusters.list(&ListParams::default()).await?.items.len();
            Ok(((left == 0).then_some(()), format!("{left} objects left")))
        },
    )
    .await?;
    wait_for(
        "every MAAS machine to be Ready with no owner",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let state = env.sim.state();
            let busy = state
                .machines
                .iter()
                .filter(|m| m.owner.is_some() || m.status != "Ready")
                .count();
            let dns = state
                .dnsresources
                .iter()
                .filter(|d| d.fqdn.starts_with("demo-"))
                .count();
            Ok((
                (busy == 0 && dns == 0).then_some(()),
                format!("{busy} machines busy, {dns} DNS records"),
            ))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn quickstart_cluster_runs_scales_and_deletes_without_leaks() {
    let env = Env::start(EnvOptions {
        machines: 10,
        gpu_machines: 2,
        ..Default::default()
    })
    .await
    .expect("environment starts");
    let result = scenario(&env).await;
    if let Err(e) = &result {
        env.print_logs(60);
        panic!("{e}");
    }
    env.stop().await;
}
