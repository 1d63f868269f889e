#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cluster and Machine as CAPI v1beta1 and v1beta2 write them read into the one partial type
//! each, and the accessors give the same answers for both shapes.

use capmaas_api::capi::{CapiVersion, Cluster, Machine};
use kube::Resource;
use serde_json::json;

fn cluster_v1beta1(paused: bool, infra_ready: bool) -> Cluster {
    serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": "c1", "namespace": "default", "uid": "u1"},
        "spec": {
            "paused": paused,
            "controlPlaneEndpoint": {"host": "10.0.0.10", "port": 6443},
            "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasCluster", "name": "c1", "namespace": "default"},
            "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}
        },
        "status": {
            "infrastructureReady": infra_ready,
            "controlPlaneReady": true,
            "phase": "Provisioned",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "v1beta2": {"conditions": []}
        }
    }))
    .unwrap()
}

fn cluster_v1beta2(paused: Option<bool>, infra_provisioned: bool) -> Cluster {
    let mut spec = json!({
        "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "MaasCluster", "name": "c1"},
        "controlPlaneEndpoint": {"host": "10.0.0.10", "port": 6443}
    });
    if let Some(p) = paused {
        spec["paused"] = json!(p);
    }
    serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": {"name": "c1", "namespace": "default"},
        "spec": spec,
        "status": {
            "initialization": {"infrastructureProvisioned": infra_provisioned, "controlPlaneInitialized": false},
            "phase": "Provisioning",
            "conditions": [{"type": "Available", "status": "False", "reason": "x", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}],
            "deprecated": {"v1beta1": {"conditions": []}}
        }
    }))
    .unwrap()
}

#[test]
fn cluster_accessors_agree_across_versions() {
    let old = cluster_v1beta1(false, true);
    assert!(!old.paused());
    assert!(old.infrastructure_provisioned());
    assert!(old.control_plane_initialized());
    assert!(
        old.spec
            .infrastructure_ref
            .as_ref()
            .unwrap()
            .refers_to("infrastructure.cluster.x-k8s.io", "MaasCluster")
    );
    assert!(cluster_v1beta1(true, false).paused());
    assert!(!cluster_v1beta1(true, false).infrastructure_provisioned());

    let new = cluster_v1beta2(None, true);
    assert!(!new.paused());
    assert!(new.infrastructure_provisioned());
    assert!(!new.control_plane_initialized());
    assert!(
        new.spec
            .infrastructure_ref
            .as_ref()
            .unwrap()
            .refers_to("infrastructure.cluster.x-k8s.io", "MaasCluster")
    );
    assert!(cluster_v1beta2(Some(true), false).paused());
    assert!(!cluster_v1beta2(Some(false), false).infrastructure_provisioned());
}

#[test]
fn paused_annotation_pauses_a_cluster() {
    let mut c = cluster_v1beta2(Some(false), true);
    c.metadata.annotations = Some([("cluster.x-k8s.io/paused".to_owned(), String::new())].into());
    assert!(c.paused());
}

#[test]
fn machine_v1beta1_shape() {
    let m: Machine = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {
            "name": "c1-cp-abc", "namespace": "default",
            "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""}
        },
        "spec": {
            "clusterName": "c1",
            "bootstrap": {"configRef": {"kind": "KubeadmConfig", "name": "x"}, "dataSecretName": "c1-cp-abc"},
            "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine", "name": "c1-cp-abc"},
            "failureDomain": "zone-a",
            "providerID": "maas:///zone-a/abc123",
            "version": "v1.30.0"
        },
        "status": {
            "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "n1"},
            "phase": "Running",
            "bootstrapReady": true,
            "infrastructureReady": true
        }
    }))
    .unwrap();
    assert_eq!(m.cluster_name(), Some("c1"));
    assert!(m.is_control_plane());
    assert_eq!(m.bootstrap_data_secret_name(), Some("c1-cp-abc"));
    assert_eq!(m.failure_domain(), Some("zone-a"));
    assert_eq!(m.node_name(), Some("node-1"));
    assert!(m.infrastructure_provisioned());
    assert_eq!(m.spec.provider_id.as_deref(), Some("maas:///zone-a/abc123"));
}

#[test]
fn machine_v1beta2_shape() {
    let m: Machine = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Machine",
        "metadata": {"name": "md-0-xyz", "namespace": "default"},
        "spec": {
            "clusterName": "c2",
            "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": "x"}},
            "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "MaasMachine", "name": "md-0-xyz"}
        },
        "status": {
            "nodeRef": {"name": ""},
            "phase": "Provisioning",
            "initialization": {"bootstrapDataSecretCreated": false, "infrastructureProvisioned": false}
        }
    }))
    .unwrap();
    // No label: falls back to spec.clusterName.
    assert_eq!(m.cluster_name(), Some("c2"));
    assert!(!m.is_control_plane());
    assert_eq!(m.bootstrap_data_secret_name(), None);
    assert_eq!(m.failure_domain(), None);
    assert_eq!(m.node_name(), None);
    assert!(!m.infrastructure_provisioned());
    assert!(
        m.spec
            .infrastructure_ref
            .as_ref()
            .unwrap()
            .refers_to("infrastructure.cluster.x-k8s.io", "MaasMachine")
    );
}

#[test]
fn resource_urls_follow_the_chosen_version() {
    for (version, expected) in [
        (
            CapiVersion::V1Beta1,
            "/apis/cluster.x-k8s.io/v1beta1/namespaces/ns/machines",
        ),
        (
            CapiVersion::V1Beta2,
            "/apis/cluster.x-k8s.io/v1beta2/namespaces/ns/machines",
        ),
    ] {
        assert_eq!(Machine::url_path(&version, Some("ns")), expected);
        assert_eq!(Cluster::kind(&version), "Cluster");
        assert_eq!(
            Cluster::url_path(&version, Some("ns")),
            expected.replace("machines", "clusters")
        );
    }
}
