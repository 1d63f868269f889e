//! The MaasMachine decision: given everything known about one MaasMachine, the single next step.
//!
//! The reconciler gathers the facts, asks for the next step, performs it, updates the facts and
//! asks again, until a step ends the pass (a wait, a poll, ready, a failure, finalizer removal).
//! Every MAAS call and every Kubernetes write is one step, so a crash between any two of them
//! leaves a state this table knows how to continue from.

mod allocated;
mod deletion;
mod unallocated;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::addresses::{MachineAddress, machine_addresses};
use crate::domain::allocation::{AllocateRequest, MachineRequirements};
use crate::domain::maas_machine::{ObservedMachine, Power};
use crate::domain::provider_id;
use crate::domain::reasons::{FailReason, WaitReason};
use crate::domain::timing::DeployFailures;
use crate::machine::source::gpu::{GpuAction, GpuFacts, GpuNotes};
use allocated::decide_allocated;
use deletion::{decide_deletion, decide_releasing, hand_over};
use unallocated::decide_unallocated;

/// Zone used in the provider ID when MAAS names none.
pub const FALLBACK_ZONE: &str = "default";

/// What is known of the MAAS side in this pass.
#[derive(Clone, Debug, PartialEq, Default)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per machine pass, built and dropped there, never stored in bulk"
)]
pub enum MaasView {
    /// Not looked at yet in this pass.
    #[default]
    Unread,
    /// Looked and found nothing: a 404 for a recorded system id, or no machine under our agent
    /// name when looking for one to adopt.
    NotFound,
    /// The machine as MAAS last answered.
    Found(ObservedMachine),
}

/// The owner Machine's fields the decision needs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OwnerMachine {
    /// `spec.bootstrap.dataSecretName`, set once the bootstrap provider wrote the data.
    pub bootstrap_data_secret: Option<String>,
    /// `spec.failureDomain`, chosen by CAPI to spread machines over zones.
    pub failure_domain: Option<String>,
}

pub use crate::domain::maas_machine::EraseOptions;

/// Everything the decision reads about one MaasMachine.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineFacts {
    /// The MaasMachine uid (ties MAAS allocations to it).
    pub uid: String,
    /// The MaasMachine namespace.
    pub namespace: String,
    /// The MaasMachine name.
    pub name: String,
    /// The MaasMachine has a deletion timestamp.
    pub deleting: bool,
    /// The object carries clusterctl's delete-for-move annotation: it is being deleted because
    /// it now lives in another management cluster, which keeps the MAAS machine.
    pub moving: bool,
    /// This management cluster's identity, written into owner data so that only this cluster's
    /// orphan sweep may ever release the machine; `None` when it could not be read.
    pub management: Option<String>,
    /// The Cluster is paused, or the MaasMachine carries the paused annotation.
    pub paused: bool,
    /// The owner Machine, once it exists.
    pub owner: Option<OwnerMachine>,
    /// `None` when the owner Cluster was not found, else whether its infrastructure is
    /// provisioned.
    pub cluster_infrastructure_ready: Option<bool>,
    /// `spec.systemID`, once recorded.
    pub system_id: Option<String>,
    /// The allocation-attempt annotation is present.
    pub attempt_marked: bool,
    /// The release-intent annotation is present.
    pub release_intent: bool,
    /// Failed deployments so far (annotation).
    pub failures: DeployFailures,
    /// Allocation constraints from the spec.
    pub requirements: MachineRequirements,
    /// `spec.image`.
    pub image: String,
    /// `spec.deployInMemory`.
    pub deploy_in_memory: bool,
    /// `spec.hweKernel`.
    pub hwe_kernel: Option<String>,
    /// `spec.release`.
    pub erase: EraseOptions,
    /// Provider-wide default zone (`MAAS_ZONE`).
    pub default_zone: Option<String>,
    /// The machine was ready once (`spec.providerID` is set): its Node may carry workloads, so
    /// a failure from now on is CAPI's to remediate (drain, then delete), never ours to release.
    pub was_ready: bool,
    /// The MAAS status the recorded machine showed right after our last release of it (in this
    /// pass or a recent one): while MAAS still shows that status, the release was taken and is
    /// not sent again.
    pub released_in_state: Option<i64>,
    /// How long ago MAAS last answered this object's allocate with "no machine matches" (409,
    /// so nothing was allocated), as this manager remembers it.
    pub capacity_refused_for: Option<Duration>,
    /// Power-ons this manager sent to the recorded machine lately, and how long ago the last.
    pub power_ons: Option<(u32, Duration)>,
    /// This manager saw the recorded machine deployed and ours within the resync period (the
    /// steady state's confirmation): a deletion may release it without reading it first.
    pub ready_confirmed: bool,
    /// How long the machine has been deploying, when known.
    pub deploying_for: Option<Duration>,
    /// The MAAS side.
    pub maas: MaasView,
    /// GPU counts and machines set aside for too few GPUs.
    pub gpu: GpuFacts,
    /// The object was made by spectrocloud's Go provider and this provider has not yet
    /// written a status of its own: its machine carries no owner data and no agent name (the
    /// Go provider sets neither), and is taken over by writing ours.
    pub made_by_go_provider: bool,
    /// What MAAS answered earlier in this pass that the decision must remember.
    pub pass: PassNotes,
    /// The current time.
    pub now: Timestamp,
}

/// What earlier steps of this pass learnt or did that changes the next decision; empty at the
/// start of every pass (nothing here is read from the objects or carried between passes).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PassNotes {
    /// The release intent was written in this very pass, so no release of ours can have been
    /// sent before it: the machine is still the one recorded and can be released without
    /// reading it first.
    pub release_intent_marked: bool,
    /// The GPU search so far.
    pub gpu: GpuNotes,
    /// MAAS answered this pass's allocate with "no machine matches".
    pub allocation_refused: bool,
    /// MAAS refused a deploy this many times in this pass (409).
    pub deploy_refusals: u32,
    /// MAAS's words on the last refused deploy.
    pub deploy_refusal: Option<String>,
    /// Why the bootstrap data cannot be deployed (position and version only, never content).
    pub bootstrap_refused: Option<String>,
    /// Other held machines under our agent name that the adoption lookup found: each is released
    /// before the kept one is recorded, so no second allocation outlives the pass.
    pub duplicates: Vec<String>,
    /// Whether the recorded machine carries our agent name: known when this pass allocated it or
    /// found it under our agent name, or asked MAAS. A held machine without our owner data is
    /// ours only then (the window between our allocate and our owner data).
    pub agent_name: Option<bool>,
    /// MAAS refused this pass's release (403, 409), with its words.
    pub release_refused: Option<String>,
    /// A power-on was sent in this pass: wait for the power to read `on` instead of sending
    /// another.
    pub power_on_sent: bool,
}

/// Everything the status and the CAPI contract need once the machine is deployed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyMachine {
    /// MAAS system id.
    pub system_id: String,
    /// `maas:///<zone>/<system_id>`.
    pub provider_id: String,
    /// The zone the machine is in (the Machine's failure domain).
    pub zone: String,
    /// Short host name (the Node name).
    pub hostname: String,
    /// Fully qualified name.
    pub fqdn: String,
    /// Addresses for `status.addresses`.
    pub addresses: Vec<MachineAddress>,
    /// Interfaces for `status.interfaces`.
    pub interfaces: Vec<capmaas_api::MachineInterface>,
    /// Whether MAAS reports the power on.
    pub powered: bool,
    /// CPU cores.
    pub cpu_count: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Storage in whole GB.
    pub storage_gb: u64,
}

/// The next step for a MaasMachine.
#[derive(Clone, Debug, PartialEq)]
pub enum MachineAction {
    /// Nothing to do until something changes or `after` passes.
    Wait {
        /// Why.
        reason: WaitReason,
        /// When to look again by itself, if at all.
        after: Option<Duration>,
    },
    /// Write the allocation-attempt annotation; the allocate call must never precede it.
    MarkAttempt,
    /// Look for a machine already allocated under this agent name (a previous attempt may have
    /// been cut off after MAAS allocated).
    AdoptLookup {
        /// `capmaas:<uid>`.
        agent_name: String,
    },
    /// Allocate a machine.
    Allocate(AllocateRequest),
    /// Release a second machine found under our agent name (an allocate applied twice).
    ReleaseDuplicate {
        /// The machine not kept.
        system_id: String,
        /// Disk erase options of the spec.
        erase: EraseOptions,
    },
    /// Ask MAAS whether the recorded machine carries our agent name (a held machine without our
    /// owner data: ours right after our allocate, someone else's after a release behind our back).
    ConfirmAgentName {
        /// Machine.
        system_id: String,
        /// `capmaas:<uid>`.
        agent_name: String,
    },
    /// Record the allocated or adopted machine's system id in `spec.systemID`.
    RecordSystemId(String),
    /// Write owner data tying the machine to this object.
    SetOwnerData {
        /// Machine.
        system_id: String,
        /// The keys and values.
        data: BTreeMap<String, String>,
    },
    /// Deploy with the bootstrap data (the reconciler reads and encodes the secret).
    Deploy {
        /// Machine.
        system_id: String,
        /// `distro_series`, `None` for MAAS's default.
        distro_series: Option<String>,
        /// `ephemeral_deploy`.
        ephemeral: bool,
        /// `hwe_kernel`, `None` for the image's default.
        hwe_kernel: Option<String>,
        /// The Secret holding the bootstrap data.
        bootstrap_secret: String,
    },
    /// Power the deployed machine on (it reported exactly `off`).
    PowerOn {
        /// Machine.
        system_id: String,
    },
    /// Read the machine.
    Read {
        /// Machine.
        system_id: String,
    },
    /// Read the machine again after a delay (MAAS has no watch).
    Poll {
        /// Why we wait.
        reason: WaitReason,
        /// How long.
        after: Duration,
    },
    /// The machine is deployed: write provider ID, addresses and ready.
    Ready(ReadyMachine),
    /// Write the release-intent annotation (and, for a failure, the updated failure record)
    /// before the release call, so a restart continues the release and does not re-deploy.
    MarkReleaseIntent {
        /// The failure record to write, when the release follows a failed deployment.
        failures: Option<DeployFailures>,
    },
    /// Release the machine.
    Release {
        /// Machine.
        system_id: String,
        /// Disk erase options.
        erase: EraseOptions,
    },
    /// Drop the released machine from the object: clear systemID, providerID, the attempt and
    /// intent annotations, so the next pass allocates afresh.
    Forget,
    /// A terminal failure: condition, event, failure reason; no retry until something changes.
    Fail {
        /// Stable reason.
        reason: FailReason,
        /// Human message (MAAS state, ids; never user data).
        message: String,
    },
    /// The machine is released (or was never allocated): drop the finalizer.
    RemoveFinalizer,
    /// A step of the GPU search (count, set aside, give back).
    Gpu(GpuAction),
}

impl MachineAction {
    /// The action's name, for logs, events and tests: the one place actions are named.
    pub fn name(&self) -> &'static str {
        match self {
            MachineAction::Wait { .. } => "Wait",
            MachineAction::MarkAttempt => "MarkAttempt",
            MachineAction::AdoptLookup { .. } => "AdoptLookup",
            MachineAction::Allocate(_) => "Allocate",
            MachineAction::ReleaseDuplicate { .. } => "ReleaseDuplicate",
            MachineAction::ConfirmAgentName { .. } => "ConfirmAgentName",
            MachineAction::RecordSystemId(_) => "RecordSystemId",
            MachineAction::SetOwnerData { .. } => "SetOwnerData",
            MachineAction::Deploy { .. } => "Deploy",
            MachineAction::PowerOn { .. } => "PowerOn",
            MachineAction::Read { .. } => "Read",
            MachineAction::Poll { .. } => "Poll",
            MachineAction::Ready(_) => "Ready",
            MachineAction::MarkReleaseIntent { .. } => "MarkReleaseIntent",
            MachineAction::Release { .. } => "Release",
            MachineAction::Forget => "Forget",
            MachineAction::Fail { .. } => "Fail",
            MachineAction::RemoveFinalizer => "RemoveFinalizer",
            MachineAction::Gpu(g) => g.name(),
        }
    }
}

/// The next step for a MaasMachine.
pub fn decide_machine(f: &MachineFacts) -> MachineAction {
    if f.deleting && f.moving {
        // clusterctl move deletes the source objects (paused) once the target has them: the
        // machine now belongs to the target; it is handed over, and only our finalizer goes.
        return hand_over(f);
    }
    if f.paused {
        return wait(WaitReason::Paused, None);
    }
    if let Some(duplicate) = f.pass.duplicates.first() {
        return MachineAction::ReleaseDuplicate {
            system_id: duplicate.clone(),
            erase: f.erase,
        };
    }
    if f.deleting {
        return decide_deletion(f);
    }
    match &f.system_id {
        None => decide_unallocated(f),
        Some(id) if f.release_intent => decide_releasing(f, id),
        Some(id) => decide_allocated(f, id),
    }
}

/// A wait, with its reason and when to look again by itself.
pub(crate) fn wait(reason: WaitReason, after: Option<Duration>) -> MachineAction {
    MachineAction::Wait { reason, after }
}

/// The zone of the provider ID: the one MAAS reports, else the Machine's failure domain, else the
/// spec's, else a fixed fallback. The deploy (Ignition's kubelet drop-in) and the ready step use
/// it alike, so the Node and the MaasMachine agree.
pub fn machine_zone(f: &MachineFacts, m: &ObservedMachine) -> String {
    m.zone
        .clone()
        .filter(|z| !z.is_empty())
        .or_else(|| f.owner.as_ref().and_then(|o| o.failure_domain.clone()))
        .or_else(|| f.requirements.failure_domain.clone())
        .unwrap_or_else(|| FALLBACK_ZONE.to_string())
}

/// What status and the contract need once the machine is deployed.
pub(crate) fn ready_machine(f: &MachineFacts, m: &ObservedMachine) -> ReadyMachine {
    let zone = machine_zone(f, m);
    ReadyMachine {
        system_id: m.system_id.clone(),
        provider_id: provider_id::build(&zone, &m.system_id),
        zone,
        hostname: m.hostname.clone(),
        fqdn: m.fqdn.clone(),
        addresses: machine_addresses(&m.fqdn, &m.ip_addresses),
        interfaces: m.interfaces.clone(),
        powered: m.power == Power::On,
        cpu_count: m.cpu_count,
        memory_mib: m.memory_mib,
        storage_gb: m.storage_gb,
    }
}

#[cfg(test)]
pub(crate) mod tests;
