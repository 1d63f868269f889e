//! `--watch-filter`, as Cluster API's managers take it: a manager started with
//! `--watch-filter=team-a` reconciles the MaasCluster labelled
//! `cluster.x-k8s.io/watch-filter: team-a` and never touches the one without the label, which
//! another instance of the provider owns.

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{EnvOptions, TestEnv, cluster_yaml, manifests};
use kube::api::{Api, DynamicObject};

const NS: &str = "watch-filter";
const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_filtered_manager_reconciles_only_its_labelled_objects() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 1,
            gpu_machines: 0,
            manager_args: vec!["--watch-filter=team-a".to_string()],
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.namespace(NS).await.unwrap();
    let labelled = cluster_yaml::cluster("ours", None).replace(
        "    cluster.x-k8s.io/cluster-name: ours\n",
        "    cluster.x-k8s.io/cluster-name: ours\n    cluster.x-k8s.io/watch-filter: team-a\n",
    );
    let text = labelled + &cluster_yaml::cluster("theirs", None);
    let objects = manifests::parse(&text, std::path::Path::new("watch_filter.yaml")).unwrap();
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    wait_for(
        "the labelled MaasCluster to be ready",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let ready = clusters.get("ours").await?.data["status"]["ready"] == true;
            Ok((ready.then_some(()), format!("ready: {ready}")))
        },
    )
    .await
    .unwrap();
    // Both were created together: by now the unlabelled one would have been reconciled too.
    let theirs = clusters.get("theirs").await.unwrap();
    assert!(
        theirs.data["status"].is_null() && theirs.metadata.finalizers.is_none(),
        "the unlabelled MaasCluster is untouched: {:?}",
        theirs.data["status"]
    );
    env.stop().await;
}
