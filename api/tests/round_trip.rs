#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Objects written by HyperShift's MAAS fork and the Go provider's samples read into our types
//! and serialize back to exactly the same JSON: no field renamed, lost, defaulted or nulled.

use capmaas_api::{
    FailureDomain, FailureDomainsField, MaasCluster, MaasClusterTemplate, MaasMachine,
    MaasMachineTemplate, annotations,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn round_trip<T: Serialize + DeserializeOwned>(original: Value) -> T {
    let typed: T = serde_json::from_value(original.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "round trip changed the object");
    typed
}

#[test]
fn hypershift_maas_cluster() {
    // What the fork's Go client sends: custom-dns annotation, endpoint, default domain, and the
    // zero status a Go struct without omitempty produces.
    let cluster: MaasCluster = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasCluster",
        "metadata": {
            "name": "hc1",
            "namespace": "clusters-hc1",
            "annotations": {"spectrocloud.com/custom-dns-provided": ""},
            "labels": {"hypershift.openshift.io/cluster": "clusters/hc1"}
        },
        "spec": {
            "dnsDomain": "maas.local",
            "controlPlaneEndpoint": {"host": "api.hc1.example.com", "port": 6443}
        },
        "status": {"ready": false, "network": {}}
    }));
    assert_eq!(cluster.spec.dns_domain, "maas.local");
    let endpoint = cluster.spec.control_plane_endpoint.as_ref().unwrap();
    assert!(endpoint.is_set());
    assert_eq!(endpoint.port, 6443);
    assert!(
        cluster
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(annotations::CUSTOM_DNS_PROVIDED)
    );
}

#[test]
fn hypershift_maas_machine_template() {
    let template: MaasMachineTemplate = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachineTemplate",
        "metadata": {"name": "np1-6d8f7", "namespace": "clusters-hc1"},
        "spec": {
            "template": {
                "spec": {
                    "image": "ubuntu/focal",
                    "minCPU": 1,
                    "minMemory": 1024,
                    "tags": ["gpu", "rack_1"],
                    "resourcePool": "pool-a",
                    "failureDomain": "zone-a"
                }
            }
        }
    }));
    let spec = &template.spec.template.spec;
    assert_eq!(spec.min_cpu, Some(1));
    assert_eq!(spec.min_memory, Some(1024));
    assert_eq!(spec.tags.as_deref().map(<[String]>::len), Some(2));
    assert_eq!(spec.resource_pool.as_deref(), Some("pool-a"));
    assert_eq!(spec.failure_domain.as_deref(), Some("zone-a"));
    assert!(template.status.is_none());
}

#[test]
fn go_sample_maas_cluster_with_dns_domain_only() {
    let cluster: MaasCluster = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasCluster",
        "metadata": {"name": "my-cluster", "namespace": "default"},
        "spec": {"dnsDomain": "maas"}
    }));
    assert!(cluster.spec.control_plane_endpoint.is_none());
    assert!(cluster.spec.failure_domains.is_none());
}

#[test]
fn go_sample_maas_machine() {
    let machine: MaasMachine = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachine",
        "metadata": {"name": "my-cluster-cp-0", "namespace": "default"},
        "spec": {
            "minCPU": 2,
            "minMemory": 4096,
            "image": "u-2204-0-k-1243-0",
            "tags": ["hello"]
        }
    }));
    assert_eq!(machine.spec.image, "u-2204-0-k-1243-0");
    assert!(machine.spec.gpu.is_none());
}

#[test]
fn go_provider_status_reads_and_writes_back() {
    // Status as the Go provider writes it (conditions without observedGeneration, severity set).
    let machine: MaasMachine = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachine",
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {
            "image": "ubuntu/jammy", "minCPU": 1, "minMemory": 1024,
            "providerID": "maas:///zone-a/abc123", "systemID": "abc123"
        },
        "status": {
            "ready": true,
            "machineState": "Deployed",
            "machinePowered": true,
            "hostname": "node-1",
            "addresses": [
                {"type": "InternalDNS", "address": "node-1.maas"},
                {"type": "InternalIP", "address": "10.0.0.5"}
            ],
            "conditions": [{
                "type": "MachineDeployed",
                "status": "False",
                "severity": "Warning",
                "reason": "MachineDeploying",
                "lastTransitionTime": "2024-05-01T10:00:00Z"
            }],
            "failureReason": "CreateError",
            "failureMessage": "oops"
        }
    }));
    let status = machine.status.unwrap();
    assert_eq!(status.addresses.len(), 2);
    assert_eq!(status.conditions[0].observed_generation, None);
}

#[test]
fn our_extensions_round_trip() {
    let machine: MaasMachine = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachine",
        "metadata": {"name": "gpu-0", "namespace": "ml"},
        "spec": {
            "image": "jammy",
            "minCPU": 32,
            "minMemory": 262144,
            "minDiskSize": 500,
            "deployInMemory": false,
            "tags": ["gpu"],
            "notTags": ["broken_fan"],
            "gpu": {"vendor": "nvidia", "product": "A100", "minCount": 4},
            "userDataFormat": "ignition",
            "release": {"erase": true, "quickErase": true},
            "ignition": {"wipePartitions": [1, 2]}
        },
        "status": {
            "ready": true,
            "initialization": {"provisioned": true},
            "hardware": {
                "cpuCount": 64, "memoryMiB": 524288, "storageGB": 960,
                "gpus": [{"vendorId": "10de", "vendorName": "NVIDIA Corporation", "productId": "20b0",
                          "productName": "GA100 [A100 SXM4 40GB]", "pciAddress": "0000:07:00.0", "numaNode": 0}]
            },
            "conditions": [{
                "type": "Ready", "status": "True", "observedGeneration": 3,
                "reason": "Ready", "lastTransitionTime": "2024-05-01T10:00:00Z"
            }]
        }
    }));
    assert_eq!(machine.spec.gpu.unwrap().min_count, Some(4));

    let _: MaasMachineTemplate = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachineTemplate",
        "metadata": {"name": "gpu-pool", "namespace": "ml"},
        "spec": {"template": {
            "metadata": {"labels": {"node.cluster.x-k8s.io/tier": "dedicated"}},
            "spec": {"image": "jammy", "gpu": {"vendor": "10de"},
                     "architecture": "amd64/generic", "hweKernel": "hwe-22.04"}
        }},
        "status": {
            "capacity": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8",
                         "ephemeral-storage": "960G"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
            "availableMachines": 3,
            "availableGPUs": 24,
            "conditions": [{"type": "MachinesAvailable", "status": "True", "reason": "MachinesMatch",
                            "message": "3 Ready machines match", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }
    }));

    let _: MaasClusterTemplate = round_trip(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasClusterTemplate",
        "metadata": {"name": "cc", "namespace": "default"},
        "spec": {"template": {"spec": {"dnsDomain": "maas", "identityRef": {"name": "maas-creds"}}}}
    }));
}

#[test]
fn cluster_status_failure_domains_in_both_shapes() {
    let zones = vec![FailureDomain {
        name: "zone-a".into(),
        control_plane: true,
        attributes: Default::default(),
    }];
    for (field, expected) in [
        (
            FailureDomainsField::render(&zones, capmaas_api::Contract::V1Beta1),
            json!({"zone-a": {"controlPlane": true}}),
        ),
        (
            FailureDomainsField::render(&zones, capmaas_api::Contract::V1Beta2),
            json!([{"name": "zone-a", "controlPlane": true}]),
        ),
    ] {
        let object = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "MaasCluster",
            "metadata": {"name": "c", "namespace": "default"},
            "spec": {"dnsDomain": "maas"},
            "status": {"ready": true, "initialization": {"provisioned": true}, "failureDomains": expected}
        });
        let cluster: MaasCluster = round_trip(object);
        let status = cluster.status.unwrap();
        assert_eq!(status.failure_domains, field);
        assert_eq!(status.failure_domains.domains().unwrap(), zones);
    }
}
