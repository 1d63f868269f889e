//! What wakes a MaasMachine: its Machine, its Cluster, its bootstrap Secret (through
//! [`BootstrapIndex`]), its identity Secret (through the context's identity readers) and the
//! MAAS observer.

use std::sync::Arc;

use capmaas_api::MaasMachine;
use capmaas_api::capi::{Cluster, Machine, cluster_name_label};
use futures::Stream;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;

use crate::k8s::capi_api::{CapiKind, capi_api, capi_resource, decode};
use crate::k8s::objects::scoped;
use crate::machine::bootstrap_index::BootstrapIndex;
use crate::machine::reconcile::{CONTROLLER, reconcile};
use crate::runtime::context::Context;
use crate::runtime::reconciler::{drain, error_policy, primary_watcher_config, watcher_config};
use crate::runtime::shutdown::Shutdown;

/// The MaasMachine controller with its watches: Machines (which also fill the bootstrap index),
/// bootstrap Secrets as metadata only (no Secret data is held in memory), Clusters, and the
/// objects the MAAS observers wake. Returns the run future and the MaasMachine store.
pub fn controller(
    ctx: Arc<Context>,
    concurrency: u16,
    woken: mpsc::UnboundedReceiver<ObjectRef<MaasMachine>>,
    shutdown: &Shutdown,
) -> (impl std::future::Future<Output = ()>, Store<MaasMachine>) {
    let client = &ctx.client;
    let (capi, ns) = (ctx.capi, ctx.namespace.as_deref());
    let wc = watcher_config();
    let own = primary_watcher_config(ctx.watch_filter.as_deref());
    let machines = Controller::new(scoped::<MaasMachine>(client, ns), own)
        .with_config(controller::Config::default().concurrency(concurrency));
    let store = machines.store();
    let for_clusters = store.clone();
    let index = Arc::new(BootstrapIndex::default());
    let index_for_machines = index.clone();
    let secret_readers = secret_readers(index, ctx.clone(), store.clone());
    let run = machines
        .watches_with(
            capi_api(client, CapiKind::Machine, capi, ns),
            capi_resource(CapiKind::Machine, capi),
            wc.clone(),
            move |obj| {
                decode::<Machine>(obj).ok().and_then(|m| {
                    index_for_machines.record(&m);
                    machine_to_maas_machine(&m)
                })
            },
        )
        .watches(
            scoped::<PartialObjectMeta<Secret>>(client, ns),
            wc.clone(),
            secret_readers,
        )
        .watches_with(
            capi_api(client, CapiKind::Cluster, capi, ns),
            capi_resource(CapiKind::Cluster, capi),
            wc,
            move |obj| {
                decode::<Cluster>(obj)
                    .map(|c| cluster_maas_machines(&for_clusters, &c))
                    .unwrap_or_default()
            },
        )
        .reconcile_on(woken_stream(woken))
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile, error_policy, ctx.clone());
    (drain(CONTROLLER, run, ctx.watch_health.clone()), store)
}

/// The mapping of the watch on Secret metadata: the MaasMachines reading the Secret as bootstrap
/// data, and those reading it as their identity, whose error backoff the Secret lifts (it may be
/// what their last failed pass lacked).
fn secret_readers(
    bootstrap: Arc<BootstrapIndex>,
    ctx: Arc<Context>,
    store: Store<MaasMachine>,
) -> impl Fn(PartialObjectMeta<Secret>) -> Vec<ObjectRef<MaasMachine>> + Send + Sync + 'static {
    move |secret| {
        let ns = secret.metadata.namespace.as_deref().unwrap_or_default();
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        let mut woken = bootstrap.readers(ns, name);
        for reader in ctx.identity_readers.readers(ns, name) {
            if let Some(uid) = store.get(&reader).and_then(|m| m.uid()) {
                ctx.backoffs.release(&uid);
            }
            woken.push(reader);
        }
        woken
    }
}

/// The observers' wake-ups as a stream for the controller.
fn woken_stream(
    rx: mpsc::UnboundedReceiver<ObjectRef<MaasMachine>>,
) -> impl Stream<Item = ObjectRef<MaasMachine>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// The mapping from a Machine to its MaasMachine (the controller's watch on Machines).
pub fn machine_to_maas_machine(
    m: &Machine,
) -> Option<kube::runtime::reflector::ObjectRef<MaasMachine>> {
    let r = m.spec.infrastructure_ref.as_ref()?;
    if r.kind.as_deref() != Some("MaasMachine") {
        return None;
    }
    let ns = r
        .namespace
        .clone()
        .or_else(|| m.metadata.namespace.clone())?;
    Some(kube::runtime::reflector::ObjectRef::new(r.name.as_deref()?).within(&ns))
}

/// MaasMachines of a cluster in a reflector store (the watch on Clusters).
pub fn cluster_maas_machines(
    store: &kube::runtime::reflector::Store<MaasMachine>,
    cluster: &Cluster,
) -> Vec<kube::runtime::reflector::ObjectRef<MaasMachine>> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let ns = cluster.metadata.namespace.clone();
    store
        .state()
        .iter()
        .filter(|m| {
            m.metadata.namespace == ns && cluster_name_label(&m.metadata) == Some(name.as_str())
        })
        .map(|m| kube::runtime::reflector::ObjectRef::from(m.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn machine_maps_to_its_infrastructure_ref() {
        let m: Machine = serde_json::from_value(json!({
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"clusterName": "c", "infrastructureRef": {"kind": "MaasMachine", "name": "mm-1", "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1"}}
        }))
        .unwrap();
        let r = machine_to_maas_machine(&m).unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("mm-1", Some("ns"))
        );
        let other: Machine = serde_json::from_value(json!({
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"infrastructureRef": {"kind": "DockerMachine", "name": "d"}}
        }))
        .unwrap();
        assert!(machine_to_maas_machine(&other).is_none());
    }
}
