//! Decisions for a recorded machine: make sure it is still ours, write owner data, finish the
//! GPU search, then follow its MAAS state (deploy, poll, power on, ready, release on failure).

use std::ops::ControlFlow::{self, Break, Continue};
use std::time::Duration;

use crate::domain::allocation::agent_name;
use crate::domain::image::distro_series;
use crate::domain::maas_machine::{
    MaasPhase, OWNER_KEY_RELEASE, ObservedMachine, Ownership, Power, owner_data_for,
};
use crate::domain::reasons::{FailReason, WaitReason};
use crate::domain::timing::{
    DEPLOY_REFUSED_RETRY, INVALID_BOOTSTRAP_RETRY, MAX_DEPLOY_FAILURES, MAX_POWER_ONS,
    POWER_ON_POLL, POWER_STAYS_OFF_RETRY, deploy_poll_delay, power_on_backoff,
};
use crate::machine::source::gpu;

use super::{MaasView, MachineAction, MachineFacts, ready_machine, wait};

/// The next step for a MaasMachine with a recorded machine.
pub fn decide_allocated(f: &MachineFacts, id: &str) -> MachineAction {
    let m = match still_ours(f, id) {
        Continue(m) => m,
        Break(step) => return step,
    };
    match m.phase() {
        MaasPhase::Allocated => deploy(f, id),
        MaasPhase::Deploying => MachineAction::Poll {
            reason: WaitReason::Deploying,
            after: deploy_poll_delay(f.deploying_for),
        },
        MaasPhase::Deployed => match m.power {
            Power::Off => power_on(f, id),
            Power::On | Power::Unknown => MachineAction::Ready(ready_machine(f, m)),
        },
        MaasPhase::FailedDeployment | MaasPhase::Broken if f.was_ready => MachineAction::Fail {
            reason: FailReason::MachineFailedAfterReady,
            message: format!(
                "MAAS machine {id} is {} after it was ready; kept until CAPI deletes the Machine",
                m.status_name
            ),
        },
        MaasPhase::FailedDeployment | MaasPhase::Broken => failed_deployment(f, id, m),
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

/// The recorded machine, once it is known to exist and be ours with our owner data; otherwise
/// the step that gets there (read it, write owner data) or the failure (gone, taken over), or
/// the GPU search's step before a deploy.
fn still_ours<'a>(
    f: &'a MachineFacts,
    id: &str,
) -> ControlFlow<MachineAction, &'a ObservedMachine> {
    let m = match &f.maas {
        MaasView::Unread => {
            return Break(MachineAction::Read {
                system_id: id.to_string(),
            });
        }
        MaasView::NotFound => {
            return Break(MachineAction::Fail {
                reason: FailReason::MachineNotFound,
                message: format!("MAAS machine {id} no longer exists"),
            });
        }
        MaasView::Found(m) => m,
    };
    let ownership = m.ownership(&f.uid, &f.namespace, &f.name);
    if ownership == Ownership::Other {
        return Break(MachineAction::Fail {
            reason: FailReason::MachineTakenOver,
            message: format!("MAAS machine {id} now belongs to another object"),
        });
    }
    let phase = m.phase();
    if let Some(step) = unmarked_check(f, id, m, ownership) {
        return Break(step);
    }
    if phase.is_held() && needs_owner_data(f, m, ownership) {
        return Break(MachineAction::SetOwnerData {
            system_id: id.to_string(),
            data: owner_data(f),
        });
    }
    if phase == MaasPhase::Allocated
        && let Some(step) = gpu::after_allocation(f, id)
    {
        return Break(step);
    }
    Continue(m)
}

/// A deployed machine that MAAS reports off: power it on, then wait for the power to read on,
/// each power-on waiting longer than the last; after a few, stop asking and say so.
fn power_on(f: &MachineFacts, id: &str) -> MachineAction {
    if f.pass.power_on_sent {
        return MachineAction::Poll {
            reason: WaitReason::PoweringOn,
            after: POWER_ON_POLL,
        };
    }
    match f.power_ons {
        Some((sent, _)) if sent >= MAX_POWER_ONS => {
            wait(WaitReason::PowerStaysOff, Some(POWER_STAYS_OFF_RETRY))
        }
        Some((sent, ago)) if ago < power_on_backoff(sent) => MachineAction::Poll {
            reason: WaitReason::PoweringOn,
            after: power_on_backoff(sent) - ago,
        },
        _ => MachineAction::PowerOn {
            system_id: id.to_string(),
        },
    }
}

/// A held machine without our owner data is ours only while it carries our agent name (between
/// our allocate and our owner data): ask MAAS when this pass does not know, and fail as taken
/// over when it does not. Someone else may have taken the machine under the same MAAS user after
/// a release behind our back. A MaasMachine the Go provider made is the exception: its machine
/// never had either, and writing our owner data adopts it.
pub(crate) fn unmarked_check(
    f: &MachineFacts,
    id: &str,
    m: &ObservedMachine,
    ownership: Ownership,
) -> Option<MachineAction> {
    if ownership != Ownership::Unmarked || !m.phase().is_held() || f.made_by_go_provider {
        return None;
    }
    match f.pass.agent_name {
        Some(true) => None,
        Some(false) => Some(MachineAction::Fail {
            reason: FailReason::MachineTakenOver,
            message: format!(
                "MAAS machine {id} carries neither this object's owner data nor its agent name"
            ),
        }),
        None => Some(MachineAction::ConfirmAgentName {
            system_id: id.to_string(),
            agent_name: agent_name(&f.uid),
        }),
    }
}

/// An allocated machine of ours: deploy it with the bootstrap data, unless this pass already
/// learnt that the data or MAAS refuses.
fn deploy(f: &MachineFacts, id: &str) -> MachineAction {
    if f.pass.bootstrap_refused.is_some() {
        return wait(
            WaitReason::InvalidBootstrapData,
            Some(INVALID_BOOTSTRAP_RETRY),
        );
    }
    // Refused again after a fresh look: MAAS will not deploy it now, whatever we send.
    if f.pass.deploy_refusals >= 2 {
        return wait(WaitReason::DeployRefused, Some(DEPLOY_REFUSED_RETRY));
    }
    match f
        .owner
        .as_ref()
        .and_then(|o| o.bootstrap_data_secret.clone())
    {
        Some(secret) => MachineAction::Deploy {
            system_id: id.to_string(),
            distro_series: distro_series(&f.image),
            ephemeral: f.deploy_in_memory,
            hwe_kernel: f.hwe_kernel.clone(),
            bootstrap_secret: secret,
        },
        None => wait(WaitReason::WaitingForBootstrapData, None),
    }
}

/// A failed deployment or a Broken machine before the machine was ever ready: release it to
/// try another, within the budget; past it, keep it for inspection and fail.
fn failed_deployment(f: &MachineFacts, id: &str, m: &ObservedMachine) -> MachineAction {
    let failures = f.failures.record(f.now);
    if failures.count >= MAX_DEPLOY_FAILURES {
        return MachineAction::Fail {
            reason: FailReason::DeployFailuresExhausted,
            message: format!(
                "MAAS machine {id} is {} after {} attempts; kept for inspection",
                m.status_name, failures.count
            ),
        };
    }
    MachineAction::MarkReleaseIntent {
        failures: Some(failures),
    }
}

/// The owner data of this MaasMachine: who it is, which management cluster, how to release it.
fn owner_data(f: &MachineFacts) -> std::collections::BTreeMap<String, String> {
    let mut data = owner_data_for(&f.uid, &f.namespace, &f.name, f.management.as_deref());
    if let Some(release) = f.erase.owner_data_value() {
        data.insert(OWNER_KEY_RELEASE.to_string(), release);
    }
    data
}

/// Whether the held machine's owner data must be (re)written: nothing written yet (right after
/// allocate), the object was moved here from another management cluster (adopt it: new uid and
/// management identity, same machine), or it is ours but names no or another management
/// identity (allocated before the identity was recorded).
fn needs_owner_data(f: &MachineFacts, m: &ObservedMachine, ownership: Ownership) -> bool {
    match ownership {
        Ownership::Unmarked | Ownership::Moved => true,
        Ownership::Ours => {
            f.management
                .as_deref()
                .is_some_and(|ours| m.management() != Some(ours))
                || m.owner_data.get(OWNER_KEY_RELEASE) != f.erase.owner_data_value().as_ref()
        }
        Ownership::Other => false,
    }
}
