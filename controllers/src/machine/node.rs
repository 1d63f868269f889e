//! Sets `spec.providerID` on the workload cluster's Node: bare metal has no cloud provider to do
//! it, and CAPI matches Machines to Nodes by it.

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

use crate::runtime::error::{ReconcileError, Stage};

/// What happened to the Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeOutcome {
    /// The provider ID was written.
    Set(String),
    /// The Node already had one.
    AlreadySet(String),
    /// No Node with the host name or FQDN yet (the kubelet has not joined).
    NotFound,
}

/// The names a machine's Node may have, in the order to try: host name, then FQDN.
pub fn node_name_candidates(hostname: &str, fqdn: &str) -> Vec<String> {
    let mut out = Vec::new();
    for n in [hostname, fqdn] {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// A client for the workload cluster from the `<cluster>-kubeconfig` Secret (key `value`).
pub async fn workload_client(
    mgmt: &Client,
    namespace: &str,
    cluster: &str,
) -> Result<Client, ReconcileError> {
    let secret_name = format!("{cluster}-kubeconfig");
    let secret = Api::<Secret>::namespaced(mgmt.clone(), namespace)
        .get_opt(&secret_name)
        .await
        .map_err(ReconcileError::kube(
            Stage::Node,
            "read workload kubeconfig",
        ))?
        .ok_or_else(|| ReconcileError::Invalid(format!("Secret {secret_name} not found")))?;
    let value = secret
        .data
        .and_then(|d| d.get("value").cloned())
        .ok_or_else(|| {
            ReconcileError::Invalid(format!("Secret {secret_name} has no `value` key"))
        })?;
    let text = String::from_utf8(value.0)
        .map_err(|_| ReconcileError::Invalid(format!("Secret {secret_name} is not UTF-8")))?;
    let kubeconfig = Kubeconfig::from_yaml(&text)
        .map_err(|e| ReconcileError::Invalid(format!("Secret {secret_name}: {e}")))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| ReconcileError::Invalid(format!("Secret {secret_name}: {e}")))?;
    Client::try_from(config).map_err(ReconcileError::kube(Stage::Node, "build workload client"))
}

/// Sets the provider ID on the Node named by the host name or FQDN, when it has none.
pub async fn set_node_provider_id(
    workload: &Client,
    hostname: &str,
    fqdn: &str,
    provider_id: &str,
) -> Result<NodeOutcome, ReconcileError> {
    let nodes: Api<Node> = Api::all(workload.clone());
    for name in node_name_candidates(hostname, fqdn) {
        let Some(node) = nodes
            .get_opt(&name)
            .await
            .map_err(ReconcileError::kube(Stage::Node, "read Node"))?
        else {
            continue;
        };
        if let Some(existing) = node
            .spec
            .and_then(|s| s.provider_id)
            .filter(|p| !p.is_empty())
        {
            return Ok(NodeOutcome::AlreadySet(existing));
        }
        let patch = json!({"spec": {"providerID": provider_id}});
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(ReconcileError::kube(Stage::Node, "set Node providerID"))?;
        return Ok(NodeOutcome::Set(name));
    }
    Ok(NodeOutcome::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        assert_eq!(
            node_name_candidates("Node-1", "node-1.maas"),
            ["node-1", "node-1.maas"]
        );
        assert_eq!(node_name_candidates("n", "N"), ["n"]);
        assert!(node_name_candidates(" ", "").is_empty());
    }
}
