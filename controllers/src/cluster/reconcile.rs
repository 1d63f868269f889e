//! The MaasCluster reconciler: endpoint, DNS resource, failure domains, deletion.

use std::sync::Arc;

use capmaas_api::capi::{Cluster, Machine, cluster_name_label, has_paused_annotation};
use capmaas_api::{
    ApiEndpoint, MaasCluster, MaasClusterStatus, MaasMachine, MachineAddressType, annotations,
    finalizers, labels,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::cluster::decide::ClusterFacts;
use crate::cluster::decide::DnsView;
use crate::cluster::decide::{ControlPlaneMachine, control_plane_ips, dns_name, is_our_dns_name};
use crate::cluster::endpoint_addresses::{
    EndpointChoice, PREFERRED_SUBNET_CONFIGMAP, PREFERRED_SUBNET_KEY, endpoint_choice, endpoint_ips,
};
use crate::cluster::status::cluster_status;
use crate::cluster::status::cluster_status_on_error;
use crate::cluster::steps::ClusterStore;
use crate::cluster::steps::run_cluster_pass_report;
use crate::cluster::steps::{ClusterPassEnd, ClusterPassReport};
use crate::k8s::capi_api::{CapiKind, get_capi, list_capi};
use crate::k8s::objects::{
    DELETE_FOR_MOVE, capi_owner, has_annotation, has_finalizer, merge_patch, set_finalizer,
};
use crate::k8s::{identity, status_patch};
use crate::maas::credentials::identity_secret;
use crate::maas::no_maas::NoMaas;
use crate::runtime::context::{ClusterView, Context};
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::reconciler::{PassResult, reconcile_with};

/// The controller name in metrics and logs.
pub const CONTROLLER: &str = "maascluster";

struct KubeClusterStore<'a> {
    api: Api<MaasCluster>,
    client: &'a kube::Client,
    ns: &'a str,
    cluster: &'a MaasCluster,
    gate: &'a crate::runtime::lease_gate::ActGate,
}

impl ClusterStore for KubeClusterStore<'_> {
    fn may_act(&self) -> bool {
        self.gate.may_act()
    }

    /// The identity Secret goes first: once the MaasCluster's finalizer is gone nothing would
    /// let go of it.
    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        identity::let_go(self.client, self.ns, self.cluster).await?;
        set_finalizer(
            &self.api,
            &self.cluster.metadata,
            finalizers::MAAS_CLUSTER,
            false,
        )
        .await
    }
}

/// Entry point for the controller runtime.
pub async fn reconcile(obj: Arc<MaasCluster>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    reconcile_with(
        CONTROLLER,
        obj,
        ctx,
        |obj, ctx| async move { reconcile_inner(&obj, &ctx).await },
        |obj, ctx, error| {
            let (label, message, text) =
                (error.label(), error.condition_message(), error.to_string());
            async move {
                // A MaasCluster managed by another controller is not ours to touch.
                if !has_annotation(&obj.metadata, annotations::MANAGED_BY) {
                    write_error_status(&obj, &ctx, label, &message).await;
                    let reference = obj.object_ref(&());
                    ctx.event(&reference, EventType::Warning, label, "Reconcile", text)
                        .await;
                }
            }
        },
    )
    .await
}

async fn write_error_status(obj: &MaasCluster, ctx: &Context, label: &str, message: &str) {
    let Some(ns) = obj.namespace() else { return };
    let api: Api<MaasCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let status = cluster_status_on_error(
        obj.status.as_ref(),
        label,
        message,
        obj.metadata.generation,
        jiff::Timestamp::now(),
    );
    if obj.status.as_ref() != Some(&status)
        && let Err(e) = write_status(ctx, &api, &obj.name_any(), obj.status.as_ref(), &status).await
    {
        warn!(error = %e, "cannot write error status");
    }
}

async fn write_status(
    ctx: &Context,
    api: &Api<MaasCluster>,
    name: &str,
    prev: Option<&MaasClusterStatus>,
    status: &MaasClusterStatus,
) -> Result<(), ReconcileError> {
    let action = "write MaasCluster status";
    status_patch::write_typed_status(&ctx.status_shape, api, name, action, prev, status).await
}

/// The control-plane machines of a cluster as the DNS decision sees them.
async fn control_plane(
    ctx: &Context,
    ns: &str,
    cluster: &str,
    maas_machines: &[MaasMachine],
    choice: &EndpointChoice,
) -> Result<Vec<ControlPlaneMachine>, ReconcileError> {
    let selector = format!(
        "{}={cluster},{}",
        labels::CLUSTER_NAME,
        labels::CONTROL_PLANE
    );
    let machines: Vec<Machine> =
        list_capi(&ctx.client, CapiKind::Machine, ctx.capi, ns, &selector).await?;
    Ok(machines
        .iter()
        .filter_map(|m| {
            let infra = m.spec.infrastructure_ref.as_ref()?.name.clone()?;
            let mm = maas_machines
                .iter()
                .find(|x| x.metadata.name.as_deref() == Some(infra.as_str()))?;
            let status = mm.status.clone().unwrap_or_default();
            let ips: Vec<String> = status
                .addresses
                .iter()
                .filter(|a| a.type_ == MachineAddressType::InternalIp)
                .map(|a| a.address.clone())
                .collect();
            Some(ControlPlaneMachine {
                deployed: status.machine_state.as_deref() == Some("Deployed"),
                powered_on: status.machine_powered == Some(true),
                deleting: mm.metadata.deletion_timestamp.is_some()
                    || m.metadata.deletion_timestamp.is_some(),
                ips: endpoint_ips(choice, &status.interfaces, &ips),
            })
        })
        .collect())
}

/// The `preferredSubnets` of the Go provider's ConfigMap in the namespace, when there is one.
/// Read at each pass that writes the record, as the Go provider does (a change applies at the
/// next pass); unreadable (no such ConfigMap, or a role without ConfigMap reads) is none.
async fn preferred_subnets(ctx: &Context, ns: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    match api.get_opt(PREFERRED_SUBNET_CONFIGMAP).await {
        Ok(found) => found?.data?.remove(PREFERRED_SUBNET_KEY),
        Err(error) => {
            warn!(namespace = ns, %error, "cannot read the {PREFERRED_SUBNET_CONFIGMAP} ConfigMap; endpoint addresses from the boot interfaces");
            None
        }
    }
}

/// What the fetch stage read for one MaasCluster.
struct ClusterFetched {
    /// The owner Cluster.
    owner: Option<Cluster>,
    /// The Cluster named by the cluster-name label, when there is no owner yet (CAPI sets the
    /// ownerRef only while reconciling an unpaused Cluster): for the pause check alone.
    labelled: Option<Cluster>,
    /// The cluster's name.
    cluster_name: String,
}

impl ClusterFetched {
    /// Whether the Cluster (owner, else the labelled one) or the MaasCluster is paused.
    fn paused(&self, obj: &MaasCluster) -> bool {
        self.owner
            .as_ref()
            .or(self.labelled.as_ref())
            .is_some_and(Cluster::paused)
            || has_paused_annotation(&obj.metadata)
    }
}

async fn fetch(
    obj: &MaasCluster,
    ctx: &Context,
    ns: &str,
) -> Result<ClusterFetched, ReconcileError> {
    let client = &ctx.client;
    let owner = match capi_owner(&obj.metadata, "Cluster") {
        Some(n) => get_capi::<Cluster>(client, CapiKind::Cluster, ctx.capi, ns, &n).await?,
        None => None,
    };
    let cluster_name = owner
        .as_ref()
        .and_then(|c| c.metadata.name.clone())
        .or_else(|| cluster_name_label(&obj.metadata).map(str::to_string))
        .unwrap_or_else(|| obj.name_any());
    let labelled = match (&owner, cluster_name_label(&obj.metadata)) {
        (None, Some(n)) => get_capi::<Cluster>(client, CapiKind::Cluster, ctx.capi, ns, n).await?,
        _ => None,
    };
    Ok(ClusterFetched {
        owner,
        labelled,
        cluster_name,
    })
}

async fn list_machines(
    ctx: &Context,
    ns: &str,
    cluster: &str,
) -> Result<Vec<MaasMachine>, ReconcileError> {
    let selector = format!("{}={cluster}", labels::CLUSTER_NAME);
    Ok(Api::<MaasMachine>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "list MaasMachines"))?
        .items)
}

/// The endpoint the user gave, if any: the MaasCluster's, else the owner Cluster's
/// `spec.controlPlaneEndpoint` (Cluster API's contract: a user-set Cluster endpoint is the
/// cluster's, and the infrastructure provider adopts it rather than making its own). An empty
/// host, or the Cluster's port 0, gives none.
fn user_given_endpoint<'a>(
    maas_cluster: Option<&'a ApiEndpoint>,
    cluster: Option<&'a ApiEndpoint>,
) -> Option<&'a ApiEndpoint> {
    let given = |e: &&ApiEndpoint| !e.host.trim().is_empty();
    maas_cluster
        .filter(given)
        .or_else(|| cluster.filter(given).filter(|e| e.port > 0))
}

/// The facts of a pass, pure: from the object, what the fetch stage read and the MaasMachines
/// of the cluster. Zones, the DNS record and the control-plane IPs are filled in later.
fn cluster_facts(
    obj: &MaasCluster,
    fetched: &ClusterFetched,
    uid: String,
    remaining_machines: usize,
) -> ClusterFacts {
    let spec = &obj.spec;
    let endpoint = user_given_endpoint(
        spec.control_plane_endpoint.as_ref(),
        fetched
            .owner
            .as_ref()
            .and_then(|c| c.spec.control_plane_endpoint.as_ref()),
    );
    let mut facts = ClusterFacts {
        name: fetched.cluster_name.clone(),
        uid,
        managed_by: false,
        paused: fetched.paused(obj),
        deleting: obj.metadata.deletion_timestamp.is_some(),
        moving: has_annotation(&obj.metadata, DELETE_FOR_MOVE),
        has_owner: fetched.owner.is_some(),
        custom_dns: has_annotation(&obj.metadata, annotations::CUSTOM_DNS_PROVIDED),
        spec_endpoint_host: endpoint.map(|e| e.host.clone()),
        spec_endpoint_port: endpoint.and_then(|e| u16::try_from(e.port).ok()),
        dns_domain: spec.dns_domain.clone(),
        failure_domains: spec.failure_domains.clone().unwrap_or_default(),
        zones: None,
        dns: DnsView::Unread,
        recorded_dns_name: None,
        control_plane_ips: Default::default(),
        remaining_machines,
    };
    // The endpoint we wrote ourselves (our DNS name, under this uid or, after a move, under the
    // source's) is not a user-given one; nor is one the Go provider wrote (its own name shape,
    // which it also records as `status.network.dnsName`): that record is adopted and managed.
    let recorded_by_a_provider = obj
        .status
        .as_ref()
        .and_then(|s| s.network.as_ref())
        .and_then(|n| n.dns_name.clone());
    if let Some(host) = facts.spec_endpoint_host.clone()
        && (host == dns_name(&facts.name, &facts.uid, &facts.dns_domain)
            || is_our_dns_name(&host, &facts.name, &facts.dns_domain)
            || recorded_by_a_provider.as_deref() == Some(host.as_str()))
    {
        facts.recorded_dns_name = Some(host);
        facts.spec_endpoint_host = None;
    }
    facts
}

/// The pass: fetch -> finalizer gate -> facts -> MAAS view (memo) -> pass -> memo -> endpoint,
/// status and events.
async fn reconcile_inner(obj: &MaasCluster, ctx: &Context) -> PassResult {
    if has_annotation(&obj.metadata, annotations::MANAGED_BY) {
        return Ok(None);
    }
    let ns = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasCluster without namespace".into()))?;
    let uid = obj
        .uid()
        .ok_or_else(|| ReconcileError::Invalid("MaasCluster without uid".into()))?;
    let api: Api<MaasCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let fetched = fetch(obj, ctx, &ns).await?;
    // The finalizer gate first: its passes need nothing else from the API server.
    let deleting = obj.metadata.deletion_timestamp.is_some();
    match (
        deleting,
        has_finalizer(&obj.metadata, finalizers::MAAS_CLUSTER),
    ) {
        (true, false) => return Ok(None),
        (false, false) if !fetched.paused(obj) => {
            set_finalizer(&api, &obj.metadata, finalizers::MAAS_CLUSTER, true).await?;
            return Ok(None);
        }
        _ => {}
    }
    let machines = list_machines(ctx, &ns, &fetched.cluster_name).await?;
    let mut facts = cluster_facts(obj, &fetched, uid, machines.len());
    if facts.uses_maas_dns() && !facts.deleting {
        let named = obj.spec.endpoint_networks.as_ref();
        // The ConfigMap counts only where the MaasCluster names no network: no read otherwise.
        let preferred = match named.filter(|n| !n.is_empty()) {
            Some(_) => None,
            None => preferred_subnets(ctx, &ns).await,
        };
        let choice = endpoint_choice(named, preferred.as_deref());
        let cp = control_plane(ctx, &ns, &fetched.cluster_name, &machines, &choice).await?;
        facts.control_plane_ips = control_plane_ips(&cp);
    }
    // Zones and our DNS record rarely change behind our back: reuse what the last pass learnt
    // until the resync period passes. Deletion always looks again.
    if !facts.deleting
        && let Some(memo) = ctx.cluster_views.get(&facts.uid)
    {
        facts.zones = memo.zones;
        facts.dns = memo.dns;
    }
    let uid = facts.uid.clone();
    let pass = match run_pass(obj, ctx, &api, &ns, facts).await {
        Ok(pass) => pass,
        Err(error) => {
            // What we remembered may be what just failed (a record deleted behind our back).
            ctx.cluster_views.set(&uid, None);
            return Err(error);
        }
    };
    let memo =
        (!deleting && (pass.zones.is_some() || pass.dns != DnsView::Unread)).then(|| ClusterView {
            zones: pass.zones.clone(),
            dns: pass.dns.clone(),
        });
    ctx.cluster_views.set(&uid, memo);
    finish(obj, ctx, &api, pass.end).await
}

/// The pass against the object's MAAS, or, without credentials, against the refusing MAAS.
async fn run_pass(
    obj: &MaasCluster,
    ctx: &Context,
    api: &Api<MaasCluster>,
    ns: &str,
    facts: ClusterFacts,
) -> Result<ClusterPassReport, ReconcileError> {
    // One read of the identity Secret gives the credentials and what its finalizer needs.
    let identity =
        identity_secret(&ctx.client, ns, Some(obj), !ctx.connector.has_default()).await?;
    if let Some(identity) = &identity
        && obj.metadata.deletion_timestamp.is_none()
    {
        identity::protect(&ctx.client, ns, &identity.secret).await?;
    }
    let creds = identity.map(|identity| identity.creds);
    let store = KubeClusterStore {
        api: api.clone(),
        client: &ctx.client,
        ns,
        cluster: obj,
        gate: &ctx.gate,
    };
    match ctx.connector.client(creds.as_ref())? {
        Some(m) => run_cluster_pass_report(&m, &store, facts).await,
        None => match run_cluster_pass_report(&NoMaas, &store, facts).await {
            Err(ReconcileError::Maas(_)) => Err(ReconcileError::MissingCredentials),
            other => other,
        },
    }
}

/// Records the endpoint, writes the status and tells a terminal failure.
async fn finish(
    obj: &MaasCluster,
    ctx: &Context,
    api: &Api<MaasCluster>,
    end: ClusterPassEnd,
) -> PassResult {
    let name = obj.name_any();
    if let ClusterPassEnd::Ready(r) = &end {
        let current = obj
            .spec
            .control_plane_endpoint
            .as_ref()
            .map(|e| (e.host.as_str(), e.port));
        if current != Some((r.host.as_str(), i32::from(r.port))) && !r.host.is_empty() {
            let patch = json!({"spec": {"controlPlaneEndpoint": {"host": r.host, "port": r.port}}});
            merge_patch(api, &name, patch, "set endpoint").await?;
        }
    }
    if let Some(status) = cluster_status(
        obj.status.as_ref(),
        &end,
        ctx.contract,
        obj.metadata.generation,
        jiff::Timestamp::now(),
    ) && obj.status.as_ref() != Some(&status)
    {
        write_status(ctx, api, &name, obj.status.as_ref(), &status).await?;
    }
    match end {
        ClusterPassEnd::Waiting { after, .. } => Ok(after),
        ClusterPassEnd::Failed { reason, message } => {
            let reference = obj.object_ref(&());
            let reason = reason.as_str();
            ctx.event(&reference, EventType::Warning, reason, "Reconcile", message)
                .await;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The MaasCluster a Cluster points at (the watch on Clusters).
pub fn cluster_to_maas_cluster(c: &Cluster) -> Option<ObjectRef<MaasCluster>> {
    let r = c.spec.infrastructure_ref.as_ref()?;
    if r.kind.as_deref() != Some("MaasCluster") {
        return None;
    }
    let ns = r
        .namespace
        .clone()
        .or_else(|| c.metadata.namespace.clone())?;
    Some(ObjectRef::new(r.name.as_deref()?).within(&ns))
}

/// The MaasClusters of the cluster a MaasMachine belongs to (the watch on MaasMachines, so DNS
/// follows control-plane machines and deletion notices the last machine going).
pub fn maas_machine_to_maas_cluster(
    store: &Store<MaasCluster>,
    mm: &MaasMachine,
) -> Vec<ObjectRef<MaasCluster>> {
    let Some(cluster) = cluster_name_label(&mm.metadata) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|c| c.metadata.namespace == mm.metadata.namespace)
        .filter(|c| {
            capi_owner(&c.metadata, "Cluster").as_deref() == Some(cluster)
                || cluster_name_label(&c.metadata) == Some(cluster)
                || c.metadata.name.as_deref() == Some(cluster)
        })
        .map(|c| ObjectRef::from(c.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clusters_endpoint_counts_when_the_maas_cluster_names_none() {
        let at = |host: &str, port| ApiEndpoint {
            host: host.into(),
            port,
        };
        let (ours, theirs) = (at("10.0.0.5", 6443), at("api.example.test", 443));
        assert_eq!(user_given_endpoint(Some(&ours), Some(&theirs)), Some(&ours));
        assert_eq!(user_given_endpoint(None, Some(&theirs)), Some(&theirs));
        assert_eq!(
            user_given_endpoint(Some(&at(" ", 0)), Some(&theirs)),
            Some(&theirs)
        );
        assert_eq!(user_given_endpoint(None, Some(&at("", 6443))), None);
        assert_eq!(user_given_endpoint(None, Some(&at("api", 0))), None);
        assert_eq!(user_given_endpoint(None, None), None);
    }

    #[test]
    fn cluster_maps_to_its_infrastructure_ref() {
        let c: Cluster = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"infrastructureRef": {"kind": "MaasCluster", "name": "c-maas"}}
        }))
        .unwrap();
        let r = cluster_to_maas_cluster(&c).unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("c-maas", Some("ns"))
        );
    }
}
