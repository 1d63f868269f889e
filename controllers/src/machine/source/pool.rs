//! Machines from a MAAS resource pool, through allocate: the crash-safe acquisition (attempt
//! mark, adoption lookup under our agent name, allocate with every constraint) and its calls.

use maas_client::{AllocateParams, MaasApi, MaasError, MachineFilter};
use tracing::info;

use crate::domain::allocation::{AllocateRequest, agent_name, allocate_request};
use crate::domain::observe::observe;
use crate::machine::decide::{MaasView, MachineAction, MachineFacts, OwnerMachine};
use crate::machine::outcome::StepOutcome;
use crate::runtime::error::ReconcileError;

/// The next acquisition step: the attempt mark before anything (so a lost allocate answer is
/// found again), then a lookup under our agent name, then allocate.
pub fn acquire(f: &MachineFacts, owner: &OwnerMachine) -> MachineAction {
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

/// The client's allocate parameters for our request.
pub fn allocate_params(r: &AllocateRequest) -> AllocateParams {
    AllocateParams {
        cpu_count: r.cpu_count,
        mem: r.mem,
        tags: r.tags.clone(),
        not_tags: r.not_tags.clone(),
        zone: r.zone.clone(),
        pool: r.pool.clone(),
        storage: r.storage.clone(),
        devices: r.devices.clone(),
        agent_name: Some(r.agent_name.clone()),
        comment: Some(r.comment.clone()),
        ..Default::default()
    }
}

/// Allocates, reporting a business conflict (409: nothing matches now) as an outcome.
pub async fn allocate<M: MaasApi>(
    maas: &M,
    request: &AllocateRequest,
) -> Result<StepOutcome, ReconcileError> {
    match maas.allocate(&allocate_params(request)).await {
        Ok(m) => {
            info!(system_id = %m.system_id, "allocated");
            Ok(StepOutcome::Allocated(observe(&m)))
        }
        Err(MaasError::Conflict { .. }) => Ok(StepOutcome::NoMachineMatched),
        Err(e) => Err(e.into()),
    }
}

/// Looks for a held machine under our agent name. Machines set aside for too few GPUs carry our
/// agent name too: they are never adopted.
pub async fn adopt_lookup<M: MaasApi>(
    maas: &M,
    facts: &MachineFacts,
    agent_name: &str,
) -> Result<StepOutcome, ReconcileError> {
    let filter = MachineFilter {
        agent_name: Some(agent_name.to_string()),
        ..Default::default()
    };
    let found = maas.list_machines(&filter).await?;
    let held = found
        .iter()
        .map(observe)
        .find(|m| m.phase().is_held() && !facts.gpu.rejected.contains(&m.system_id));
    if let Some(m) = &held {
        info!(system_id = %m.system_id, "adopting a machine allocated by an earlier attempt");
    }
    Ok(StepOutcome::LookedUp(held))
}
