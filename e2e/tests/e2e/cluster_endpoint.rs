//! A `Cluster.spec.controlPlaneEndpoint` the user set is the cluster's endpoint: a MaasCluster
//! that names none and has no custom-DNS annotation adopts it, becomes ready with it, and no MAAS
//! DNS record is made (Cluster API's contract for a user-set endpoint).

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{EnvOptions, TestEnv, cluster_yaml, manifests, scenario};
use kube::api::{Api, DynamicObject};

const NS: &str = "cluster-endpoint";
const CLUSTER: &str = "given";
const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_user_set_cluster_endpoint_is_adopted_without_a_dns_record() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 1,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.namespace(NS).await.unwrap();
    // The MaasCluster names no endpoint; the Cluster does.
    let text = cluster_yaml::dns_cluster(CLUSTER, None).replacen(
        "spec:\n  infrastructureRef:",
        "spec:\n  controlPlaneEndpoint:\n    host: api.given.example.test\n    port: 443\n  infrastructureRef:",
        1,
    );
    assert!(text.contains("host: api.given.example.test"), "{text}");
    let objects = manifests::parse(&text, std::path::Path::new("cluster_endpoint.yaml")).unwrap();
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    let adopted = wait_for(
        "the MaasCluster ready with the Cluster's endpoint",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let mc = clusters.get(CLUSTER).await?;
            let ready = mc.data["status"]["ready"] == true;
            let endpoint = mc.data["spec"]["controlPlaneEndpoint"].clone();
            Ok((
                ready.then(|| endpoint.clone()),
                format!("ready: {ready}, endpoint {endpoint}"),
            ))
        },
    )
    .await
    .unwrap();
    assert_eq!(adopted["host"], "api.given.example.test");
    assert_eq!(adopted["port"], 443);
    let records = env.sim.state().dnsresources;
    assert!(
        records.iter().all(|d| !d.fqdn.starts_with(CLUSTER)),
        "no MAAS DNS record for a user-set endpoint: {records:?}"
    );
    scenario::delete_cluster(&env, NS, CLUSTER).await.unwrap();
    env.stop().await;
}
