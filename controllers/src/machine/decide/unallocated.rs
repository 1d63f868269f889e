//! Decisions before a machine is recorded: the gates (owner, cluster, bootstrap data), the
//! failure budget, and the crash-safe allocation (attempt mark, adoption lookup, allocate).

use crate::domain::reasons::{FailReason, WaitReason};
use crate::domain::timing::NO_CAPACITY_RETRY;
use crate::machine::source::{gpu, pool};

use super::{MaasView, MachineAction, MachineFacts, wait};

/// The next step for a MaasMachine with no recorded machine.
pub fn decide_unallocated(f: &MachineFacts) -> MachineAction {
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
    if let Some(step) = gpu::search_over(f) {
        return step;
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
    // Woken by an unrelated event (the Cluster's status changes often): MAAS said no a moment
    // ago, and asking again before the retry delay would only repeat the question.
    if let Some(since) = f.capacity_refused_for
        && since < NO_CAPACITY_RETRY
    {
        return wait(
            WaitReason::NoMachineAvailable,
            Some(NO_CAPACITY_RETRY - since),
        );
    }
    pool::acquire(f, owner)
}
