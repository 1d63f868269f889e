//! The MaasMachine decision: given everything known about one MaasMachine, the single next step.
//!
//! The reconciler gathers the facts, asks for the next step, performs it, updates the facts and
//! asks again, until a step ends the pass (a wait, a poll, ready, a failure, finalizer removal).
//! Every MAAS call and every Kubernetes write is one step, so a crash between any two of them
//! leaves a state this table knows how to continue from.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::addresses::{MachineAddress, machine_addresses};
use crate::domain::allocation::{
    AllocateRequest, MachineRequirements, agent_name, allocate_request,
};
use crate::domain::image::distro_series;
use crate::domain::maas_machine::{MaasPhase, ObservedMachine, Ownership, Power, owner_data_for};
use crate::domain::provider_id;
use crate::domain::reasons::{FailReason, WaitReason};
use crate::domain::timing::{
    DEPLOY_REFUSED_RETRY, DeployFailures, INVALID_BOOTSTRAP_RETRY, MAX_DEPLOY_FAILURES,
    NO_CAPACITY_RETRY, POWER_ON_POLL, RELEASE_POLL, deploy_poll_delay,
};
use crate::machine::source::gpu::{GpuFacts, MAX_GPU_REJECTIONS, count_to_check};

/// Zone used in the provider ID when MAAS names none.
pub const FALLBACK_ZONE: &str = "default";

/// What is known of the MAAS side in this pass.
#[derive(Clone, Debug, PartialEq, Default)]
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

/// The release options asked for on the MaasMachine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EraseOptions {
    /// Erase the disks.
    pub erase: bool,
    /// Quick erase (wipe the start and end of each disk).
    pub quick_erase: bool,
    /// Secure erase where the disk supports it.
    pub secure_erase: bool,
}

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
    /// The release intent was written in this very pass, so no release of ours can have been
    /// sent before it: the machine is still the one recorded and can be released without
    /// reading it first.
    pub intent_marked_this_pass: bool,
    /// Failed deployments so far (annotation).
    pub failures: DeployFailures,
    /// Allocation constraints from the spec.
    pub requirements: MachineRequirements,
    /// `spec.image`.
    pub image: String,
    /// `spec.deployInMemory`.
    pub deploy_in_memory: bool,
    /// `spec.release`.
    pub erase: EraseOptions,
    /// Provider-wide default zone (`MAAS_ZONE`).
    pub default_zone: Option<String>,
    /// How long the machine has been deploying, when known.
    pub deploying_for: Option<Duration>,
    /// The MAAS side.
    pub maas: MaasView,
    /// GPU counts and machines set aside for too few GPUs.
    pub gpu: GpuFacts,
    /// What MAAS answered earlier in this pass that the decision must remember.
    pub pass: PassNotes,
    /// The current time.
    pub now: Timestamp,
}

/// Answers earlier in the pass that change the next decision; empty at the start of a pass.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PassNotes {
    /// MAAS answered this pass's allocate with "no machine matches".
    pub allocation_refused: bool,
    /// MAAS refused a deploy this many times in this pass (409).
    pub deploy_refusals: u32,
    /// MAAS's words on the last refused deploy.
    pub deploy_refusal: Option<String>,
    /// Why the bootstrap data cannot be deployed (position and version only, never content).
    pub bootstrap_refused: Option<String>,
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
    /// Count the allocated machine's matching GPUs (node devices).
    CountGpus {
        /// Machine.
        system_id: String,
    },
    /// Set the allocated machine aside for too few GPUs: add it to the rejected list and clear
    /// `spec.systemID` in one write, keeping it allocated so MAAS cannot offer it again.
    RejectForGpus {
        /// Machine.
        system_id: String,
        /// GPUs it has.
        found: u32,
        /// GPUs asked for.
        wanted: u32,
    },
    /// Read a set-aside machine before releasing it: it must still be ours.
    ReadRejected {
        /// Machine.
        system_id: String,
    },
    /// Release a set-aside machine (still ours and held), then drop it from the list.
    ReleaseRejected {
        /// Machine.
        system_id: String,
        /// Disk erase options.
        erase: EraseOptions,
    },
    /// Drop a set-aside machine that is no longer ours from the list.
    DropRejected {
        /// Machine.
        system_id: String,
    },
}

impl MachineAction {
    /// The action's name, for logs, events and tests: the one place actions are named.
    pub fn name(&self) -> &'static str {
        match self {
            MachineAction::Wait { .. } => "Wait",
            MachineAction::MarkAttempt => "MarkAttempt",
            MachineAction::AdoptLookup { .. } => "AdoptLookup",
            MachineAction::Allocate(_) => "Allocate",
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
            MachineAction::CountGpus { .. } => "CountGpus",
            MachineAction::RejectForGpus { .. } => "RejectForGpus",
            MachineAction::ReadRejected { .. } => "ReadRejected",
            MachineAction::ReleaseRejected { .. } => "ReleaseRejected",
            MachineAction::DropRejected { .. } => "DropRejected",
        }
    }
}

/// The next step for a MaasMachine.
pub fn decide_machine(f: &MachineFacts) -> MachineAction {
    if f.deleting && f.moving {
        // clusterctl move deletes the source objects (paused) once the target has them: the
        // machine now belongs to the target, only our finalizer goes.
        return MachineAction::RemoveFinalizer;
    }
    if f.paused {
        return wait(WaitReason::Paused, None);
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

fn wait(reason: WaitReason, after: Option<Duration>) -> MachineAction {
    MachineAction::Wait { reason, after }
}

fn decide_deletion(f: &MachineFacts) -> MachineAction {
    if !f.gpu.rejected.is_empty() {
        return release_rejected(f);
    }
    match (&f.system_id, &f.maas) {
        (None, _) if !f.attempt_marked => MachineAction::RemoveFinalizer,
        (None, MaasView::Unread) => MachineAction::AdoptLookup {
            agent_name: agent_name(&f.uid),
        },
        (None, MaasView::NotFound) => MachineAction::RemoveFinalizer,
        (None, MaasView::Found(m)) => MachineAction::RecordSystemId(m.system_id.clone()),
        (Some(_), _) if !f.release_intent => MachineAction::MarkReleaseIntent { failures: None },
        (Some(id), MaasView::Unread) if f.intent_marked_this_pass => MachineAction::Release {
            system_id: id.clone(),
            erase: f.erase,
        },
        (Some(id), MaasView::Unread) => MachineAction::Read {
            system_id: id.clone(),
        },
        (Some(_), MaasView::NotFound) => MachineAction::RemoveFinalizer,
        (Some(id), MaasView::Found(m)) => {
            match (m.phase(), m.ownership(&f.uid, &f.namespace, &f.name)) {
                (_, Ownership::Other) => MachineAction::RemoveFinalizer,
                (MaasPhase::Releasing, _) => MachineAction::Poll {
                    reason: WaitReason::Releasing,
                    after: RELEASE_POLL,
                },
                (phase, _) if phase.is_held() || phase == MaasPhase::FailedReleasing => {
                    MachineAction::Release {
                        system_id: id.clone(),
                        erase: f.erase,
                    }
                }
                _ => MachineAction::RemoveFinalizer,
            }
        }
    }
}

fn decide_unallocated(f: &MachineFacts) -> MachineAction {
    let Some(owner) = &f.owner else {
        return wait(WaitReason::WaitingForOwner, None);
    };
    match f.cluster_infrastructure_ready {
        None => return wait(WaitReason::WaitingForCluster, None),
        Some(false) => return wait(WaitReason::WaitingForClusterInfrastructure, None),
        Some(true) => {}
    }
    if owner.bootstrap_data_secret.is_none() {
        return wait(WaitReason::WaitingForBootstrapData, None);
    }
    if let MaasView::Found(m) = &f.maas {
        return MachineAction::RecordSystemId(m.system_id.clone());
    }
    if f.gpu.exhausted || f.gpu.rejected.len() >= MAX_GPU_REJECTIONS {
        if !f.gpu.rejected.is_empty() {
            return release_rejected(f);
        }
        let wanted = count_to_check(&f.requirements).unwrap_or(1);
        return MachineAction::Fail {
            reason: FailReason::InsufficientGpus,
            message: format!("no MAAS machine found with {wanted} matching GPUs"),
        };
    }
    if !f.failures.budget_left() {
        return MachineAction::Fail {
            reason: FailReason::DeployFailuresExhausted,
            message: format!("{} failed deployments, giving up", f.failures.count),
        };
    }
    if let Some(after) = f.failures.wait_before_retry(f.now) {
        return wait(WaitReason::WaitingToRetry, Some(after));
    }
    if f.pass.allocation_refused {
        return wait(WaitReason::NoMachineAvailable, Some(NO_CAPACITY_RETRY));
    }
    match (f.attempt_marked, &f.maas) {
        (false, _) => MachineAction::MarkAttempt,
        (true, MaasView::Unread) => MachineAction::AdoptLookup {
            agent_name: agent_name(&f.uid),
        },
        (true, _) => MachineAction::Allocate(allocate_request(
            &f.requirements,
            owner.failure_domain.as_deref(),
            f.default_zone.as_deref(),
            &f.uid,
            &f.namespace,
            &f.name,
        )),
    }
}

/// A release in progress outside deletion (after a failed deployment): finish it, then forget.
fn decide_releasing(f: &MachineFacts, id: &str) -> MachineAction {
    match &f.maas {
        MaasView::Unread => MachineAction::Read {
            system_id: id.to_string(),
        },
        MaasView::NotFound => MachineAction::Forget,
        MaasView::Found(m) => {
            let ours = m.ownership(&f.uid, &f.namespace, &f.name) != Ownership::Other;
            if ours && (m.phase().is_held() || m.phase() == MaasPhase::FailedReleasing) {
                MachineAction::Release {
                    system_id: id.to_string(),
                    erase: f.erase,
                }
            } else {
                MachineAction::Forget
            }
        }
    }
}

fn decide_allocated(f: &MachineFacts, id: &str) -> MachineAction {
    let m = match &f.maas {
        MaasView::Unread => {
            return MachineAction::Read {
                system_id: id.to_string(),
            };
        }
        MaasView::NotFound => {
            return MachineAction::Fail {
                reason: FailReason::MachineNotFound,
                message: format!("MAAS machine {id} no longer exists"),
            };
        }
        MaasView::Found(m) => m,
    };
    let ownership = m.ownership(&f.uid, &f.namespace, &f.name);
    if ownership == Ownership::Other {
        return MachineAction::Fail {
            reason: FailReason::MachineTakenOver,
            message: format!("MAAS machine {id} now belongs to another object"),
        };
    }
    let phase = m.phase();
    if phase.is_held() && needs_owner_data(f, m, ownership) {
        return MachineAction::SetOwnerData {
            system_id: id.to_string(),
            data: owner_data_for(&f.uid, &f.namespace, &f.name, f.management.as_deref()),
        };
    }
    if phase == MaasPhase::Allocated {
        if let Some(wanted) = count_to_check(&f.requirements) {
            match f.gpu.count {
                None => {
                    return MachineAction::CountGpus {
                        system_id: id.to_string(),
                    };
                }
                Some(found) if found < wanted => {
                    return MachineAction::RejectForGpus {
                        system_id: id.to_string(),
                        found,
                        wanted,
                    };
                }
                Some(_) => {}
            }
        }
        // A machine with enough GPUs is ours: the ones set aside go back before the deploy.
        if !f.gpu.rejected.is_empty() {
            return release_rejected(f);
        }
    }
    match phase {
        MaasPhase::Allocated if f.pass.bootstrap_refused.is_some() => wait(
            WaitReason::InvalidBootstrapData,
            Some(INVALID_BOOTSTRAP_RETRY),
        ),
        // Refused again after a fresh look: MAAS will not deploy it now, whatever we send.
        MaasPhase::Allocated if f.pass.deploy_refusals >= 2 => {
            wait(WaitReason::DeployRefused, Some(DEPLOY_REFUSED_RETRY))
        }
        MaasPhase::Allocated => match f
            .owner
            .as_ref()
            .and_then(|o| o.bootstrap_data_secret.clone())
        {
            Some(secret) => MachineAction::Deploy {
                system_id: id.to_string(),
                distro_series: distro_series(&f.image),
                ephemeral: f.deploy_in_memory,
                bootstrap_secret: secret,
            },
            None => wait(WaitReason::WaitingForBootstrapData, None),
        },
        MaasPhase::Deploying => MachineAction::Poll {
            reason: WaitReason::Deploying,
            after: deploy_poll_delay(f.deploying_for),
        },
        MaasPhase::Deployed => match m.power {
            Power::Off if f.pass.power_on_sent => MachineAction::Poll {
                reason: WaitReason::PoweringOn,
                after: POWER_ON_POLL,
            },
            Power::Off => MachineAction::PowerOn {
                system_id: id.to_string(),
            },
            Power::On | Power::Unknown => MachineAction::Ready(ready_machine(f, m)),
        },
        MaasPhase::FailedDeployment | MaasPhase::Broken => {
            let failures = f.failures.record(f.now);
            if failures.count >= MAX_DEPLOY_FAILURES {
                MachineAction::Fail {
                    reason: FailReason::DeployFailuresExhausted,
                    message: format!(
                        "MAAS machine {id} is {} after {} attempts; kept for inspection",
                        m.status_name, failures.count
                    ),
                }
            } else {
                MachineAction::MarkReleaseIntent {
                    failures: Some(failures),
                }
            }
        }
        MaasPhase::Free | MaasPhase::Releasing | MaasPhase::FailedReleasing => {
            MachineAction::Fail {
                reason: FailReason::MachineReleasedOutside,
                message: format!(
                    "MAAS machine {id} was released outside the provider ({})",
                    m.status_name
                ),
            }
        }
        MaasPhase::OperatorHeld => MachineAction::Poll {
            reason: WaitReason::HeldByOperator,
            after: Duration::from_secs(60),
        },
    }
}

/// Whether the held machine's owner data must be (re)written: nothing written yet (right after
/// allocate), the object was moved here from another management cluster (adopt it: new uid and
/// management identity, same machine), or it is ours but names no or another management
/// identity (allocated before the identity was recorded).
fn needs_owner_data(f: &MachineFacts, m: &ObservedMachine, ownership: Ownership) -> bool {
    match ownership {
        Ownership::Unmarked | Ownership::Moved => true,
        Ownership::Ours => f
            .management
            .as_deref()
            .is_some_and(|ours| m.management() != Some(ours)),
        Ownership::Other => false,
    }
}

/// The next step in releasing the machines set aside for too few GPUs, oldest first: read it,
/// then release it when it is still ours and held, else just drop it from the list.
fn release_rejected(f: &MachineFacts) -> MachineAction {
    let Some(first) = f.gpu.rejected.first() else {
        return wait(WaitReason::NoMachineAvailable, None);
    };
    match &f.gpu.first_rejected_held {
        Some((id, true)) if id == first => MachineAction::ReleaseRejected {
            system_id: first.clone(),
            erase: f.erase,
        },
        Some((id, false)) if id == first => MachineAction::DropRejected {
            system_id: first.clone(),
        },
        _ => MachineAction::ReadRejected {
            system_id: first.clone(),
        },
    }
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

fn ready_machine(f: &MachineFacts, m: &ObservedMachine) -> ReadyMachine {
    let zone = machine_zone(f, m);
    ReadyMachine {
        system_id: m.system_id.clone(),
        provider_id: provider_id::build(&zone, &m.system_id),
        zone,
        hostname: m.hostname.clone(),
        fqdn: m.fqdn.clone(),
        addresses: machine_addresses(&m.fqdn, &m.ip_addresses),
        powered: m.power == Power::On,
        cpu_count: m.cpu_count,
        memory_mib: m.memory_mib,
        storage_gb: m.storage_gb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timing::{POLL_MIN, failure_retry_delay};

    const UID: &str = "uid-1";

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn base() -> MachineFacts {
        MachineFacts {
            uid: UID.into(),
            namespace: "ns".into(),
            name: "mm-0".into(),
            deleting: false,
            moving: false,
            management: None,
            paused: false,
            owner: Some(OwnerMachine {
                bootstrap_data_secret: Some("boot".into()),
                failure_domain: Some("az1".into()),
            }),
            cluster_infrastructure_ready: Some(true),
            system_id: None,
            attempt_marked: false,
            release_intent: false,
            intent_marked_this_pass: false,
            failures: DeployFailures::default(),
            requirements: MachineRequirements {
                min_cpu: Some(2),
                tags: vec!["t1".into(), "t2".into()],
                ..Default::default()
            },
            image: "ubuntu/jammy".into(),
            deploy_in_memory: false,
            erase: EraseOptions {
                erase: true,
                quick_erase: true,
                secure_erase: false,
            },
            default_zone: None,
            deploying_for: None,
            maas: MaasView::Unread,
            gpu: GpuFacts::default(),
            pass: PassNotes::default(),
            now: now(),
        }
    }

    fn machine(status: i64, power: Power, owner_uid: Option<&str>) -> ObservedMachine {
        ObservedMachine {
            system_id: "abc123".into(),
            status_code: status,
            status_name: format!("status {status}"),
            power,
            zone: Some("az1".into()),
            hostname: "node-1".into(),
            fqdn: "node-1.maas".into(),
            ip_addresses: vec!["10.0.0.5".into()],
            // Another uid stands for another object (another name); a moved object is built
            // with `owned_by`.
            owner_data: owner_uid
                .map(|u| owner_data_for(u, "ns", if u == UID { "mm-0" } else { "mm-x" }, None))
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn allocated(f: MachineFacts, status: i64, power: Power, owner: Option<&str>) -> MachineFacts {
        MachineFacts {
            system_id: Some("abc123".into()),
            maas: MaasView::Found(machine(status, power, owner)),
            ..f
        }
    }

    /// A compact label per action, so table rows stay one line.
    fn label(a: &MachineAction) -> String {
        match a {
            MachineAction::Wait { reason, after } => format!(
                "Wait({}, {:?})",
                reason.as_str(),
                after.map(|d| d.as_secs())
            ),
            MachineAction::MarkAttempt => "MarkAttempt".into(),
            MachineAction::AdoptLookup { agent_name } => format!("AdoptLookup({agent_name})"),
            MachineAction::Allocate(r) => format!("Allocate(zone={:?})", r.zone),
            MachineAction::RecordSystemId(id) => format!("RecordSystemId({id})"),
            MachineAction::SetOwnerData { system_id, .. } => format!("SetOwnerData({system_id})"),
            MachineAction::Deploy {
                system_id,
                distro_series,
                ephemeral,
                bootstrap_secret,
            } => {
                format!("Deploy({system_id}, {distro_series:?}, {ephemeral}, {bootstrap_secret})")
            }
            MachineAction::PowerOn { system_id } => format!("PowerOn({system_id})"),
            MachineAction::Read { system_id } => format!("Read({system_id})"),
            MachineAction::Poll { reason, after } => {
                format!("Poll({}, {})", reason.as_str(), after.as_secs())
            }
            MachineAction::Ready(r) => format!("Ready({})", r.provider_id),
            MachineAction::MarkReleaseIntent { failures } => {
                format!("MarkReleaseIntent({:?})", failures.map(|f| f.count))
            }
            MachineAction::Release { system_id, .. } => format!("Release({system_id})"),
            MachineAction::Forget => "Forget".into(),
            MachineAction::Fail { reason, .. } => format!("Fail({})", reason.as_str()),
            MachineAction::RemoveFinalizer => "RemoveFinalizer".into(),
            MachineAction::CountGpus { system_id } => format!("CountGpus({system_id})"),
            MachineAction::RejectForGpus {
                system_id,
                found,
                wanted,
            } => format!("RejectForGpus({system_id}, {found}<{wanted})"),
            MachineAction::ReadRejected { system_id } => format!("ReadRejected({system_id})"),
            MachineAction::ReleaseRejected { system_id, .. } => {
                format!("ReleaseRejected({system_id})")
            }
            MachineAction::DropRejected { system_id } => format!("DropRejected({system_id})"),
        }
    }

    fn check(rows: Vec<(&str, MachineFacts, &str)>) {
        for (name, facts, want) in rows {
            assert_eq!(label(&decide_machine(&facts)), want, "case: {name}");
        }
    }

    #[test]
    fn gates_before_allocation() {
        check(vec![
            (
                "paused",
                MachineFacts {
                    paused: true,
                    ..base()
                },
                "Wait(Paused, None)",
            ),
            (
                "paused wins over deletion",
                MachineFacts {
                    paused: true,
                    deleting: true,
                    ..base()
                },
                "Wait(Paused, None)",
            ),
            (
                "no owner Machine",
                MachineFacts {
                    owner: None,
                    ..base()
                },
                "Wait(WaitingForOwner, None)",
            ),
            (
                "no Cluster",
                MachineFacts {
                    cluster_infrastructure_ready: None,
                    ..base()
                },
                "Wait(WaitingForCluster, None)",
            ),
            (
                "infrastructure not provisioned",
                MachineFacts {
                    cluster_infrastructure_ready: Some(false),
                    ..base()
                },
                "Wait(WaitingForClusterInfrastructure, None)",
            ),
            (
                "no bootstrap data",
                MachineFacts {
                    owner: Some(OwnerMachine {
                        bootstrap_data_secret: None,
                        failure_domain: None,
                    }),
                    ..base()
                },
                "Wait(WaitingForBootstrapData, None)",
            ),
        ]);
    }

    #[test]
    fn allocation_is_marked_then_adopted_or_made() {
        check(vec![
            ("first attempt marks", base(), "MarkAttempt"),
            (
                "marked, not looked: adopt lookup",
                MachineFacts {
                    attempt_marked: true,
                    ..base()
                },
                "AdoptLookup(capmaas:uid-1)",
            ),
            (
                "marked, nothing to adopt: allocate in the Machine's zone",
                MachineFacts {
                    attempt_marked: true,
                    maas: MaasView::NotFound,
                    ..base()
                },
                "Allocate(zone=Some(\"az1\"))",
            ),
            (
                "lookup found one: record it",
                MachineFacts {
                    attempt_marked: true,
                    maas: MaasView::Found(machine(10, Power::Off, None)),
                    ..base()
                },
                "RecordSystemId(abc123)",
            ),
        ]);
    }

    #[test]
    fn allocate_carries_every_constraint() {
        let f = MachineFacts {
            attempt_marked: true,
            maas: MaasView::NotFound,
            ..base()
        };
        let MachineAction::Allocate(r) = decide_machine(&f) else {
            panic!("expected Allocate")
        };
        assert_eq!(r.tags, ["t1", "t2"]);
        assert_eq!(r.cpu_count, Some(2));
        assert_eq!(r.agent_name, "capmaas:uid-1");
    }

    #[test]
    fn retries_after_failures_wait_and_are_bounded() {
        let one = DeployFailures {
            count: 1,
            last: Some(now()),
        };
        let spent = DeployFailures {
            count: MAX_DEPLOY_FAILURES,
            last: Some(now()),
        };
        let long_ago = DeployFailures {
            count: 1,
            last: Some("2026-03-01T11:00:00Z".parse().unwrap()),
        };
        check(vec![
            (
                "inside the delay",
                MachineFacts {
                    failures: one,
                    ..base()
                },
                "Wait(WaitingToRetry, Some(30))",
            ),
            (
                "after the delay",
                MachineFacts {
                    failures: long_ago,
                    ..base()
                },
                "MarkAttempt",
            ),
            (
                "budget spent",
                MachineFacts {
                    failures: spent,
                    ..base()
                },
                "Fail(DeployFailuresExhausted)",
            ),
        ]);
        assert_eq!(failure_retry_delay(1).as_secs(), 30);
    }

    #[test]
    fn each_maas_status_of_our_machine() {
        let b = || base();
        check(vec![
            (
                "recorded, unread: read",
                MachineFacts {
                    system_id: Some("abc123".into()),
                    ..b()
                },
                "Read(abc123)",
            ),
            (
                "404",
                MachineFacts {
                    system_id: Some("abc123".into()),
                    maas: MaasView::NotFound,
                    ..b()
                },
                "Fail(MachineNotFound)",
            ),
            (
                "allocated, no owner data",
                allocated(b(), 10, Power::Off, None),
                "SetOwnerData(abc123)",
            ),
            (
                "allocated, ours: deploy",
                allocated(b(), 10, Power::Off, Some(UID)),
                "Deploy(abc123, Some(\"jammy\"), false, boot)",
            ),
            (
                "allocated, bootstrap gone",
                MachineFacts {
                    owner: None,
                    ..allocated(b(), 10, Power::Off, Some(UID))
                },
                "Wait(WaitingForBootstrapData, None)",
            ),
            (
                "deploying",
                allocated(b(), 9, Power::On, Some(UID)),
                "Poll(Deploying, 10)",
            ),
            (
                "deploying for long",
                MachineFacts {
                    deploying_for: Some(Duration::from_secs(300)),
                    ..allocated(b(), 9, Power::On, Some(UID))
                },
                "Poll(Deploying, 60)",
            ),
            (
                "deploying, no owner data",
                allocated(b(), 9, Power::On, None),
                "SetOwnerData(abc123)",
            ),
            (
                "deployed on",
                allocated(b(), 6, Power::On, Some(UID)),
                "Ready(maas:///az1/abc123)",
            ),
            (
                "deployed off: power on",
                allocated(b(), 6, Power::Off, Some(UID)),
                "PowerOn(abc123)",
            ),
            (
                "deployed unknown power: no power on",
                allocated(b(), 6, Power::Unknown, Some(UID)),
                "Ready(maas:///az1/abc123)",
            ),
            (
                "failed deployment: release intent",
                allocated(b(), 11, Power::Off, Some(UID)),
                "MarkReleaseIntent(Some(1))",
            ),
            (
                "broken: release intent",
                allocated(b(), 8, Power::Off, Some(UID)),
                "MarkReleaseIntent(Some(1))",
            ),
            (
                "failed deployment, last attempt",
                MachineFacts {
                    failures: DeployFailures {
                        count: MAX_DEPLOY_FAILURES - 1,
                        last: None,
                    },
                    ..allocated(b(), 11, Power::Off, Some(UID))
                },
                "Fail(DeployFailuresExhausted)",
            ),
            (
                "ready in MAAS: released outside",
                allocated(b(), 4, Power::Off, None),
                "Fail(MachineReleasedOutside)",
            ),
            (
                "releasing outside",
                allocated(b(), 12, Power::Off, None),
                "Fail(MachineReleasedOutside)",
            ),
            (
                "someone else's",
                allocated(b(), 6, Power::On, Some("other")),
                "Fail(MachineTakenOver)",
            ),
            (
                "rescue mode",
                allocated(b(), 16, Power::On, Some(UID)),
                "Poll(HeldByOperator, 60)",
            ),
            (
                "testing",
                allocated(b(), 21, Power::On, Some(UID)),
                "Poll(HeldByOperator, 60)",
            ),
        ]);
    }

    #[test]
    fn release_after_failure_then_forget() {
        let intent = |f: MachineFacts| MachineFacts {
            release_intent: true,
            ..f
        };
        check(vec![
            (
                "intent, unread: read first",
                intent(MachineFacts {
                    system_id: Some("abc123".into()),
                    ..base()
                }),
                "Read(abc123)",
            ),
            (
                "intent, still held: release",
                intent(allocated(base(), 11, Power::Off, Some(UID))),
                "Release(abc123)",
            ),
            (
                "intent, broken unmarked: release",
                intent(allocated(base(), 8, Power::Off, None)),
                "Release(abc123)",
            ),
            (
                "intent, releasing: forget",
                intent(allocated(base(), 12, Power::Off, None)),
                "Forget",
            ),
            (
                "intent, free: forget",
                intent(allocated(base(), 4, Power::Off, None)),
                "Forget",
            ),
            (
                "intent, taken by another: forget",
                intent(allocated(base(), 6, Power::On, Some("x"))),
                "Forget",
            ),
            (
                "intent, gone: forget",
                intent(MachineFacts {
                    system_id: Some("abc123".into()),
                    maas: MaasView::NotFound,
                    ..base()
                }),
                "Forget",
            ),
        ]);
    }

    #[test]
    fn deletion() {
        let del = |f: MachineFacts| MachineFacts {
            deleting: true,
            ..f
        };
        let del_intent = |f: MachineFacts| MachineFacts {
            deleting: true,
            release_intent: true,
            ..f
        };
        check(vec![
            ("never allocated", del(base()), "RemoveFinalizer"),
            (
                "never allocated, even without owner",
                del(MachineFacts {
                    owner: None,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
            (
                "attempt cut off: look",
                del(MachineFacts {
                    attempt_marked: true,
                    ..base()
                }),
                "AdoptLookup(capmaas:uid-1)",
            ),
            (
                "attempt cut off, nothing allocated",
                del(MachineFacts {
                    attempt_marked: true,
                    maas: MaasView::NotFound,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
            (
                "attempt cut off, found: record then release",
                del(MachineFacts {
                    attempt_marked: true,
                    maas: MaasView::Found(machine(10, Power::Off, None)),
                    ..base()
                }),
                "RecordSystemId(abc123)",
            ),
            (
                "allocated: mark intent first",
                del(allocated(base(), 6, Power::On, Some(UID))),
                "MarkReleaseIntent(None)",
            ),
            (
                "intent, unread: read",
                del_intent(MachineFacts {
                    system_id: Some("abc123".into()),
                    ..base()
                }),
                "Read(abc123)",
            ),
            (
                "intent written this pass: release without a read",
                del_intent(MachineFacts {
                    system_id: Some("abc123".into()),
                    intent_marked_this_pass: true,
                    ..base()
                }),
                "Release(abc123)",
            ),
            (
                "intent, deployed: release",
                del_intent(allocated(base(), 6, Power::On, Some(UID))),
                "Release(abc123)",
            ),
            (
                "intent, deploying: release",
                del_intent(allocated(base(), 9, Power::On, Some(UID))),
                "Release(abc123)",
            ),
            (
                "intent, failed releasing: release again",
                del_intent(allocated(base(), 13, Power::On, Some(UID))),
                "Release(abc123)",
            ),
            (
                "intent, releasing: poll",
                del_intent(allocated(base(), 12, Power::Off, None)),
                "Poll(Releasing, 5)",
            ),
            (
                "intent, disk erasing: poll",
                del_intent(allocated(base(), 14, Power::On, None)),
                "Poll(Releasing, 5)",
            ),
            (
                "intent, ready: done",
                del_intent(allocated(base(), 4, Power::Off, None)),
                "RemoveFinalizer",
            ),
            (
                "intent, another owner: done",
                del_intent(allocated(base(), 6, Power::On, Some("x"))),
                "RemoveFinalizer",
            ),
            (
                "intent, gone in MAAS: done",
                del_intent(MachineFacts {
                    system_id: Some("abc123".into()),
                    maas: MaasView::NotFound,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
        ]);
    }

    #[test]
    fn ready_reports_provider_id_and_addresses() {
        let mut f = allocated(base(), 6, Power::On, Some(UID));
        if let MaasView::Found(m) = &mut f.maas {
            m.zone = None;
        }
        let MachineAction::Ready(r) = decide_machine(&f) else {
            panic!("expected Ready")
        };
        assert_eq!(
            r.provider_id, "maas:///az1/abc123",
            "falls back to the Machine's zone"
        );
        assert_eq!(r.addresses.len(), 4);
        assert!(r.powered);
        f.owner = None;
        let MachineAction::Ready(r) = decide_machine(&f) else {
            panic!("expected Ready")
        };
        assert_eq!(r.zone, FALLBACK_ZONE);
        assert_eq!(POLL_MIN.as_secs(), 10);
    }

    fn gpu_request(min_count: u32) -> MachineRequirements {
        MachineRequirements {
            gpu: Some(crate::domain::allocation::GpuRequest {
                vendor: Some("nvidia".into()),
                product: None,
                min_count: Some(min_count),
            }),
            ..Default::default()
        }
    }

    fn with_gpu(f: MachineFacts, gpu: GpuFacts) -> MachineFacts {
        MachineFacts { gpu, ..f }
    }

    #[test]
    fn several_gpus_are_counted_before_deploy_and_short_machines_set_aside() {
        let f = MachineFacts {
            requirements: gpu_request(4),
            ..allocated(base(), 10, Power::Off, Some(UID))
        };
        assert_eq!(label(&decide_machine(&f)), "CountGpus(abc123)");
        let short = with_gpu(
            f.clone(),
            GpuFacts {
                count: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(label(&decide_machine(&short)), "RejectForGpus(abc123, 2<4)");
        let enough = with_gpu(
            f.clone(),
            GpuFacts {
                count: Some(4),
                ..Default::default()
            },
        );
        assert!(label(&decide_machine(&enough)).starts_with("Deploy(abc123"));
        // One GPU: the allocate constraint already guarantees it, no count.
        let one = MachineFacts {
            requirements: gpu_request(1),
            ..f
        };
        assert!(label(&decide_machine(&one)).starts_with("Deploy(abc123"));
    }

    #[test]
    fn owner_data_comes_before_the_gpu_count() {
        let f = MachineFacts {
            requirements: gpu_request(2),
            ..allocated(base(), 10, Power::Off, None)
        };
        assert_eq!(label(&decide_machine(&f)), "SetOwnerData(abc123)");
    }

    #[test]
    fn set_aside_machines_are_released_once_a_good_one_is_found() {
        let f = MachineFacts {
            requirements: gpu_request(2),
            ..allocated(base(), 10, Power::Off, Some(UID))
        };
        let gpu = |held: Option<(&str, bool)>| GpuFacts {
            rejected: vec!["old1".into(), "old2".into()],
            count: Some(2),
            first_rejected_held: held.map(|(id, h)| (id.to_string(), h)),
            ..Default::default()
        };
        assert_eq!(
            label(&decide_machine(&with_gpu(f.clone(), gpu(None)))),
            "ReadRejected(old1)"
        );
        assert_eq!(
            label(&decide_machine(&with_gpu(
                f.clone(),
                gpu(Some(("old1", true)))
            ))),
            "ReleaseRejected(old1)"
        );
        assert_eq!(
            label(&decide_machine(&with_gpu(
                f.clone(),
                gpu(Some(("old1", false)))
            ))),
            "DropRejected(old1)"
        );
        assert_eq!(
            label(&decide_machine(&with_gpu(f, gpu(Some(("other", true)))))),
            "ReadRejected(old1)",
            "a view of another machine is not a view of the first"
        );
    }

    #[test]
    fn exhausted_gpu_search_gives_machines_back_then_fails() {
        let f = MachineFacts {
            requirements: gpu_request(8),
            attempt_marked: true,
            maas: MaasView::NotFound,
            ..base()
        };
        let exhausted = |rejected: Vec<String>| GpuFacts {
            rejected,
            exhausted: true,
            ..Default::default()
        };
        assert_eq!(
            label(&decide_machine(&with_gpu(
                f.clone(),
                exhausted(vec!["a".into()])
            ))),
            "ReadRejected(a)"
        );
        assert_eq!(
            label(&decide_machine(&with_gpu(f.clone(), exhausted(vec![])))),
            "Fail(InsufficientGPUs)"
        );
        // The budget spent (from the annotation) counts as exhausted.
        let full = GpuFacts {
            rejected: (0..MAX_GPU_REJECTIONS).map(|i| format!("m{i}")).collect(),
            ..Default::default()
        };
        assert_eq!(
            label(&decide_machine(&with_gpu(f.clone(), full))),
            "ReadRejected(m0)"
        );
        // Not exhausted: allocate again.
        let some = GpuFacts {
            rejected: vec!["a".into()],
            ..Default::default()
        };
        assert!(label(&decide_machine(&with_gpu(f, some))).starts_with("Allocate("));
    }

    #[test]
    fn deletion_gives_set_aside_machines_back_first() {
        let f = MachineFacts {
            deleting: true,
            gpu: GpuFacts {
                rejected: vec!["a".into()],
                ..Default::default()
            },
            ..allocated(base(), 6, Power::On, Some(UID))
        };
        assert_eq!(label(&decide_machine(&f)), "ReadRejected(a)");
    }

    /// A machine whose owner data was written by `owner` (uid, namespace, name, management).
    fn owned_by(
        f: MachineFacts,
        status: i64,
        owner: (&str, &str, &str, Option<&str>),
    ) -> MachineFacts {
        let mut m = machine(status, Power::On, None);
        m.owner_data = owner_data_for(owner.0, owner.1, owner.2, owner.3);
        MachineFacts {
            system_id: Some("abc123".into()),
            maas: MaasView::Found(m),
            ..f
        }
    }

    fn mgmt(f: MachineFacts) -> MachineFacts {
        MachineFacts {
            management: Some("mgmt-target".into()),
            ..f
        }
    }

    #[test]
    fn owner_data_after_allocate_names_the_management_cluster() {
        let f = mgmt(allocated(base(), 10, Power::Off, None));
        match decide_machine(&f) {
            MachineAction::SetOwnerData { system_id, data } => {
                assert_eq!(system_id, "abc123");
                assert_eq!(data, owner_data_for(UID, "ns", "mm-0", Some("mgmt-target")));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_moved_machine_is_adopted_not_taken_over() {
        // Same namespace/name, the source's uid and management identity: rewrite, then go on.
        let f = mgmt(owned_by(
            base(),
            6,
            ("uid-source", "ns", "mm-0", Some("mgmt-source")),
        ));
        match decide_machine(&f) {
            MachineAction::SetOwnerData { system_id, data } => {
                assert_eq!(system_id, "abc123");
                assert_eq!(data, owner_data_for(UID, "ns", "mm-0", Some("mgmt-target")));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Once rewritten, the deployed machine is simply ready: no deploy, no release.
        let adopted = mgmt(owned_by(
            base(),
            6,
            (UID, "ns", "mm-0", Some("mgmt-target")),
        ));
        assert_eq!(
            label(&decide_machine(&adopted)),
            "Ready(maas:///az1/abc123)"
        );
    }

    #[test]
    fn a_machine_naming_another_object_stays_taken_over() {
        for owner in [
            ("uid-other", "ns", "mm-9", Some("mgmt-target")),
            ("uid-other", "other-ns", "mm-0", Some("mgmt-source")),
        ] {
            let f = mgmt(owned_by(base(), 6, owner));
            assert_eq!(
                label(&decide_machine(&f)),
                "Fail(MachineTakenOver)",
                "{owner:?}"
            );
        }
    }

    #[test]
    fn ours_without_our_management_identity_gets_it_written() {
        let missing = mgmt(owned_by(base(), 6, (UID, "ns", "mm-0", None)));
        assert_eq!(label(&decide_machine(&missing)), "SetOwnerData(abc123)");
        // Without a known identity nothing is rewritten.
        let unknown = owned_by(base(), 6, (UID, "ns", "mm-0", None));
        assert_eq!(
            label(&decide_machine(&unknown)),
            "Ready(maas:///az1/abc123)"
        );
        // A released machine is not stamped.
        let free = mgmt(owned_by(base(), 4, (UID, "ns", "mm-0", None)));
        assert_eq!(
            label(&decide_machine(&free)),
            "Fail(MachineReleasedOutside)"
        );
    }

    #[test]
    fn deleting_for_move_drops_the_finalizer_without_release() {
        let f = MachineFacts {
            deleting: true,
            moving: true,
            paused: true,
            release_intent: true,
            ..allocated(base(), 6, Power::On, Some(UID))
        };
        assert_eq!(label(&decide_machine(&f)), "RemoveFinalizer");
        // Without the annotation the same deletion releases.
        let f = MachineFacts {
            moving: false,
            paused: false,
            ..f
        };
        assert_eq!(label(&decide_machine(&f)), "Release(abc123)");
    }

    #[test]
    fn deleting_a_moved_machine_before_adoption_releases_it() {
        let f = MachineFacts {
            deleting: true,
            release_intent: true,
            ..owned_by(base(), 6, ("uid-source", "ns", "mm-0", Some("mgmt-source")))
        };
        assert_eq!(label(&decide_machine(&f)), "Release(abc123)");
        let f = MachineFacts {
            deleting: true,
            release_intent: true,
            ..owned_by(base(), 6, ("uid-other", "ns", "mm-9", Some("mgmt-source")))
        };
        assert_eq!(label(&decide_machine(&f)), "RemoveFinalizer");
    }
}
