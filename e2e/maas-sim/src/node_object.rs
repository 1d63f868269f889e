//! The Node a kubelet registers and the status it reports, from a machine's [`NodeFacts`]. Pure:
//! the boot hook sends them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use kube::api::ObjectMeta;
use serde_json::{Value, json};

use crate::node_facts::NodeFacts;

/// The pod capacity a kubelet has by default (`maxPods`).
pub const MAX_PODS: &str = "110";

/// The Node's labels: the kubelet's own (host name, OS, architecture), then the bootstrap
/// data's `node-labels`, which win as they do in a kubelet.
pub fn labels(hostname: &str, facts: &NodeFacts) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), hostname.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), facts.architecture.clone()),
    ]);
    labels.extend(facts.labels.clone());
    labels
}

/// The Node to create: name, labels and the registration taints (no providerID).
pub fn node(hostname: &str, facts: &NodeFacts) -> Node {
    let taints: Vec<Taint> = facts
        .taints
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
            time_added: None,
        })
        .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(hostname.to_string()),
            labels: Some(labels(hostname, facts)),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then_some(taints),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A merge patch adding the labels to a Node that already exists (a simulator restarted while
/// its Nodes stayed); other labels and the taints stay as they are, as a restarted kubelet
/// leaves them.
pub fn label_patch(hostname: &str, facts: &NodeFacts) -> Value {
    json!({"metadata": {"labels": labels(hostname, facts)}})
}

/// What the Node's capacity and allocatable are: cpu, memory (in Ki, as a kubelet reports it),
/// pods and the GPUs of each device plugin.
pub fn capacity(facts: &NodeFacts) -> BTreeMap<String, String> {
    let mut capacity = BTreeMap::from([
        ("cpu".to_string(), facts.cpu.to_string()),
        (
            "memory".to_string(),
            format!("{}Ki", facts.memory_mib.saturating_mul(1024)),
        ),
        ("pods".to_string(), MAX_PODS.to_string()),
    ]);
    for (resource, count) in &facts.gpus {
        capacity.insert(resource.clone(), count.to_string());
    }
    capacity
}

/// The status a healthy kubelet reports, stamped `now`. Cluster API counts a Machine available
/// (what a rollout with maxUnavailable 0 waits for) only when the Node is Ready and under no
/// pressure.
pub fn status_patch(hostname: &str, facts: &NodeFacts, version: &str, now: &str) -> Value {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let capacity = capacity(facts);
    json!({
        "status": {
            "conditions": [
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
            ],
            "addresses": [{"type": "Hostname", "address": hostname}],
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "architecture": facts.architecture, "operatingSystem": "linux",
                "kubeletVersion": version, "bootID": "",
                "containerRuntimeVersion": "containerd://1.7.0", "kernelVersion": "6.8.0",
                "kubeProxyVersion": "", "machineID": "", "osImage": "Ubuntu 24.04 LTS",
                "systemUUID": ""
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeadm_config;

    fn facts() -> NodeFacts {
        NodeFacts {
            architecture: "arm64".into(),
            cpu: 64,
            memory_mib: 512 * 1024,
            gpus: BTreeMap::from([("nvidia.com/gpu".into(), 8)]),
            kubelet_version: None,
            labels: BTreeMap::from([("nvidia.com/gpu.present".into(), "true".into())]),
            refused_labels: Vec::new(),
            taints: vec![kubeadm_config::Taint {
                key: "nvidia.com/gpu".into(),
                value: None,
                effect: "NoSchedule".into(),
            }],
        }
    }

    #[test]
    fn the_node_carries_labels_and_taints() {
        let node = serde_json::to_value(node("gpu-001", &facts())).unwrap();
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/arch"], "arm64");
        assert_eq!(labels["kubernetes.io/hostname"], "gpu-001");
        assert_eq!(labels["nvidia.com/gpu.present"], "true");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "nvidia.com/gpu", "effect": "NoSchedule"}])
        );
        assert!(node["spec"].get("providerID").is_none());
        let patch = label_patch("gpu-001", &facts());
        assert_eq!(patch["metadata"]["labels"], *labels);
    }

    #[test]
    fn the_status_reports_the_hardware() {
        let status = status_patch("gpu-001", &facts(), "v1.34.1", "2026-01-01T00:00:00Z");
        let want = json!({"cpu": "64", "memory": "536870912Ki", "pods": "110",
                          "nvidia.com/gpu": "8"});
        assert_eq!(status["status"]["capacity"], want);
        assert_eq!(status["status"]["allocatable"], want);
        let info = &status["status"]["nodeInfo"];
        assert_eq!(
            (
                info["architecture"].as_str(),
                info["kubeletVersion"].as_str()
            ),
            (Some("arm64"), Some("v1.34.1"))
        );
    }

    #[test]
    fn a_machine_without_gpus_or_taints() {
        let plain = NodeFacts {
            gpus: BTreeMap::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            ..facts()
        };
        let capacity = capacity(&plain);
        assert_eq!(
            capacity.keys().collect::<Vec<_>>(),
            vec!["cpu", "memory", "pods"]
        );
        let node = node("node-001", &plain);
        assert!(node.spec.and_then(|s| s.taints).is_none());
        assert_eq!(node.metadata.labels.map(|l| l.len()), Some(3));
    }
}
