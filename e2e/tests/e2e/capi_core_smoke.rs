//! The Cluster API core manager runs against the local API server: its admission webhooks and
//! CRD conversion answer on loopback, so a Cluster written as v1beta1 reads back as v1beta2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::{CapiCore, ControlPlane, ControlPlaneOptions, TestRun, crds, tools};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

#[tokio::test]
async fn capi_core_serves_webhooks_and_conversion() {
    let Some((run, bin_dir)) = TestRun::own("capi").await else {
        return;
    };
    let cp = ControlPlane::start(ControlPlaneOptions {
        bin_dir: bin_dir.clone(),
        run_dir: run.dir().to_path_buf(),
        controller_manager: true,
    })
    .await
    .expect("control plane starts");
    let client = cp.client();
    let capi = CapiCore::start(
        &client,
        &bin_dir,
        &tools::capi_manifests_dir(&bin_dir),
        cp.kubeconfig(),
        run.dir(),
    )
    .await
    .expect("CAPI core starts");
    // CAPI looks up the infrastructure kind's contract label on its CRD while converting.
    let ours = crds::read_dir(&tools::workspace_root().join("config/crd/bases")).unwrap();
    crds::install(&client, &ours).await.unwrap();

    let v1beta1 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta1", "Cluster"),
        "clusters",
    );
    let v1beta2 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
        "clusters",
    );
    let old: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &v1beta1);
    let new: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &v1beta2);
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": "smoke"},
        "spec": {"paused": true,
                 "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                                       "kind": "MaasCluster", "name": "smoke"},
                 "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}}
    }))
    .unwrap();
    old.create(&PostParams::default(), &cluster)
        .await
        .expect("the v1beta1 Cluster passes CAPI's webhooks");
    let converted = new.get("smoke").await.expect("read back as v1beta2");
    assert_eq!(converted.data["spec"]["paused"], json!(true));
    assert_eq!(
        converted.data["spec"]["clusterNetwork"]["pods"]["cidrBlocks"],
        json!(["192.168.0.0/16"])
    );
    // v1beta2 references carry apiGroup instead of apiVersion: conversion really ran.
    assert_eq!(
        converted.data["spec"]["infrastructureRef"]["apiGroup"],
        json!("infrastructure.cluster.x-k8s.io")
    );

    // CAPI's validating webhook answers from loopback: a Cluster with no references is refused.
    let invalid: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "bad"},
        "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["10.1.0.0/16"]}}}
    }))
    .unwrap();
    let refused = new
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("spec.infrastructureRef"),
        "{refused}"
    );

    capi.stop().await;
    cp.stop().await;
}
