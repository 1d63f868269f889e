//! The MaasMachine reconciler: gathers facts, runs a pass, writes status and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capmaas_api::capi::{Cluster, Machine, cluster_name_label, has_paused_annotation};
use capmaas_api::{MaasCluster, MaasMachine, MaasMachineStatus, annotations, finalizers};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::domain::allocation::{GpuRequest, MachineRequirements};
use crate::domain::ignition::{IgnitionError, IgnitionPatchOptions};
use crate::domain::reasons::WaitReason;
use crate::domain::timing::DeployFailures;
use crate::k8s::capi_api::{CapiKind, get_capi};
use crate::k8s::objects::{
    DELETE_FOR_MOVE, annotation, capi_owner, has_annotation, has_finalizer, merge_patch,
    set_finalizer,
};
use crate::k8s::status_patch;
use crate::maas::credentials::identity_credentials;
use crate::maas::no_maas::NoMaas;
use crate::machine::decide::EraseOptions;
use crate::machine::decide::MaasView;
use crate::machine::decide::MachineFacts;
use crate::machine::decide::OwnerMachine;
use crate::machine::node::{NodeOutcome, set_node_provider_id, workload_client};
use crate::machine::source::gpu::{GPU_REJECTED, GpuFacts};
use crate::machine::status::machine_status;
use crate::machine::status::machine_status_on_error;
use crate::machine::steady::{NodeTarget, SteadyFacts, SteadyStep, steady_step};
use crate::machine::steps::PassEnd;
use crate::machine::steps::PassReport;
use crate::machine::steps::UserDataOptions;
use crate::machine::steps::run_machine_pass_with;
use crate::machine::store::KubeMachineStore;
use crate::runtime::context::Context;
use crate::runtime::error::ReconcileError;
use crate::runtime::metrics::ReconcileResult;

/// The controller name in metrics and logs.
pub const CONTROLLER: &str = "maasmachine";

/// How soon a ready machine whose Node CAPI has not matched yet looks at the Node again.
pub const NODE_RETRY: Duration = Duration::from_secs(20);

/// The allocation constraints of a MaasMachine spec.
pub fn requirements(spec: &capmaas_api::MaasMachineSpec) -> MachineRequirements {
    let pos_u32 = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    let pos_u64 = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok());
    MachineRequirements {
        min_cpu: pos_u32(spec.min_cpu),
        min_memory_mib: pos_u64(spec.min_memory),
        tags: spec.tags.clone().unwrap_or_default(),
        not_tags: spec.not_tags.clone().unwrap_or_default(),
        failure_domain: spec.failure_domain.clone(),
        resource_pool: spec.resource_pool.clone(),
        min_disk_gb: pos_u64(spec.min_disk_size),
        gpu: spec.gpu.as_ref().map(|g| GpuRequest {
            vendor: g.vendor.clone(),
            product: g.product.clone(),
            min_count: pos_u32(g.min_count),
        }),
    }
}

/// The release options of a MaasMachine spec.
pub fn erase_options(spec: &capmaas_api::MaasMachineSpec) -> EraseOptions {
    let r = spec.release.clone().unwrap_or_default();
    EraseOptions {
        erase: r.erase.unwrap_or(false),
        quick_erase: r.quick_erase.unwrap_or(false),
        secure_erase: r.secure_erase.unwrap_or(false),
    }
}

/// Entry point for the controller runtime.
pub async fn reconcile(obj: Arc<MaasMachine>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let span = info_span!("reconcile", controller = CONTROLLER, namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any());
    let result = reconcile_inner(&obj, &ctx).instrument(span.clone()).await;
    let outcome = match &result {
        Ok(None) => ReconcileResult::Success,
        Ok(Some(_)) => ReconcileResult::Requeue,
        Err(_) => ReconcileResult::Error,
    };
    ctx.metrics
        .reconciled(CONTROLLER, outcome, started.elapsed());
    match result {
        Ok(None) => Ok(Action::requeue(ctx.sync_period)),
        Ok(Some(after)) => Ok(Action::requeue(after)),
        Err(error) => {
            report_error(&obj, &ctx, &error).instrument(span).await;
            Err(error)
        }
    }
}

/// Requeue policy for errors.
pub fn error_policy(_obj: Arc<MaasMachine>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::requeue(error.requeue_after())
}

async fn report_error(obj: &MaasMachine, ctx: &Context, error: &ReconcileError) {
    if error.is_conflict() {
        tracing::debug!(%error, "lost a write race; retrying on the fresh object");
        return;
    }
    warn!(%error, label = error.label(), transient = error.is_transient(), "reconcile failed");
    let Some(ns) = obj.namespace() else { return };
    let api: Api<MaasMachine> = Api::namespaced(ctx.client.clone(), &ns);
    let status = machine_status_on_error(
        obj.status.as_ref(),
        error.label(),
        &error.to_string(),
        obj.metadata.generation,
        jiff::Timestamp::now(),
    );
    if obj.status.as_ref() != Some(&status)
        && let Err(e) = write_status(&api, &obj.name_any(), obj.status.as_ref(), &status).await
    {
        warn!(error = %e, "cannot write error status");
    }
    ctx.event(
        &obj.object_ref(&()),
        EventType::Warning,
        error.label(),
        "Reconcile",
        error.to_string(),
    )
    .await;
}

async fn write_status(
    api: &Api<MaasMachine>,
    name: &str,
    prev: Option<&MaasMachineStatus>,
    status: &MaasMachineStatus,
) -> Result<(), ReconcileError> {
    status_patch::write_typed_status(api, name, "write MaasMachine status", prev, status).await
}

/// Returns `None` to wait for a change (or the resync), `Some(d)` to look again after `d`.
async fn reconcile_inner(
    obj: &MaasMachine,
    ctx: &Context,
) -> Result<Option<Duration>, ReconcileError> {
    let ns = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachine without namespace".into()))?;
    let name = obj.name_any();
    let uid = obj
        .uid()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachine without uid".into()))?;
    let client = &ctx.client;
    let api: Api<MaasMachine> = Api::namespaced(client.clone(), &ns);
    let kube_err = |action: &'static str| move |source| ReconcileError::Kube { action, source };

    let machine = match capi_owner(&obj.metadata, "Machine") {
        Some(owner) => {
            get_capi::<Machine>(client, CapiKind::Machine, ctx.capi, &ns, &owner).await?
        }
        None => None,
    };
    let cluster_name = machine
        .as_ref()
        .and_then(|m| m.cluster_name().map(str::to_string))
        .or_else(|| cluster_name_label(&obj.metadata).map(str::to_string));
    let cluster = match &cluster_name {
        Some(c) => get_capi::<Cluster>(client, CapiKind::Cluster, ctx.capi, &ns, c).await?,
        None => None,
    };
    let maas_cluster = match cluster
        .as_ref()
        .and_then(|c| c.spec.infrastructure_ref.as_ref())
        .and_then(|r| r.name.clone())
    {
        Some(n) => Api::<MaasCluster>::namespaced(client.clone(), &ns)
            .get_opt(&n)
            .await
            .map_err(kube_err("read MaasCluster"))?,
        None => None,
    };

    let paused =
        cluster.as_ref().is_some_and(Cluster::paused) || has_paused_annotation(&obj.metadata);
    let deleting = obj.metadata.deletion_timestamp.is_some();
    if deleting && !has_finalizer(&obj.metadata, finalizers::MAAS_MACHINE) {
        return Ok(None);
    }
    if !deleting && !paused && !has_finalizer(&obj.metadata, finalizers::MAAS_MACHINE) {
        set_finalizer(&api, &obj.metadata, finalizers::MAAS_MACHINE, true).await?;
        // The update triggers another pass with the fresh object.
        return Ok(None);
    }

    // Steady state: a machine confirmed ready needs no MAAS call until the resync period has
    // passed; at most its Node's providerID is still to be set.
    let node_matched = machine.as_ref().is_some_and(|m| m.node_name().is_some());
    let confirmed = ctx.recently_confirmed(&uid);
    match steady_step(&SteadyFacts {
        deleting,
        paused,
        ready: obj.status.as_ref().is_some_and(|s| s.ready),
        node_matched,
        confirmed: confirmed.as_ref(),
        provider_id: spec_provider_id(obj),
    }) {
        SteadyStep::Idle => return Ok(None),
        SteadyStep::PatchNode(target) => {
            if let Some(cluster) = &cluster_name {
                patch_node(ctx, obj, &ns, cluster, target).await;
            }
            return Ok(Some(NODE_RETRY));
        }
        SteadyStep::Pass => {}
    }

    // A machine waiting on MAAS progress is read when its poll is due, not on every wake-up our
    // own status writes cause.
    if !paused && let Some(left) = ctx.poll_pending(&uid, deleting) {
        return Ok(Some(left));
    }

    let creds = identity_credentials(client, &ns, maas_cluster.as_ref()).await?;
    let maas = ctx.connector.client(creds.as_ref())?;
    let spec = &obj.spec;
    let facts = MachineFacts {
        uid: uid.clone(),
        namespace: ns.clone(),
        name: name.clone(),
        deleting,
        moving: has_annotation(&obj.metadata, DELETE_FOR_MOVE),
        management: ctx.management.clone(),
        paused,
        owner: machine.as_ref().map(|m| OwnerMachine {
            bootstrap_data_secret: m.bootstrap_data_secret_name().map(str::to_string),
            failure_domain: m.failure_domain().map(str::to_string),
        }),
        cluster_infrastructure_ready: cluster.as_ref().map(Cluster::infrastructure_provisioned),
        system_id: spec.system_id.clone().filter(|s| !s.is_empty()),
        attempt_marked: has_annotation(&obj.metadata, annotations::ALLOCATION_ATTEMPT),
        release_intent: has_annotation(&obj.metadata, annotations::RELEASE_INTENT),
        intent_marked_this_pass: false,
        failures: annotation(&obj.metadata, annotations::DEPLOY_ATTEMPTS)
            .map(DeployFailures::parse)
            .unwrap_or_default(),
        requirements: requirements(spec),
        image: spec.image.clone(),
        deploy_in_memory: spec.deploy_in_memory.unwrap_or(false),
        erase: erase_options(spec),
        default_zone: ctx.default_zone.clone(),
        deploying_for: ctx.deploying_for(&uid),
        maas: MaasView::Unread,
        gpu: GpuFacts::from_annotation(annotation(&obj.metadata, GPU_REJECTED)),
        now: jiff::Timestamp::now(),
    };
    let store = KubeMachineStore {
        api: api.clone(),
        secrets: Api::<Secret>::namespaced(client.clone(), &ns),
        meta: obj.metadata.clone(),
    };
    let options = UserDataOptions {
        format_override: spec.user_data_format.map(|f| {
            match f {
                capmaas_api::UserDataFormat::CloudConfig => "cloud-config",
                capmaas_api::UserDataFormat::Ignition => "ignition",
            }
            .to_string()
        }),
        ignition: IgnitionPatchOptions::from_spec(spec.ignition.as_ref()),
    };
    let report = match &maas {
        Some(m) => run_machine_pass_with(m, &store, facts, &options).await,
        None => match run_machine_pass_with(&NoMaas, &store, facts, &options).await {
            Err(ReconcileError::Maas(_)) => Err(ReconcileError::MissingCredentials),
            other => other,
        },
    }?;

    let poll_after = match &report.end {
        PassEnd::Waiting {
            reason: WaitReason::Deploying | WaitReason::Releasing | WaitReason::PoweringOn,
            after,
        } => *after,
        _ => None,
    };
    ctx.set_next_poll(&uid, deleting, poll_after);
    ctx.confirm_ready(
        &uid,
        match &report.end {
            PassEnd::Ready(ready) => Some(node_target(ready)),
            _ => None,
        },
    );
    ctx.mark_deploying(
        &uid,
        matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::Deploying,
                ..
            }
        ),
    );
    publish_step_events(obj, ctx, &report).await;

    let was_ready = obj.status.as_ref().is_some_and(|s| s.ready);
    let mut status = machine_status(
        obj.status.as_ref(),
        &report,
        obj.metadata.generation,
        jiff::Timestamp::now(),
    );
    if let (PassEnd::Ready(ready), Some(st), Some(client)) = (&report.end, status.as_mut(), &maas) {
        add_gpu_inventory(ctx, obj, client, ready, st).await;
    }
    if let Some(status) = status
        && obj.status.as_ref() != Some(&status)
    {
        write_status(&api, &name, obj.status.as_ref(), &status).await?;
    }

    match &report.end {
        PassEnd::Ready(ready) => {
            if spec.provider_id.as_deref() != Some(ready.provider_id.as_str()) {
                merge_patch(
                    &api,
                    &name,
                    json!({"spec": {"providerID": ready.provider_id}}),
                    "record providerID",
                )
                .await?;
            }
            if !was_ready {
                ctx.event(
                    &obj.object_ref(&()),
                    EventType::Normal,
                    "Ready",
                    "Deploy",
                    format!("{} is deployed", ready.system_id),
                )
                .await;
            }
            let needs_node = machine.as_ref().is_some_and(|m| m.node_name().is_none());
            if let (true, Some(cluster)) = (needs_node, &cluster_name) {
                patch_node(ctx, obj, &ns, cluster, &node_target(ready)).await;
                // Come back soon until CAPI has matched the Node; the steady state retries the
                // Node without reading MAAS.
                return Ok(Some(NODE_RETRY));
            }
            Ok(None)
        }
        PassEnd::Waiting { after, .. } => Ok(*after),
        PassEnd::Failed { reason, message } => {
            ctx.event(
                &obj.object_ref(&()),
                EventType::Warning,
                reason.as_str(),
                "Reconcile",
                message.clone(),
            )
            .await;
            Ok(None)
        }
        PassEnd::Finalized => Ok(None),
    }
}

/// Reads the GPU inventory once for machines that asked for GPUs (one MAAS call per machine
/// life), and warns when fewer GPUs than asked for are present.
async fn add_gpu_inventory(
    ctx: &Context,
    obj: &MaasMachine,
    maas: &maas_client::MaasClient,
    ready: &crate::machine::decide::ReadyMachine,
    status: &mut MaasMachineStatus,
) {
    let Some(gpu) = &obj.spec.gpu else { return };
    let Some(hw) = status.hardware.as_mut() else {
        return;
    };
    if !hw.gpus.is_empty() {
        return;
    }
    match maas_client::MaasApi::node_devices(maas, &ready.system_id, Some("gpu")).await {
        Ok(devices) => {
            hw.gpus = crate::domain::observe::gpu_devices(&devices);
            let wanted = usize::try_from(gpu.min_count.unwrap_or(1)).unwrap_or(0);
            if hw.gpus.len() < wanted {
                let note = format!(
                    "{} has {} GPUs, {} requested",
                    ready.system_id,
                    hw.gpus.len(),
                    wanted
                );
                ctx.event(
                    &obj.object_ref(&()),
                    EventType::Warning,
                    "InsufficientGPUs",
                    "Inventory",
                    note,
                )
                .await;
            }
        }
        Err(error) => tracing::debug!(%error, "cannot read GPU inventory yet"),
    }
}

/// The Node names of a ready machine.
fn node_target(ready: &crate::machine::decide::ReadyMachine) -> NodeTarget {
    NodeTarget {
        hostname: ready.hostname.clone(),
        fqdn: ready.fqdn.clone(),
        provider_id: ready.provider_id.clone(),
    }
}

fn spec_provider_id(obj: &MaasMachine) -> Option<&str> {
    obj.spec.provider_id.as_deref().filter(|p| !p.is_empty())
}

async fn patch_node(
    ctx: &Context,
    obj: &MaasMachine,
    ns: &str,
    cluster: &str,
    target: &NodeTarget,
) {
    let result = async {
        let workload = workload_client(&ctx.client, ns, cluster).await?;
        set_node_provider_id(
            &workload,
            &target.hostname,
            &target.fqdn,
            &target.provider_id,
        )
        .await
    }
    .await;
    match result {
        Ok(NodeOutcome::Set(node)) => {
            info!(%node, "set the Node's providerID");
            ctx.event(
                &obj.object_ref(&()),
                EventType::Normal,
                "NodeProviderIDSet",
                "PatchNode",
                format!("Node {node}"),
            )
            .await;
        }
        Ok(other) => tracing::debug!(?other, "Node providerID unchanged"),
        Err(error) => tracing::debug!(%error, "workload Node not reachable yet"),
    }
}

async fn publish_step_events(obj: &MaasMachine, ctx: &Context, report: &PassReport) {
    let system = || match &report.maas {
        MaasView::Found(m) => m.system_id.clone(),
        _ => String::new(),
    };
    for (i, step) in report.steps.iter().enumerate() {
        let (reason, note) = match *step {
            "Allocate" if report.steps.get(i + 1) == Some(&"RecordSystemId") => {
                ("Allocated", format!("allocated MAAS machine {}", system()))
            }
            "RecordSystemId" if i > 0 && report.steps[i - 1] == "AdoptLookup" => (
                "Adopted",
                format!(
                    "adopted MAAS machine {} from an interrupted allocation",
                    system()
                ),
            ),
            // Refused before any MAAS call: reported below as a warning.
            "Deploy" if report.bootstrap_problem.is_some() => continue,
            "Deploy" => (
                "DeployStarted",
                format!(
                    "deploying with {} bootstrap data",
                    report.deployed_format.map_or("no", |f| f.as_str())
                ),
            ),
            "Release" => ("Released", "released the MAAS machine".to_string()),
            _ => continue,
        };
        ctx.event(&obj.object_ref(&()), EventType::Normal, reason, step, note)
            .await;
    }
    if let Some(problem) = &report.bootstrap_problem {
        ctx.event(
            &obj.object_ref(&()),
            EventType::Warning,
            IgnitionError::REASON,
            "Deploy",
            format!("not deploying: {problem}"),
        )
        .await;
    }
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
    use capmaas_api::{GpuRequirement, MaasMachineSpec, ReleaseOptions};

    #[test]
    fn spec_to_requirements() {
        let spec = MaasMachineSpec {
            min_cpu: Some(4),
            min_memory: Some(-1),
            min_disk_size: Some(100),
            tags: Some(vec!["a".into()]),
            gpu: Some(GpuRequirement {
                vendor: Some("nvidia".into()),
                product: None,
                min_count: Some(2),
            }),
            release: Some(ReleaseOptions {
                erase: Some(true),
                quick_erase: None,
                secure_erase: Some(true),
            }),
            ..Default::default()
        };
        let r = requirements(&spec);
        assert_eq!(r.min_cpu, Some(4));
        assert_eq!(r.min_memory_mib, None, "negative values are not sent");
        assert_eq!(r.min_disk_gb, Some(100));
        assert_eq!(r.gpu.unwrap().min_count, Some(2));
        assert_eq!(
            erase_options(&spec),
            EraseOptions {
                erase: true,
                quick_erase: false,
                secure_erase: true
            }
        );
    }

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
