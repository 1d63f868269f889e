//! Our CRDs, as checked in under config/crd/bases, installed into a real kube-apiserver: the
//! objects existing writers produce are accepted, and each invalid case is refused with the
//! message the CRD gives for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::{ControlPlane, ControlPlaneOptions, TestRun, crds, tools};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", kind),
        plural,
    )
}

async fn create(api: &Api<DynamicObject>, object: Value) -> Result<DynamicObject, String> {
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .map_err(|e| e.to_string())
}

fn assert_refused(case: &str, result: Result<DynamicObject, String>, needle: &str) {
    match result {
        Ok(o) => panic!(
            "{case}: accepted, but should be refused ({needle}): {:?}",
            o.metadata.name
        ),
        Err(message) => {
            eprintln!("{case}: {message}");
            assert!(
                message.contains(needle),
                "{case}: refused, but without {needle:?}: {message}"
            );
        }
    }
}

/// Objects the API server refuses at creation: kind, name (the README's catalogue row), spec
/// and the message it answers with.
const REFUSED_AT_CREATE: &[(&str, &str, &str, &str)] = &[
    (
        "MaasCluster",
        "no-domain",
        r#"{}"#,
        "spec.dnsDomain: Required value",
    ),
    (
        "MaasMachine",
        "neg-cpu",
        r#"{"image": "jammy", "minCPU": -1}"#,
        "spec.minCPU in body should be greater than or equal to 0",
    ),
    (
        "MaasMachine",
        "neg-mem",
        r#"{"image": "jammy", "minMemory": -5}"#,
        "spec.minMemory in body should be greater than or equal to 0",
    ),
    (
        "MaasMachine",
        "bad-tag",
        r#"{"image": "jammy", "tags": ["has space"]}"#,
        "a MAAS tag name may only contain letters, digits, '_' and '-'",
    ),
    (
        "MaasMachine",
        "empty-image",
        r#"{"image": ""}"#,
        "spec.image in body should be at least 1 chars long",
    ),
    (
        "MaasMachine",
        "zero-gpus",
        r#"{"image": "jammy", "gpu": {"minCount": 0}}"#,
        "spec.gpu.minCount in body should be greater than or equal to 1",
    ),
    (
        "MaasMachine",
        "k8s-arch",
        r#"{"image": "jammy", "architecture": "ppc64le"}"#,
        "architecture: a MAAS architecture such as amd64/generic",
    ),
    (
        "MaasMachine",
        "bad-kernel",
        r#"{"image": "jammy", "hweKernel": "linux-6.8"}"#,
        "hweKernel: a MAAS kernel name such as hwe-22.04",
    ),
    (
        "MaasMachine",
        "erase-mix",
        r#"{"image": "jammy", "release": {"secureErase": true}}"#,
        "quickErase and secureErase only apply with erase: true",
    ),
];

/// Changes the API server refuses: kind, the object changed, the case (the README's row), the
/// merge patch and the message.
const REFUSED_AT_UPDATE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "MaasMachine",
        "sample-0",
        "image-change",
        r#"{"spec": {"image": "ubuntu/noble"}}"#,
        "image is immutable: create a new MaasMachineTemplate to change it",
    ),
    (
        "MaasCluster",
        "sample",
        "domain-change",
        r#"{"spec": {"dnsDomain": "other"}}"#,
        "dnsDomain is immutable: the cluster's DNS record lives in this domain",
    ),
    (
        "MaasMachine",
        "sample-0",
        "cpu-change",
        r#"{"spec": {"minCPU": 64}}"#,
        "minCPU is immutable: create a new MaasMachineTemplate to change it",
    ),
    (
        "MaasMachine",
        "sample-0",
        "memory-change",
        r#"{"spec": {"minMemory": 1048576}}"#,
        "minMemory is immutable: create a new MaasMachineTemplate to change it",
    ),
];

/// The README's catalogue has a row for every refusal, with its message.
#[test]
fn sim_admission_catalogue_rows_match_the_cases() {
    let readme = std::fs::read_to_string(tools::workspace_root().join("README.md")).unwrap();
    let updates = REFUSED_AT_UPDATE
        .iter()
        .map(|&(_, _, case, _, needle)| (case, needle));
    let creates = REFUSED_AT_CREATE
        .iter()
        .map(|&(_, name, _, needle)| (name, needle));
    for (name, needle) in creates.chain(updates) {
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("README has no catalogue row for `{name}`"));
        assert!(
            row.contains(needle),
            "README row for {name} says {needle:?}: {row}"
        );
    }
}

#[tokio::test]
async fn crds_accept_existing_writers_and_refuse_invalid_objects() {
    let Some((run, bin_dir)) = TestRun::own("crd").await else {
        return;
    };
    let cp = ControlPlane::start(ControlPlaneOptions {
        bin_dir,
        run_dir: run.dir().to_path_buf(),
        controller_manager: false,
    })
    .await
    .expect("control plane starts");
    let client = cp.client();
    let ours = crds::read_dir(&tools::workspace_root().join("config/crd/bases")).unwrap();
    assert_eq!(ours.len(), 4, "four kinds");
    crds::install(&client, &ours).await.expect("CRDs install");

    let ns = "default";
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &resource("MaasCluster", "maasclusters"));
    let machines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &resource("MaasMachine", "maasmachines"));
    let templates: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &resource("MaasMachineTemplate", "maasmachinetemplates"),
    );

    // What the HyperShift fork writes.
    create(
        &clusters,
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasCluster",
            "metadata": {"name": "hosted", "annotations": {"spectrocloud.com/custom-dns-provided": ""},
                         "labels": {"hypershift.openshift.io/cluster": "clusters-hosted"}},
            "spec": {"dnsDomain": "maas.local",
                     "controlPlaneEndpoint": {"host": "api.hosted.example.com", "port": 6443}}
        }),
    )
    .await
    .expect("HyperShift's MaasCluster");
    create(
        &templates,
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachineTemplate",
            "metadata": {"name": "pool-a-8f2c1", "annotations": {"hypershift.openshift.io/nodePool": "clusters/pool-a"}},
            "spec": {"template": {"spec": {"image": "ubuntu/focal", "minCPU": 1, "minMemory": 1024,
                     "tags": ["worker"], "resourcePool": "default", "failureDomain": "zone-a"}}}
        }),
    )
    .await
    .expect("HyperShift's MaasMachineTemplate");
    // The Go provider's samples.
    create(
        &clusters,
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasCluster",
            "metadata": {"name": "sample"}, "spec": {"dnsDomain": "maas"}
        }),
    )
    .await
    .expect("the Go provider's MaasCluster");
    create(
        &machines,
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
            "metadata": {"name": "sample-0"},
            "spec": {"minCPU": 2, "minMemory": 4096, "image": "ubuntu/jammy", "tags": ["k8s", "ssd"]}
        }),
    )
    .await
    .expect("the Go provider's MaasMachine");
    // Our extensions.
    create(
        &machines,
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
            "metadata": {"name": "gpu-0"},
            "spec": {"image": "jammy", "minCPU": 8, "minMemory": 65536, "notTags": ["virtual"],
                     "gpu": {"vendor": "nvidia", "minCount": 2}, "minDiskSize": 200,
                     "architecture": "arm64/generic", "hweKernel": "hwe-24.04-lowlatency",
                     "release": {"erase": true, "quickErase": true}}
        }),
    )
    .await
    .expect("a MaasMachine with our extensions");

    // Invalid objects, each refused with its message.
    for &(kind, name, spec, needle) in REFUSED_AT_CREATE {
        let api = if kind == "MaasCluster" {
            &clusters
        } else {
            &machines
        };
        let object = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": kind,
                            "metadata": {"name": name},
                            "spec": serde_json::from_str::<Value>(spec).unwrap()});
        assert_refused(name, create(api, object).await, needle);
    }
    // Immutable fields: a changed value is refused on update.
    for &(kind, name, case, patch, needle) in REFUSED_AT_UPDATE {
        let api = if kind == "MaasCluster" {
            &clusters
        } else {
            &machines
        };
        let patch: Value = serde_json::from_str(patch).unwrap();
        let result = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await;
        assert_refused(case, result.map_err(|e| e.to_string()), needle);
    }
    // A mutable field still changes.
    machines
        .patch(
            "sample-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tags": ["gpu"]}})),
        )
        .await
        .expect("tags are mutable");

    cp.stop().await;
}
