//! The kubeadm bootstrap and control-plane providers as the scenarios that need them run them:
//! their CRDs installed, their managers started against the harness API server, and a stand-in
//! for what a real `kubeadm init` leaves in the workload cluster (which is the harness API server
//! itself) that the control-plane manager reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use capmaas_e2e::harness::certs::LoopbackCa;
use capmaas_e2e::harness::crds::{self, FIELD_MANAGER};
use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::process::{Component, free_port};
use capmaas_e2e::harness::{Env, tools};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::Api;
use kube::api::{DynamicObject, ListParams, ObjectMeta, Patch, PatchParams};

use crate::clusterctl_support::with_contract_labels;

/// The two kubeadm managers, running until dropped.
pub struct KubeadmProviders {
    _bootstrap: Component,
    _control_plane: Component,
}

/// Installs the kubeadm providers' CRDs and starts both managers with `feature_gates` (for
/// example `ClusterTopology=true`; empty for their defaults).
pub async fn start(env: &Env, feature_gates: &str) -> KubeadmProviders {
    let bin = tools::bin_dir().unwrap();
    let manifests_dir = tools::capi_manifests_dir(&bin);
    let mut kubeadm_crds = crds::read_dir(&manifests_dir.join("bootstrap-kubeadm/crd")).unwrap();
    kubeadm_crds.extend(crds::read_dir(&manifests_dir.join("controlplane-kubeadm/crd")).unwrap());
    let kubeadm_crds: Vec<_> = kubeadm_crds.into_iter().map(with_contract_labels).collect();
    crds::install(&env.client, &kubeadm_crds).await.unwrap();
    KubeadmProviders {
        _bootstrap: start_manager(env, "capi-kubeadm-bootstrap-manager", feature_gates),
        _control_plane: start_manager(env, "capi-kubeadm-control-plane-manager", feature_gates),
    }
}

/// Starts one kubeadm manager. Its webhook server needs a certificate; no webhook configuration
/// points at it, the CRDs carry their schema defaults.
fn start_manager(env: &Env, binary: &str, feature_gates: &str) -> Component {
    let bin = tools::bin_dir().unwrap();
    let cert_dir = env.run_dir().join(format!("{binary}-certs"));
    std::fs::create_dir_all(&cert_dir).unwrap();
    let ca = LoopbackCa::new(binary).unwrap();
    let (cert, key) = ca.serving(binary).unwrap();
    std::fs::write(cert_dir.join("tls.crt"), cert).unwrap();
    std::fs::write(cert_dir.join("tls.key"), key).unwrap();
    let mut args = vec![
        format!("--kubeconfig={}", env.kubeconfig.display()),
        format!("--webhook-port={}", free_port().unwrap()),
        format!("--webhook-cert-dir={}", cert_dir.display()),
        format!("--health-addr=127.0.0.1:{}", free_port().unwrap()),
        format!("--diagnostics-address=127.0.0.1:{}", free_port().unwrap()),
        "--insecure-diagnostics=true".into(),
        "--leader-elect=false".into(),
        "--v=2".into(),
    ];
    if !feature_gates.is_empty() {
        args.push(format!("--feature-gates={feature_gates}"));
    }
    Component::spawn(binary, &bin.join(binary), &args, &[], env.run_dir()).unwrap()
}

/// The version of the tools build's kubeadm: the release generated configurations are for.
pub fn kubeadm_version() -> String {
    let output = std::process::Command::new(tools::bin_dir().unwrap().join("kubeadm"))
        .args(["version", "-o", "short"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// What `kubeadm init` would have written into the workload cluster.
async fn stand_in_for_kubeadm_init(env: &Env, version: &str) {
    env.namespace("kube-system").await.unwrap();
    let config = ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubeadm-config".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "ClusterConfiguration".to_string(),
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n"
            ),
        )])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(env.client.clone(), "kube-system")
        .patch(
            "kubeadm-config",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
}

/// Provider IDs of the control-plane Machines of `ns` (by their label) and how many run.
async fn control_plane_machines(env: &Env, ns: &str) -> (Vec<String>, usize) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ns, &observe::machines_resource());
    let lp = ListParams::default().labels("cluster.x-k8s.io/control-plane");
    let machines = api.list(&lp).await.unwrap().items;
    let running = machines
        .iter()
        .filter(|m| m.data["status"]["phase"] == "Running")
        .count();
    let ids = machines
        .iter()
        .filter_map(|m| m.data["spec"]["providerID"].as_str().map(str::to_string))
        .collect();
    (ids, running)
}

/// Gives the Nodes of `provider_ids` the role label the kubelet of a control-plane Node
/// carries; returns how many there are.
async fn label_control_plane_nodes(env: &Env, provider_ids: &[String]) -> usize {
    let nodes: Api<Node> = Api::all(env.client.clone());
    let mut labelled = 0;
    for node in nodes.list(&ListParams::default()).await.unwrap().items {
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.clone());
        if !provider_id.is_some_and(|p| provider_ids.contains(&p)) {
            continue;
        }
        let patch = serde_json::json!({"metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": ""}}});
        nodes
            .patch(
                node.metadata.name.as_deref().unwrap(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
        labelled += 1;
    }
    labelled
}

/// Waits until the first control-plane Machine of `ns` runs, doing what `kubeadm init` would
/// once its machine booted: the workers and further control-plane machines wait for that.
pub async fn wait_first_control_plane(env: &Env, ns: &str, version: &str, limit: Duration) {
    wait_for(
        "the control-plane Machine to run",
        Duration::from_millis(500),
        limit,
        || async {
            let (ids, _) = control_plane_machines(env, ns).await;
            let labelled = label_control_plane_nodes(env, &ids).await;
            if labelled > 0 {
                stand_in_for_kubeadm_init(env, version).await;
            }
            // Read after the stand-in: the Machine may turn Running between the label pass and
            // this read, and the workers wait for init.
            let (_, running) = control_plane_machines(env, ns).await;
            Ok((
                (running >= 1 && labelled > 0).then_some(()),
                format!("{running} control-plane Machines running, {labelled} Nodes labelled"),
            ))
        },
    )
    .await
    .unwrap();
}
