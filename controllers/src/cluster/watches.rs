//! What wakes a MaasCluster: its Cluster, the MaasMachines of the cluster (DNS follows the
//! control-plane machines; deletion notices the last machine going), and its credentials Secret
//! (a cluster applied before its Secret starts when the Secret comes; a rotated key is used).

use std::sync::Arc;

use capmaas_api::capi::Cluster;
use capmaas_api::{MaasCluster, MaasMachine};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::cluster::reconcile::{
    CONTROLLER, cluster_to_maas_cluster, maas_machine_to_maas_cluster, reconcile,
};
use crate::k8s::capi_api::{CapiKind, capi_api, capi_resource, decode};
use crate::k8s::objects::scoped;
use crate::maas::credentials::credentials_secret_names;
use crate::runtime::context::Context;
use crate::runtime::reconciler::{drain, error_policy, primary_watcher_config, watcher_config};
use crate::runtime::shutdown::Shutdown;

/// The MaasCluster controller with its watches. Returns the run future and the store.
pub fn controller(
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: &Shutdown,
) -> (impl std::future::Future<Output = ()>, Store<MaasCluster>) {
    let client = &ctx.client;
    let (capi, ns) = (ctx.capi, ctx.namespace.as_deref());
    let wc = watcher_config();
    let own = primary_watcher_config(ctx.watch_filter.as_deref());
    let clusters = Controller::new(scoped::<MaasCluster>(client, ns), own)
        .with_config(controller::Config::default().concurrency(concurrency));
    let store = clusters.store();
    let for_machines = store.clone();
    let for_secrets = store.clone();
    let secret_ctx = ctx.clone();
    let run = clusters
        .watches_with(
            capi_api(client, CapiKind::Cluster, capi, ns),
            capi_resource(CapiKind::Cluster, capi),
            wc.clone(),
            |obj| {
                decode::<Cluster>(obj)
                    .ok()
                    .and_then(|c| cluster_to_maas_cluster(&c))
            },
        )
        .watches(scoped::<MaasMachine>(client, ns), wc.clone(), move |mm| {
            maas_machine_to_maas_cluster(&for_machines, &mm)
        })
        .watches(
            scoped::<PartialObjectMeta<Secret>>(client, ns),
            wc,
            move |s| {
                let state = for_secrets.state();
                let readers = secret_readers(
                    state.iter().map(AsRef::as_ref),
                    s.metadata.namespace.as_deref().unwrap_or_default(),
                    s.metadata.name.as_deref().unwrap_or_default(),
                );
                // The Secret may be what the last failed pass lacked: no backoff holds it back.
                for cluster in &state {
                    if readers.contains(&ObjectRef::from(cluster.as_ref()))
                        && let Some(uid) = cluster.metadata.uid.as_deref()
                    {
                        secret_ctx.backoffs.release(uid);
                    }
                }
                readers
            },
        )
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile, error_policy, ctx.clone());
    (drain(CONTROLLER, run, ctx.watch_health.clone()), store)
}

/// The MaasClusters of `namespace` whose credentials Secret is `name`: the one `identityRef`
/// names, or the hosted `<cluster>-maas-credentials` one.
pub fn secret_readers<'a>(
    clusters: impl Iterator<Item = &'a MaasCluster>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<MaasCluster>> {
    clusters
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
        .filter(|c| {
            let (named, hosted) = credentials_secret_names(c);
            named.as_deref() == Some(name) || hosted == name
        })
        .map(ObjectRef::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(ns: &str, name: &str, identity: Option<&str>) -> MaasCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "MaasCluster",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"dnsDomain": "maas", "identityRef": identity.map(|n| serde_json::json!({"name": n}))}
        }))
        .unwrap()
    }

    #[test]
    fn a_secret_wakes_the_clusters_whose_credentials_it_holds() {
        let clusters = [
            cluster("ns", "east", Some("site-a")),
            cluster("ns", "west", Some("site-a")),
            cluster("ns", "hosted", None),
            cluster("other", "far", Some("site-a")),
        ];
        let woken = |name: &str| -> Vec<String> {
            secret_readers(clusters.iter(), "ns", name)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(woken("site-a"), ["east", "west"]);
        assert_eq!(woken("hosted-maas-credentials"), ["hosted"]);
        assert!(woken("unrelated").is_empty());
    }
}
