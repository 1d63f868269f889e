//! The MaasMachine reconciler, a declared pass:
//! fetch (I/O only) -> gate (finalizer, steady state: pure) -> facts (pure) -> the pass (decide,
//! one step, typed outcome, until it ends) -> observer hand-back -> events and status (pure,
//! from the outcomes) -> write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capmaas_api::capi::{Cluster, Machine, cluster_name_label};
use capmaas_api::{MaasCluster, MaasMachine, MaasMachineStatus, finalizers};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use maas_client::MaasClient;
use serde_json::json;

use crate::domain::ignition::IgnitionPatchOptions;
use crate::k8s::capi_api::{CapiKind, get_capi};
use crate::k8s::objects::{capi_owner, has_finalizer, merge_patch, set_finalizer};
use crate::k8s::status_patch;
use crate::maas::credentials::{MaasEndpoint, credentials_secret_names, identity_secret};
use crate::maas::inventory::EndpointInventory;
use crate::maas::no_maas::NoMaas;
use crate::maas::observer::{Observation, SAFETY_NET, Transit};
use crate::machine::capacity_note::{
    CapacityView, allocation_zone, capacity_note, read_gpu_candidates,
};
use crate::machine::decide::{MaasView, MachineFacts};
use crate::machine::facts::{CredentialScope, Fetched, Settings, machine_facts};
use crate::machine::outcome::events;
use crate::machine::ready::{add_gpu_inventory, node_target, patch_node};
use crate::machine::status::{machine_status, machine_status_on_error, note_capacity};
use crate::machine::steady::{SteadyFacts, SteadyStep, steady_step};
use crate::machine::steps::{
    CapacityAnswer, PassEnd, PassReport, UserDataOptions, run_machine_pass_with,
};
use crate::machine::store::KubeMachineStore;
use crate::runtime::context::Context;
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::reconciler::{PassResult, reconcile_with};

/// The controller name in metrics and logs.
pub const CONTROLLER: &str = "maasmachine";

/// How soon a ready machine whose Node CAPI has not matched yet looks at the Node again.
pub const NODE_RETRY: Duration = Duration::from_secs(20);

/// Entry point for the controller runtime.
pub async fn reconcile(obj: Arc<MaasMachine>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    reconcile_with(
        CONTROLLER,
        obj,
        ctx,
        |obj, ctx| async move { reconcile_pass(&obj, &ctx).await },
        |obj, ctx, error| {
            let (label, message, text) =
                (error.label(), error.condition_message(), error.to_string());
            async move { report_error(&obj, &ctx, label, message, text).await }
        },
    )
    .await
}

/// Shows a failed pass: the condition gets the stable `message`, the event the whole `text`.
async fn report_error(
    obj: &MaasMachine,
    ctx: &Context,
    label: &'static str,
    message: String,
    text: String,
) {
    let Some(ns) = obj.namespace() else { return };
    let api: Api<MaasMachine> = Api::namespaced(ctx.client.clone(), &ns);
    let status = machine_status_on_error(
        obj.status.as_ref(),
        label,
        &message,
        obj.metadata.generation,
        jiff::Timestamp::now(),
    );
    if obj.status.as_ref() != Some(&status)
        && let Err(e) = write_status(ctx, &api, &obj.name_any(), obj.status.as_ref(), &status).await
    {
        tracing::warn!(error = %e, "cannot write error status");
    }
    let reference = obj.object_ref(&());
    ctx.event(&reference, EventType::Warning, label, "Reconcile", text)
        .await;
}

async fn write_status(
    ctx: &Context,
    api: &Api<MaasMachine>,
    name: &str,
    prev: Option<&MaasMachineStatus>,
    status: &MaasMachineStatus,
) -> Result<(), ReconcileError> {
    let action = "write MaasMachine status";
    status_patch::write_typed_status(&ctx.status_shape, api, name, action, prev, status).await
}

/// Reads what the facts are built from: the owner Machine, its Cluster and MaasCluster.
async fn fetch(obj: &MaasMachine, ctx: &Context, ns: &str) -> Result<Fetched, ReconcileError> {
    let client = &ctx.client;
    let machine = match capi_owner(&obj.metadata, "Machine") {
        Some(owner) => get_capi::<Machine>(client, CapiKind::Machine, ctx.capi, ns, &owner).await?,
        None => None,
    };
    let cluster_name = machine
        .as_ref()
        .and_then(|m| m.cluster_name().map(str::to_string))
        .or_else(|| cluster_name_label(&obj.metadata).map(str::to_string));
    let cluster = match &cluster_name {
        Some(c) => get_capi::<Cluster>(client, CapiKind::Cluster, ctx.capi, ns, c).await?,
        None => None,
    };
    let infrastructure = cluster
        .as_ref()
        .and_then(|c| c.spec.infrastructure_ref.as_ref())
        .and_then(|r| r.name.clone());
    let maas_cluster = match infrastructure {
        Some(n) => Api::<MaasCluster>::namespaced(client.clone(), ns)
            .get_opt(&n)
            .await
            .map_err(ReconcileError::kube(Stage::Fetch, "read MaasCluster"))?,
        None => None,
    };
    Ok(Fetched {
        machine,
        cluster_name,
        cluster,
        maas_cluster,
    })
}

/// The gate's facts: the finalizer and what the last confirmation of a ready machine taught.
fn steady_facts<'a>(
    obj: &'a MaasMachine,
    fetched: &Fetched,
    confirmed: Option<&'a crate::machine::steady::NodeTarget>,
) -> SteadyFacts<'a> {
    SteadyFacts {
        has_finalizer: has_finalizer(&obj.metadata, finalizers::MAAS_MACHINE),
        deleting: obj.metadata.deletion_timestamp.is_some(),
        paused: fetched.paused(obj),
        ready: obj.status.as_ref().is_some_and(|s| s.ready),
        node_matched: fetched
            .machine
            .as_ref()
            .is_some_and(|m| m.node_name().is_some()),
        confirmed,
        provider_id: obj.spec.provider_id.as_deref().filter(|p| !p.is_empty()),
    }
}

/// The pass. Returns `None` to wait for a change (or the resync), `Some(d)` to look after `d`.
async fn reconcile_pass(obj: &MaasMachine, ctx: &Context) -> PassResult {
    let ns = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachine without namespace".into()))?;
    let uid = obj.uid().unwrap_or_default();
    let api: Api<MaasMachine> = Api::namespaced(ctx.client.clone(), &ns);
    let fetched = fetch(obj, ctx, &ns).await?;
    let confirmed = ctx.ready_machines.get(&uid);
    match steady_step(&steady_facts(obj, &fetched, confirmed.as_ref())) {
        SteadyStep::Finished => return Ok(None),
        SteadyStep::AddFinalizer => {
            set_finalizer(&api, &obj.metadata, finalizers::MAAS_MACHINE, true).await?;
            // The update triggers another pass with the fresh object.
            return Ok(None);
        }
        SteadyStep::Idle => return Ok(None),
        SteadyStep::PatchNode(target) => {
            if let Some(cluster) = &fetched.cluster_name {
                patch_node(ctx, obj, &ns, cluster, target).await;
            }
            return Ok(Some(NODE_RETRY));
        }
        SteadyStep::Pass => {}
    }
    let connection = connect(ctx, &ns, &obj.name_any(), &fetched).await?;
    let observed = observation(connection.endpoint.as_ref(), obj);
    let settings = Settings {
        management: ctx.management.clone(),
        default_zone: connection.zone.clone().or_else(|| ctx.default_zone.clone()),
    };
    let now = jiff::Timestamp::now();
    let mut facts = machine_facts(obj, &fetched, &settings, observed.as_ref(), now)?;
    let recalled = recall(ctx, obj, &mut facts);
    let (zone, candidates) = capacity_facts(&mut facts, &connection).await;
    let store = KubeMachineStore {
        api: api.clone(),
        secrets: Api::<Secret>::namespaced(ctx.client.clone(), &ns),
        meta: obj.metadata.clone(),
        gate: ctx.gate.clone(),
    };
    let options = user_data_options(&obj.spec);
    let report = run_pass(&connection, &store, facts, &options).await?;
    let safety_net = hand_back(
        connection.endpoint.as_ref(),
        obj,
        &report,
        observed.as_ref(),
    );
    let capacity = report.capacity_given(candidates.as_deref());
    let capacity_key = recalled.capacity_key.clone();
    remember(ctx, &uid, recalled, &report, capacity);
    publish_events(obj, ctx, &report).await;
    let capacity_view = CapacityView {
        answer: capacity,
        zone: zone.as_deref(),
        remembered: ctx.capacity_notes.get(&capacity_key),
    };
    let note = write_pass_status(obj, ctx, &api, &report, &connection, capacity_view).await?;
    ctx.capacity_notes.set(&capacity_key, note);
    finish(obj, ctx, &api, &fetched, &report, safety_net).await
}

/// The GPU candidates of a pass that may allocate for several GPUs (filled into the facts and
/// returned), and the zone its allocation names.
async fn capacity_facts(
    facts: &mut MachineFacts,
    connection: &Connection,
) -> (Option<String>, Option<Vec<String>>) {
    let inventory = connection.inventory.as_deref();
    read_gpu_candidates(facts, connection.maas.as_ref(), inventory).await;
    (allocation_zone(facts), facts.gpu.candidates.clone())
}

/// What this manager remembers of the object for the next pass: the last capacity refusal
/// (keyed by generation, so a changed spec asks MAAS at once) and the power-ons sent.
struct Recalled {
    capacity_key: String,
    refused_at: Option<Instant>,
    power_ons: u32,
}

/// Fills the facts this manager remembers rather than reads: the last capacity refusal, the
/// latest confirmation of a ready machine, the power-ons sent and the state after the last
/// release. Each is a cache: forgetting it (a restart) costs a MAAS call, never a wrong step. The
/// refusal is taken out for the pass and put back only by a pass
/// that kept to it: a pass cut off by an error may have sent an allocate, and the next must look.
fn recall(ctx: &Context, obj: &MaasMachine, facts: &mut MachineFacts) -> Recalled {
    let capacity_key = format!(
        "{}/{}",
        facts.uid,
        obj.metadata.generation.unwrap_or_default()
    );
    let refused_at = ctx.capacity_refusals.get(&capacity_key);
    ctx.capacity_refusals.set(&capacity_key, None);
    facts.capacity_refused_for = refused_at.map(|at| at.elapsed());
    facts.ready_confirmed = ctx.ready_machines.get(&facts.uid).is_some();
    facts.power_ons = ctx
        .power_ons
        .get(&facts.uid)
        .filter(|(id, _, _)| facts.system_id.as_ref() == Some(id))
        .map(|(_, sent, at)| (sent, at.elapsed()));
    facts.released_in_state = ctx
        .releases
        .get(&facts.uid)
        .filter(|(id, _)| facts.system_id.as_ref() == Some(id))
        .map(|(_, status)| status);
    Recalled {
        capacity_key,
        refused_at,
        power_ons: facts.power_ons.map_or(0, |(sent, _)| sent),
    }
}

/// Stores what the pass taught for the next one: the ready machine's confirmation, the capacity
/// refusal, the release and the power-ons.
fn remember(
    ctx: &Context,
    uid: &str,
    recalled: Recalled,
    report: &PassReport,
    capacity: CapacityAnswer,
) {
    ctx.ready_machines.set(
        uid,
        match &report.end {
            PassEnd::Ready(ready) => Some(node_target(ready)),
            _ => None,
        },
    );
    let key = &recalled.capacity_key;
    match capacity {
        CapacityAnswer::Refused => ctx.capacity_refusals.set(key, Some(Instant::now())),
        CapacityAnswer::Waited => ctx.capacity_refusals.set(key, recalled.refused_at),
        CapacityAnswer::Other => {}
    }
    if let Some(released) = report.released_in_state() {
        ctx.releases.set(uid, Some(released));
    }
    match (&report.end, report.power_on_sent()) {
        (PassEnd::Ready(_), _) => ctx.power_ons.set(uid, None),
        (_, Some(id)) => {
            let sent = recalled.power_ons.saturating_add(1);
            ctx.power_ons.set(uid, Some((id, sent, Instant::now())));
        }
        _ => {}
    }
}

/// The MAAS a pass talks to.
struct Connection {
    /// The endpoint (client and observer), with observer wiring.
    endpoint: Option<MaasEndpoint>,
    /// The client; `None` when the pass must not talk to MAAS.
    maas: Option<MaasClient>,
    /// The endpoint's shared inventory of free machines.
    inventory: Option<Arc<EndpointInventory>>,
    /// Why there is no client: no credentials at all, or none that may be used for this object
    /// (the reason).
    unknown_credentials: Option<String>,
    /// The default zone the cluster's credentials Secret names.
    zone: Option<String>,
}

impl Connection {
    /// The error of a step that needed MAAS when there is no client.
    fn refusal(&self) -> ReconcileError {
        match &self.unknown_credentials {
            Some(why) => ReconcileError::CredentialsUnknown(why.clone()),
            None => ReconcileError::MissingCredentials,
        }
    }
}

/// The MAAS endpoint (client and observer) for the object's credentials; without observer
/// wiring only the client. Without credentials, or when the object's cluster is missing (its
/// credentials are unknown), neither: the pass then runs against the refusing MAAS.
async fn connect(
    ctx: &Context,
    ns: &str,
    name: &str,
    fetched: &Fetched,
) -> Result<Connection, ReconcileError> {
    let maas_cluster = match fetched.credential_scope(ns) {
        CredentialScope::Cluster(c) => Some(c),
        CredentialScope::ProviderWide => None,
        CredentialScope::Unknown(why) => {
            return Ok(Connection {
                endpoint: None,
                maas: None,
                inventory: None,
                unknown_credentials: Some(why),
                zone: None,
            });
        }
    };
    let hosted_fallback = !ctx.connector.has_default();
    // Recorded before the read, so a Secret that does not exist yet wakes this MaasMachine when
    // it is created.
    let secret = maas_cluster.and_then(|c| {
        let (named, hosted) = credentials_secret_names(c);
        named.or_else(|| hosted_fallback.then_some(hosted))
    });
    ctx.identity_readers.set(
        (ns.to_string(), name.to_string()),
        secret.map(|s| (ns.to_string(), s)),
    );
    let identity = identity_secret(&ctx.client, ns, maas_cluster, hosted_fallback).await?;
    let (creds, zone) = match identity {
        Some(i) => (Some(i.creds), i.zone),
        None => (None, None),
    };
    let endpoint = ctx.connector.endpoint(creds.as_ref())?;
    let maas = match &endpoint {
        Some(e) => Some(e.client.clone()),
        None => ctx.connector.client(creds.as_ref())?,
    };
    let inventory = ctx.connector.inventory(creds.as_ref())?.map(|(_, i)| i);
    Ok(Connection {
        endpoint,
        maas,
        inventory,
        unknown_credentials: None,
        zone,
    })
}

/// The pass against MAAS, or, without a client, against the refusing MAAS: the gates and waits
/// still run, and the first step that needs MAAS reports why there is none.
async fn run_pass(
    connection: &Connection,
    store: &KubeMachineStore,
    facts: crate::machine::decide::MachineFacts,
    options: &UserDataOptions,
) -> Result<PassReport, ReconcileError> {
    match &connection.maas {
        Some(m) => run_machine_pass_with(m, store, facts, options).await,
        None => match run_machine_pass_with(&NoMaas, store, facts, options).await {
            Err(ReconcileError::Maas(_)) => Err(connection.refusal()),
            other => other,
        },
    }
}

/// The observer's latest word on the recorded machine, taken out for this pass.
fn observation(endpoint: Option<&MaasEndpoint>, obj: &MaasMachine) -> Option<Observation> {
    let id = obj.spec.system_id.as_deref().filter(|s| !s.is_empty())?;
    endpoint?.observer.take(id)
}

/// Hands a machine still in transit back to the observer, with what MAAS last answered, and
/// returns the safety-net requeue (the observer wakes the object sooner). A machine no longer
/// in transit stays out of the observer.
fn hand_back(
    endpoint: Option<&MaasEndpoint>,
    obj: &MaasMachine,
    report: &PassReport,
    observed: Option<&Observation>,
) -> Option<Duration> {
    let endpoint = endpoint?;
    let PassEnd::Waiting { reason, .. } = &report.end else {
        return None;
    };
    let transit = Transit::of(*reason)?;
    let MaasView::Found(machine) = &report.maas else {
        return None;
    };
    let earlier = observed.filter(|o| o.machine.system_id == machine.system_id);
    endpoint
        .observer
        .watch(ObjectRef::from(obj), machine.clone(), transit, earlier);
    Some(SAFETY_NET)
}

fn user_data_options(spec: &capmaas_api::MaasMachineSpec) -> UserDataOptions {
    UserDataOptions {
        format_override: spec.user_data_format.map(|f| {
            match f {
                capmaas_api::UserDataFormat::CloudConfig => "cloud-config",
                capmaas_api::UserDataFormat::Ignition => "ignition",
            }
            .to_string()
        }),
        ignition: IgnitionPatchOptions::from_spec(spec.ignition.as_ref()),
    }
}

/// Publishes the events derived from the pass's outcomes, and its terminal failure.
async fn publish_events(obj: &MaasMachine, ctx: &Context, report: &PassReport) {
    let reference = obj.object_ref(&());
    for ev in events(&report.steps) {
        let type_ = if ev.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.event(&reference, type_, ev.reason, ev.action, ev.note)
            .await;
    }
    if let PassEnd::Failed { reason, message } = &report.end {
        ctx.event(
            &reference,
            EventType::Warning,
            reason.as_str(),
            "Reconcile",
            message.clone(),
        )
        .await;
    }
}

/// Writes the status the pass leads to, when it differs from the stored one. Returns the words of
/// its capacity wait, if it is one, for the next pass to repeat.
async fn write_pass_status(
    obj: &MaasMachine,
    ctx: &Context,
    api: &Api<MaasMachine>,
    report: &PassReport,
    connection: &Connection,
    capacity: CapacityView<'_>,
) -> Result<Option<String>, ReconcileError> {
    let now = jiff::Timestamp::now();
    let mut status = machine_status(obj.status.as_ref(), report, obj.metadata.generation, now);
    let maas = connection.maas.as_ref();
    if let (PassEnd::Ready(ready), Some(st), Some(client)) = (&report.end, status.as_mut(), maas) {
        add_gpu_inventory(ctx, obj, client, ready, st).await;
    }
    let inventory = connection.inventory.as_deref();
    let note = capacity_note(obj, report, capacity, maas, inventory).await;
    if let (Some(note), Some(st)) = (&note, status.as_mut()) {
        note_capacity(st, note, obj.metadata.generation, now);
    }
    match status {
        Some(status) if obj.status.as_ref() != Some(&status) => {
            write_status(ctx, api, &obj.name_any(), obj.status.as_ref(), &status).await?;
        }
        _ => {}
    }
    Ok(note)
}

/// What a ready machine still needs (providerID, the Ready event, the Node), and when to look
/// again.
async fn finish(
    obj: &MaasMachine,
    ctx: &Context,
    api: &Api<MaasMachine>,
    fetched: &Fetched,
    report: &PassReport,
    safety_net: Option<Duration>,
) -> PassResult {
    let ready = match &report.end {
        PassEnd::Ready(ready) => ready,
        PassEnd::Waiting { after, .. } => return Ok(safety_net.or(*after)),
        PassEnd::Failed { .. } | PassEnd::Finalized => return Ok(None),
    };
    if obj.spec.provider_id.as_deref() != Some(ready.provider_id.as_str()) {
        let patch = json!({"spec": {"providerID": ready.provider_id}});
        merge_patch(api, &obj.name_any(), patch, "record providerID").await?;
    }
    if !obj.status.as_ref().is_some_and(|s| s.ready) {
        let note = format!("{} is deployed", ready.system_id);
        ctx.event(
            &obj.object_ref(&()),
            EventType::Normal,
            "Ready",
            "Deploy",
            note,
        )
        .await;
    }
    let needs_node = fetched
        .machine
        .as_ref()
        .is_some_and(|m| m.node_name().is_none());
    if let (true, Some(cluster), Some(ns)) = (needs_node, &fetched.cluster_name, obj.namespace()) {
        patch_node(ctx, obj, &ns, cluster, &node_target(ready)).await;
        // Come back soon until CAPI has matched the Node; the steady state retries the Node
        // without reading MAAS.
        return Ok(Some(NODE_RETRY));
    }
    Ok(None)
}
