//! Decisions while the MaasMachine is being deleted, and for a release in progress after a
//! failed deployment: release intent first, then the release, then the finalizer or a fresh
//! allocation.

use crate::domain::allocation::agent_name;
use std::collections::BTreeMap;

use crate::domain::maas_machine::{MaasPhase, OWNER_KEY_MANAGEMENT, ObservedMachine, Ownership};
use crate::domain::reasons::WaitReason;
use crate::domain::timing::{RELEASE_POLL, RELEASE_REFUSED_RETRY};
use crate::machine::source::gpu;

use super::allocated::unmarked_check;
use super::{MaasView, MachineAction, MachineFacts, wait};

/// The next step of a deletion.
pub fn decide_deletion(f: &MachineFacts) -> MachineAction {
    if !f.gpu.rejected.is_empty() {
        return gpu::release_rejected(f);
    }
    match (&f.system_id, &f.maas) {
        (None, _) if !f.attempt_marked => MachineAction::RemoveFinalizer,
        (None, MaasView::Unread) => MachineAction::AdoptLookup {
            agent_name: agent_name(&f.uid),
        },
        (None, MaasView::NotFound) => MachineAction::RemoveFinalizer,
        (None, MaasView::Found(m)) => MachineAction::RecordSystemId(m.system_id.clone()),
        (Some(_), _) if !f.release_intent => MachineAction::MarkReleaseIntent { failures: None },
        // Seen deployed and ours lately, and no release of ours can have gone out before this
        // pass's intent: release without reading it first.
        (Some(id), MaasView::Unread) if f.pass.release_intent_marked && f.ready_confirmed => {
            MachineAction::Release {
                system_id: id.clone(),
                erase: f.erase,
            }
        }
        (Some(id), MaasView::Unread) => MachineAction::Read {
            system_id: id.clone(),
        },
        (Some(_), MaasView::NotFound) => MachineAction::RemoveFinalizer,
        (Some(id), MaasView::Found(m)) => release_seen(f, id, m),
    }
}

/// Deletion of a recorded machine MAAS has just shown: release it if it is still ours and held,
/// wait while it is releasing, let go of it once it is free or someone else's.
fn release_seen(f: &MachineFacts, id: &str, m: &ObservedMachine) -> MachineAction {
    let ownership = m.ownership(&f.uid, &f.namespace, &f.name);
    let someone_elses = ownership == Ownership::Other
        || (ownership == Ownership::Unmarked && f.pass.agent_name == Some(false));
    if someone_elses {
        return MachineAction::RemoveFinalizer;
    }
    if let Some(step @ MachineAction::ConfirmAgentName { .. }) = unmarked_check(f, id, m, ownership)
    {
        return step;
    }
    match m.phase() {
        MaasPhase::Releasing => releasing_poll(),
        phase if phase.is_held() || phase == MaasPhase::FailedReleasing => release_once(f, id, m),
        _ => MachineAction::RemoveFinalizer,
    }
}

/// A release in progress outside deletion (after a failed deployment): finish it, then forget.
pub fn decide_releasing(f: &MachineFacts, id: &str) -> MachineAction {
    match &f.maas {
        MaasView::Unread => MachineAction::Read {
            system_id: id.to_string(),
        },
        MaasView::NotFound => MachineAction::Forget,
        MaasView::Found(m) => {
            let ownership = m.ownership(&f.uid, &f.namespace, &f.name);
            if let Some(step @ MachineAction::ConfirmAgentName { .. }) =
                unmarked_check(f, id, m, ownership)
            {
                return step;
            }
            let ours = ownership != Ownership::Other && f.pass.agent_name != Some(false);
            if ours && (m.phase().is_held() || m.phase() == MaasPhase::FailedReleasing) {
                release_once(f, id, m)
            } else {
                MachineAction::Forget
            }
        }
    }
}

fn releasing_poll() -> MachineAction {
    MachineAction::Poll {
        reason: WaitReason::Releasing,
        after: RELEASE_POLL,
    }
}

/// A held machine to release: at most one release per state MAAS shows. When MAAS took our
/// release and still shows the status it answered with (a Broken machine may stay Broken), the
/// release is not sent again: the machine is watched until its status changes. A refused release
/// waits, with MAAS's words in the condition.
fn release_once(f: &MachineFacts, id: &str, m: &ObservedMachine) -> MachineAction {
    if f.pass.release_refused.is_some() {
        return wait(WaitReason::ReleaseRefused, Some(RELEASE_REFUSED_RETRY));
    }
    if f.released_in_state == Some(m.status_code) {
        return releasing_poll();
    }
    MachineAction::Release {
        system_id: id.to_string(),
        erase: f.erase,
    }
}

/// A MaasMachine deleted by `clusterctl move`: the machine goes on under the target management
/// cluster. Our management identity is taken out of its owner data first, so our orphan sweep
/// never releases it, however long the target takes to adopt it (or if it never does). A machine
/// that already names another management cluster (the target adopted it first) is left alone.
pub fn hand_over(f: &MachineFacts) -> MachineAction {
    let (Some(id), Some(ours)) = (&f.system_id, f.management.as_deref()) else {
        return MachineAction::RemoveFinalizer;
    };
    match &f.maas {
        MaasView::Unread => MachineAction::Read {
            system_id: id.clone(),
        },
        MaasView::Found(m) if m.phase().is_held() && m.management() == Some(ours) => {
            MachineAction::SetOwnerData {
                system_id: id.clone(),
                // An empty value deletes the key.
                data: BTreeMap::from([(OWNER_KEY_MANAGEMENT.to_string(), String::new())]),
            }
        }
        _ => MachineAction::RemoveFinalizer,
    }
}
