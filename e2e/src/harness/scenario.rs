//! The quickstart scenario and the checks several end-to-end tests share: apply the sample
//! cluster, wait for its Machines, compare MAAS ownership with the Machines, and delete the
//! Cluster with zero leaks. Failed checks are errors, so the same scenario runs from any test.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use maas_sim::SimHandle;
use serde_json::{Value, json};

use super::audit;
use super::env::Env;
use super::error::HarnessError;
use super::manifests;
use super::observe::{self, wait_for};
use super::tools;

/// The sample's Cluster name.
pub const CLUSTER: &str = "demo";
/// The sample's MachineDeployment.
pub const WORKERS: &str = "demo-workers";
/// How long any one wait may take: generous, the machine is shared.
pub const LIMIT: Duration = Duration::from_secs(300);
/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(500);

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The harness or the API server failed, or a wait timed out.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The cluster reached a state the scenario rules out.
    #[error("check failed: {0}")]
    Check(String),
}

impl From<kube::Error> for ScenarioError {
    fn from(e: kube::Error) -> Self {
        Self::Harness(HarnessError::Kube(e))
    }
}

/// Fails with `message` unless `ok`.
pub fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), ScenarioError> {
    if ok {
        Ok(())
    } else {
        Err(ScenarioError::Check(message()))
    }
}

/// A Cluster API v1beta2 resource of `cluster.x-k8s.io`.
pub fn capi_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", kind),
        plural,
    )
}

/// The objects of `config/samples/quickstart-cluster.yaml`.
pub fn quickstart_sample() -> Result<Vec<Value>, HarnessError> {
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let text = std::fs::read_to_string(&sample).map_err(HarnessError::io("reading", &sample))?;
    manifests::parse(&text, &sample)
}

/// Creates the namespace and the workload kubeconfig Secret, then applies `objects` into it.
pub async fn apply_in_namespace(
    env: &Env,
    namespace: &str,
    objects: &[Value],
) -> Result<(), HarnessError> {
    env.namespace(namespace).await?;
    env.workload_kubeconfig_secret(namespace, CLUSTER).await?;
    manifests::apply_all(&env.client, namespace, objects).await
}

/// MAAS machines the simulator says someone owns.
pub fn owned_system_ids(sim: &SimHandle) -> BTreeSet<String> {
    sim.state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| m.system_id.clone())
        .collect()
}

/// The system id at the end of a `maas:///zone/system-id` providerID.
pub fn system_id_of(provider_id: &str) -> Option<&str> {
    provider_id.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The system ids behind a namespace's Machines (from their providerIDs).
pub async fn machine_system_ids(
    client: &kube::Client,
    namespace: &str,
) -> Result<BTreeSet<String>, HarnessError> {
    Ok(observe::machine_rows(client, namespace)
        .await?
        .into_iter()
        .filter_map(|r| r.provider_id)
        .filter_map(|p| system_id_of(&p).map(str::to_string))
        .collect())
}

/// Waits until MAAS owns exactly the machines behind the namespace's Machines (when it is the
/// only namespace using the simulator).
pub async fn wait_maas_holds_exactly_the_machines(
    env: &Env,
    namespace: &str,
) -> Result<(), HarnessError> {
    wait_for(
        &format!("MAAS to hold exactly the machines of {namespace}"),
        POLL,
        LIMIT,
        || async {
            let expected = machine_system_ids(&env.client, namespace).await?;
            let now = owned_system_ids(&env.sim);
            Ok((
                (now == expected).then_some(()),
                format!(
                    "{} owned, {} Machines with a MAAS machine",
                    now.len(),
                    expected.len()
                ),
            ))
        },
    )
    .await
}

/// Sets `spec.replicas` of the sample's MachineDeployment.
pub async fn scale_workers(
    client: &kube::Client,
    namespace: &str,
    replicas: u32,
) -> Result<(), HarnessError> {
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &capi_resource("MachineDeployment", "machinedeployments"),
    );
    deployments
        .patch(
            WORKERS,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    Ok(())
}

/// Deletes the Cluster `name` of `namespace` (its objects go by Cluster API's cascade).
pub async fn delete_cluster(env: &Env, namespace: &str, name: &str) -> Result<(), HarnessError> {
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        namespace,
        &capi_resource("Cluster", "clusters"),
    );
    clusters.delete(name, &DeleteParams::default()).await?;
    Ok(())
}

/// Deletes the Cluster, waits until every Machine, MaasMachine, MaasCluster and Cluster of the
/// namespace is gone, then until every MAAS machine is Ready with no owner and the cluster's DNS
/// record is gone (zero leaks).
pub async fn delete_cluster_without_leaks(env: &Env, namespace: &str) -> Result<(), HarnessError> {
    delete_cluster(env, namespace, CLUSTER).await?;
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        namespace,
        &capi_resource("Cluster", "clusters"),
    );
    let machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), namespace, &observe::machines_resource());
    let maas_machines: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        namespace,
        &observe::maas_machines_resource(),
    );
    let maas_clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        namespace,
        &observe::maas_clusters_resource(),
    );
    let lp = ListParams::default();
    wait_for(
        "the Cluster and all its objects to go",
        POLL,
        LIMIT,
        || async {
            let left = machines.list(&lp).await?.items.len()
                + maas_machines.list(&lp).await?.items.len()
                + maas_clusters.list(&lp).await?.items.len()
                + clusters.list(&lp).await?.items.len();
            Ok(((left == 0).then_some(()), format!("{left} objects left")))
        },
    )
    .await?;
    let free = audit::wait_until_free(env, namespace, CLUSTER, LIMIT).await?;
    if free.defects() > 0 {
        return Err(HarnessError::Timeout(format!(
            "a leak after the deletion: {free}"
        )));
    }
    Ok(())
}

/// The whole quickstart lifecycle in `namespace`: the sample's 3 control-plane Machines and 3
/// workers reach Running on MAAS machines; the DNS record holds the control plane's IPs; the
/// workers scale 3 -> 6 -> 1 with MAAS holding exactly the Machines' machines each time; deleting
/// the Cluster leaves no object and no MAAS machine behind.
pub async fn quickstart_lifecycle(env: &Env, namespace: &str) -> Result<(), ScenarioError> {
    apply_in_namespace(env, namespace, &quickstart_sample()?).await?;

    let rows = observe::wait_machines_running(&env.client, namespace, 6, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    ensure(
        rows.iter().all(|r| {
            r.provider_id
                .as_deref()
                .is_some_and(|p| p.starts_with("maas:///"))
        }),
        || format!("every Machine has a MAAS providerID: {rows:?}"),
    )?;
    let owned = owned_system_ids(&env.sim);
    let behind = machine_system_ids(&env.client, namespace).await?;
    ensure(owned == behind, || {
        format!("MAAS owns exactly the Machines: owned {owned:?}, Machines {behind:?}")
    })?;

    // The DNS record holds the control plane's IPs.
    let cp_ips: BTreeSet<String> = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| {
            rows.iter().any(|r| {
                r.name.starts_with(&format!("{CLUSTER}-cp-"))
                    && r.provider_id
                        .as_deref()
                        .and_then(system_id_of)
                        .is_some_and(|id| id == m.system_id)
            })
        })
        .flat_map(|m| m.ip_addresses.clone())
        .collect();
    ensure(cp_ips.len() == 3, || {
        format!("one IP per control-plane machine: {cp_ips:?}")
    })?;
    wait_for(
        "the DNS record to hold the 3 control-plane IPs",
        POLL,
        LIMIT,
        || {
            let cp_ips = cp_ips.clone();
            async move {
                let dns = env.sim.state().dnsresources;
                let record = dns
                    .iter()
                    .find(|d| d.fqdn.starts_with(&format!("{CLUSTER}-")));
                let ips: BTreeSet<String> = record
                    .map(|d| d.ip_addresses.iter().cloned().collect())
                    .unwrap_or_default();
                Ok(((ips == cp_ips).then_some(()), format!("{ips:?}")))
            }
        },
    )
    .await?;

    // Scale the workers 3 -> 6 -> 1.
    for (replicas, total) in [(6, 9), (1, 4)] {
        scale_workers(&env.client, namespace, replicas).await?;
        observe::wait_machines_running(&env.client, namespace, total, LIMIT).await?;
        wait_maas_holds_exactly_the_machines(env, namespace).await?;
    }

    delete_cluster_without_leaks(env, namespace).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_the_last_provider_id_segment() {
        assert_eq!(system_id_of("maas:///zone-a/abc123"), Some("abc123"));
        assert_eq!(system_id_of("maas:///abc123"), Some("abc123"));
        assert_eq!(system_id_of("maas:///zone-a/"), None);
    }

    #[test]
    fn ensure_reports_the_message_only_on_failure() {
        assert!(ensure(true, || "unused".into()).is_ok());
        let err = ensure(false, || "2 != 3".into()).unwrap_err();
        assert_eq!(err.to_string(), "check failed: 2 != 3");
    }

    #[test]
    fn the_sample_has_one_cluster_and_the_worker_deployment() {
        let objects = quickstart_sample().unwrap();
        let names = |kind: &str| -> Vec<&str> {
            objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .filter_map(|o| o["metadata"]["name"].as_str())
                .collect()
        };
        assert_eq!(names("Cluster"), vec![CLUSTER]);
        assert_eq!(names("MachineDeployment"), vec![WORKERS]);
        assert_eq!(names("MaasMachine").len(), 3);
    }
}
