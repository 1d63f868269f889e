//! A GPU NodePool the way HyperShift's MAAS fork writes it: its NodePool platform has no GPU
//! field, so the template selects GPU machines by MAAS tag alone (tags survive every CRD shape),
//! and the template still reports the GPUs those machines hold, read from MAAS's inventory.
//! Run inside the HyperShift scenario of the 4.21 line (our CRDs, the hosted credentials
//! Secret): the 4.20 installer's base-shape CRD declares no template status, so the API server
//! prunes it there (docs/gpu.md says what to set instead).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use capmaas_e2e::harness::observe::{machine_rows, wait_for};
use capmaas_e2e::harness::scenario::system_id_of;
use capmaas_e2e::harness::{Env, manifests};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const POOL: &str = "gpu";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(300);

/// The GPU NodePool's template and MachineDeployment, as the fork creates them for a NodePool
/// with `tags: [gpu]`; `secret` is a user-data Secret of the hosted cluster.
fn objects(cluster: &str, ns: &str, secret: &str) -> Vec<Value> {
    let template = format!("{POOL}-5e1d0c7a");
    let labels = json!({
        "cluster.x-k8s.io/cluster-name": cluster,
        "hypershift.openshift.io/nodePool": POOL
    });
    vec![
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "MaasMachineTemplate",
            "metadata": {
                "name": template,
                "annotations": {"hypershift.openshift.io/nodePool": format!("clusters/{POOL}")}
            },
            "spec": {"template": {"spec": {
                "image": "ubuntu/jammy", "minCPU": 16, "minMemory": 65536, "tags": ["gpu"]
            }}}
        }),
        json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "MachineDeployment",
            "metadata": {
                "name": POOL,
                "labels": {"cluster.x-k8s.io/cluster-name": cluster},
                "annotations": {"hypershift.openshift.io/nodePool": format!("clusters/{POOL}")}
            },
            "spec": {
                "clusterName": cluster,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "clusterName": cluster,
                        "bootstrap": {"dataSecretName": secret},
                        "infrastructureRef": {
                            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                            "kind": "MaasMachineTemplate",
                            "name": template,
                            "namespace": ns
                        }
                    }
                }
            }
        }),
    ]
}

/// The template's status once it counts `available` machines.
async fn template_status(env: &Env, ns: &str, available: i64) -> Value {
    let templates: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "infrastructure.cluster.x-k8s.io",
                "v1beta1",
                "MaasMachineTemplate",
            ),
            "maasmachinetemplates",
        ),
    );
    let name = format!("{POOL}-5e1d0c7a");
    wait_for(
        "the GPU NodePool's template status",
        POLL,
        LIMIT,
        || async {
            let status = templates.get(&name).await?.data["status"].clone();
            let now = status["availableMachines"].as_i64();
            Ok((
                (now == Some(available)).then(|| status.clone()),
                format!("{status}"),
            ))
        },
    )
    .await
    .unwrap()
}

/// Applies the GPU NodePool with one replica: the template reports the zone's GPU machine (8
/// GPUs) without a GPU field, its Machine runs on that machine, and the Node advertises its GPUs.
/// Deleting the hosted cluster afterwards releases it with the rest.
pub async fn gpu_nodepool(env: &Env, cluster: &str, ns: &str, secret: &str) {
    let before: BTreeSet<String> = machine_rows(&env.client, ns)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    manifests::apply_all(&env.client, ns, &objects(cluster, ns, secret))
        .await
        .unwrap();
    let status = template_status(env, ns, 1).await;
    eprintln!("GPU NodePool template: {status}");
    assert_eq!(
        status["capacity"]["nvidia.com/gpu"], "8",
        "from MAAS, with no gpu field"
    );
    assert_eq!(status["capacity"]["cpu"], "64");
    assert_eq!(status["availableGPUs"], 8);

    let row = wait_for("the GPU NodePool's Machine to run", POLL, LIMIT, || async {
        let rows = machine_rows(&env.client, ns).await?;
        let new = rows
            .into_iter()
            .find(|r| !before.contains(&r.name) && r.phase == "Running");
        Ok((new, "waiting".to_string()))
    })
    .await
    .unwrap();
    let provider_id = row.provider_id.clone().unwrap();
    let system_id = system_id_of(&provider_id).unwrap().to_string();
    let machine = env
        .sim
        .state()
        .machines
        .into_iter()
        .find(|m| m.system_id == system_id)
        .unwrap();
    assert!(
        machine.tags.iter().any(|t| t == "gpu"),
        "{system_id}: {:?}",
        machine.tags
    );
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|n| n.metadata.name.as_deref() == Some(machine.hostname.as_str()))
        .unwrap();
    let capacity = node.status.and_then(|s| s.capacity).unwrap_or_default();
    assert_eq!(
        capacity.get("nvidia.com/gpu").map(|q| q.0.as_str()),
        Some("8"),
        "the Node of {}",
        machine.hostname
    );
}
