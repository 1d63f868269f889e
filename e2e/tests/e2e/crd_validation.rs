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

fn assert_refused(result: Result<DynamicObject, String>, needle: &str) {
    match result {
        Ok(o) => panic!(
            "accepted, but should be refused ({needle}): {:?}",
            o.metadata.name
        ),
        Err(message) => assert!(
            message.contains(needle),
            "refused, but without {needle:?}: {message}"
        ),
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
                     "release": {"erase": true, "quickErase": true}}
        }),
    )
    .await
    .expect("a MaasMachine with our extensions");

    // Invalid objects, each refused with its message.
    assert_refused(
        create(
            &clusters,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasCluster",
                   "metadata": {"name": "no-domain"}, "spec": {}}),
        )
        .await,
        "dnsDomain",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "neg-cpu"}, "spec": {"image": "jammy", "minCPU": -1}}),
        )
        .await,
        "minCPU",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "neg-mem"}, "spec": {"image": "jammy", "minMemory": -5}}),
        )
        .await,
        "minMemory",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "bad-tag"}, "spec": {"image": "jammy", "tags": ["has space"]}}),
        )
        .await,
        "a MAAS tag name may only contain letters, digits",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "empty-image"}, "spec": {"image": ""}}),
        )
        .await,
        "image",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "zero-gpus"}, "spec": {"image": "jammy", "gpu": {"minCount": 0}}}),
        )
        .await,
        "minCount",
    );
    assert_refused(
        create(
            &machines,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasMachine",
                   "metadata": {"name": "erase-mix"},
                   "spec": {"image": "jammy", "release": {"secureErase": true}}}),
        )
        .await,
        "quickErase and secureErase only apply with erase: true",
    );

    // Immutable fields: a changed image or dnsDomain is refused on update.
    let patch = PatchParams::default();
    let changed_image = machines
        .patch(
            "sample-0",
            &patch,
            &Patch::Merge(json!({"spec": {"image": "ubuntu/noble"}})),
        )
        .await;
    assert_refused(
        changed_image.map_err(|e| e.to_string()),
        "image is immutable",
    );
    let changed_domain = clusters
        .patch(
            "sample",
            &patch,
            &Patch::Merge(json!({"spec": {"dnsDomain": "other"}})),
        )
        .await;
    assert_refused(
        changed_domain.map_err(|e| e.to_string()),
        "dnsDomain is immutable",
    );
    // A mutable field still changes.
    machines
        .patch(
            "sample-0",
            &patch,
            &Patch::Merge(json!({"spec": {"minCPU": 4}})),
        )
        .await
        .expect("minCPU is mutable");

    cp.stop().await;
}
