//! Per-cluster credentials end to end: two clusters in one namespace, each naming in
//! `identityRef` a Secret for its own MAAS (two simulated sites, each with its own key and
//! subnet). Each cluster's machines come from its own MAAS and none from the manager's own;
//! each Secret carries the identity finalizer and the label that lets `clusterctl move` carry
//! it whatever its name; deleting the clusters releases every machine in the MAAS it came from
//! and lets go of the Secrets.

use std::collections::BTreeSet;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use maas_sim::SimHandle;

const NS: &str = "identity-sites";
const WORKERS: usize = 2;
const LIMIT: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(500);
const FINALIZER: &str = "infrastructure.cluster.x-k8s.io/maas-identity-in-use";
const MOVE_LABEL: &str = "clusterctl.cluster.x-k8s.io/move";

/// A cluster with `WORKERS` workers whose credentials Secret `secret` names `maas`.
fn site(cluster: &str, secret: &str, maas: &SimHandle) -> String {
    let credentials = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {secret}\nstringData:\n  MAAS_ENDPOINT: \"{}\"\n  MAAS_API_KEY: \"{}\"\n",
        maas.url(),
        maas.api_key()
    );
    let workers: String = (0..WORKERS)
        .map(|i| cluster_yaml::worker(cluster, &format!("{cluster}-{i}"), 1))
        .collect();
    credentials + &cluster_yaml::cluster(cluster, Some(secret)) + &workers
}

/// System ids of the machines MAAS says someone owns.
fn held(maas: &SimHandle) -> BTreeSet<String> {
    maas.state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| m.system_id.clone())
        .collect()
}

fn allocations(maas: &SimHandle) -> u64 {
    maas.requests()
        .counts
        .get("machines:allocate")
        .map(|codes| codes.values().sum())
        .unwrap_or(0)
}

/// The system ids behind the MaasMachines of `cluster` (the last part of their provider IDs).
async fn system_ids_of(env: &Env, cluster: &str) -> Result<BTreeSet<String>, HarnessError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    let lp = ListParams::default().labels(&format!("cluster.x-k8s.io/cluster-name={cluster}"));
    Ok(api
        .list(&lp)
        .await?
        .items
        .iter()
        .filter_map(|m| m.data["spec"]["providerID"].as_str())
        .filter_map(|id| id.rsplit('/').next().map(str::to_string))
        .collect())
}

async fn check_secret(env: &Env, name: &str, protected: bool) -> Result<(), HarnessError> {
    let secret = Api::<Secret>::namespaced(env.client.clone(), NS)
        .get(name)
        .await?;
    let finalizers = secret.metadata.finalizers.unwrap_or_default();
    assert_eq!(
        finalizers.iter().any(|f| f == FINALIZER),
        protected,
        "{name}: finalizer {finalizers:?}"
    );
    let labels = secret.metadata.labels.unwrap_or_default();
    assert!(labels.contains_key(MOVE_LABEL), "{name}: labels {labels:?}");
    Ok(())
}

async fn delete_clusters(env: &Env, names: &[&str]) -> Result<(), HarnessError> {
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
            "clusters",
        ),
    );
    for name in names {
        clusters.delete(name, &DeleteParams::default()).await?;
    }
    let maas_clusters: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    wait_for("both clusters to go", POLL, LIMIT, || async {
        let left = clusters.list(&ListParams::default()).await?.items.len()
            + maas_clusters
                .list(&ListParams::default())
                .await?
                .items
                .len();
        Ok(((left == 0).then_some(()), format!("{left} clusters left")))
    })
    .await?;
    Ok(())
}

async fn scenario(env: &Env, east: &SimHandle, west: &SimHandle) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    for cluster in ["east", "west"] {
        env.workload_kubeconfig_secret(NS, cluster).await?;
    }
    let text = site("east", "maas-east", east) + &site("west", "site-b-maas", west);
    let objects = manifests::parse(&text, std::path::Path::new("identity_sites.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let rows = observe::wait_machines_running(&env.client, NS, 2 * WORKERS, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));

    assert_eq!(
        system_ids_of(env, "east").await?,
        held(east),
        "east's machines are east's MAAS's"
    );
    assert_eq!(
        system_ids_of(env, "west").await?,
        held(west),
        "west's machines are west's MAAS's"
    );
    assert_eq!(held(east).len(), WORKERS);
    assert_eq!(held(west).len(), WORKERS);
    assert!(
        held(&env.sim).is_empty(),
        "nothing from the manager's own MAAS"
    );
    assert_eq!(
        allocations(&env.sim),
        0,
        "the manager's own key was never used to allocate"
    );
    for secret in ["maas-east", "site-b-maas"] {
        check_secret(env, secret, true).await?;
    }

    delete_clusters(env, &["east", "west"]).await?;
    assert!(
        held(east).is_empty() && held(west).is_empty(),
        "every machine released where it came from"
    );
    for secret in ["maas-east", "site-b-maas"] {
        check_secret(env, secret, false).await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_clusters_on_two_maas_sites_each_use_their_own_credentials() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 1,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let east = env
        .other_maas(&format!("{NS}-east"), WORKERS, "10.30.0.0/24")
        .await
        .unwrap();
    let west = env
        .other_maas(&format!("{NS}-west"), WORKERS, "10.40.0.0/24")
        .await
        .unwrap();
    let result = scenario(&env, &east, &west).await;
    for maas in [east, west] {
        maas.shutdown().await.unwrap();
    }
    env.finish(result).await;
}
