//! What wakes a MaasCluster: its Cluster, and the MaasMachines of the cluster (DNS follows the
//! control-plane machines; deletion notices the last machine going).

use std::sync::Arc;

use capmaas_api::capi::Cluster;
use capmaas_api::{MaasCluster, MaasMachine};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::Store;

use crate::cluster::reconcile::{
    CONTROLLER, cluster_to_maas_cluster, maas_machine_to_maas_cluster, reconcile,
};
use crate::k8s::capi_api::{CapiKind, capi_api, capi_resource, decode};
use crate::k8s::objects::scoped;
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
        .watches(scoped::<MaasMachine>(client, ns), wc, move |mm| {
            maas_machine_to_maas_cluster(&for_machines, &mm)
        })
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile, error_policy, ctx.clone());
    (drain(CONTROLLER, run, ctx.watch_health.clone()), store)
}
