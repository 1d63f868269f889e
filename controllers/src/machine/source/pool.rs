//! Machines from a MAAS resource pool, through allocate: the crash-safe acquisition (attempt
//! mark, adoption lookup under our agent name, allocate with every constraint) and its calls.

use maas_client::{AllocateParams, MaasApi, MaasError, MachineFilter};
use tracing::info;

use crate::domain::allocation::{AllocateRequest, agent_name, allocate_request};
use crate::domain::maas_machine::{MaasPhase, ObservedMachine, Ownership};
use crate::domain::observe::observe;
use crate::machine::decide::{MaasView, MachineAction, MachineFacts, OwnerMachine};
use crate::machine::outcome::StepOutcome;
use crate::machine::source::gpu;
use crate::runtime::error::ReconcileError;

/// The next acquisition step: the attempt mark before anything (so a lost allocate answer is
/// found again), then a lookup under our agent name, then allocate.
pub fn acquire(f: &MachineFacts, owner: &OwnerMachine) -> MachineAction {
    match (f.attempt_marked, &f.maas) {
        (false, _) => MachineAction::MarkAttempt,
        // The last allocate under this mark was refused (409): MAAS provably allocated nothing,
        // so there is nothing to look up.
        (true, MaasView::Unread) if f.capacity_refused_for.is_some() => allocate_action(f, owner),
        (true, MaasView::Unread) => MachineAction::AdoptLookup {
            agent_name: agent_name(&f.uid),
        },
        (true, _) => allocate_action(f, owner),
    }
}

fn allocate_action(f: &MachineFacts, owner: &OwnerMachine) -> MachineAction {
    let mut request = allocate_request(
        &f.requirements,
        owner.failure_domain.as_deref(),
        f.default_zone.as_deref(),
        &f.uid,
        &f.namespace,
        &f.name,
    );
    // Several GPUs asked for: MAAS's devices constraint only knows "at least one", so the
    // inventory's machines with enough GPUs are asked for by system id, smallest first, and
    // none left means waiting, not allocating a machine that is too small.
    if let Some(candidates) = gpu::candidates_left(f) {
        match candidates.first() {
            Some(id) => request.system_id = Some(id.clone()),
            None => return gpu::no_candidate_left(),
        }
    }
    MachineAction::Allocate(request)
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
        arch: r.arch.clone(),
        system_id: r.system_id.clone(),
        agent_name: Some(r.agent_name.clone()),
        comment: Some(r.comment.clone()),
        ..Default::default()
    }
}

/// Allocates (the step), reporting a business conflict (409: nothing matches now) as an outcome.
pub async fn allocate<M: MaasApi>(
    maas: &M,
    request: &AllocateRequest,
) -> Result<StepOutcome, ReconcileError> {
    match maas.allocate(&allocate_params(request)).await {
        Ok(m) => {
            info!(system_id = %m.system_id, "allocated");
            Ok(StepOutcome::Allocated(observe(&m)))
        }
        Err(MaasError::Conflict { .. }) => Ok(match &request.system_id {
            Some(id) => StepOutcome::CandidateRefused(id.clone()),
            None => StepOutcome::NoMachineMatched,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Looks for held machines under our agent name. Machines set aside for too few GPUs carry our
/// agent name too: they are never adopted. More than one means an earlier allocate was applied
/// twice (a resent request, a second manager): one is kept, the others are to be released.
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
    let held: Vec<ObservedMachine> = found
        .iter()
        .map(observe)
        .filter(|m| m.phase().is_held() && !facts.gpu.rejected.contains(&m.system_id))
        .collect();
    let (kept, duplicates) = choose_adoptee(held, facts);
    if let Some(m) = &kept {
        info!(system_id = %m.system_id, ?duplicates, "adopting a machine allocated by an earlier attempt");
    }
    Ok(StepOutcome::LookedUp(kept, duplicates))
}

/// Asks MAAS whether the machine carries our agent name: MAAS never shows a machine's agent name,
/// but filters by it.
pub async fn confirm_agent_name<M: MaasApi>(
    maas: &M,
    system_id: &str,
    agent_name: &str,
) -> Result<StepOutcome, ReconcileError> {
    let filter = MachineFilter {
        id: vec![system_id.to_string()],
        agent_name: Some(agent_name.to_string()),
        ..Default::default()
    };
    let found = maas.list_machines(&filter).await?;
    let ours = found.iter().any(|m| m.system_id == system_id);
    if !ours {
        info!(%system_id, "the recorded machine no longer carries our agent name");
    }
    Ok(StepOutcome::AgentNameChecked(ours))
}

/// Which of several held machines under our agent name to keep: the one whose owner data names
/// this object, else the one furthest along (deployed before deploying before allocated), else
/// the lowest system id. The choice depends only on MAAS's state, so a pass cut off while
/// releasing the others makes the same choice again.
pub fn choose_adoptee(
    mut held: Vec<ObservedMachine>,
    facts: &MachineFacts,
) -> (Option<ObservedMachine>, Vec<String>) {
    let rank = |m: &ObservedMachine| {
        let marked = match m.ownership(&facts.uid, &facts.namespace, &facts.name) {
            Ownership::Ours | Ownership::Moved => 0,
            Ownership::Unmarked => 1,
            Ownership::Other => 2,
        };
        let progress = match m.phase() {
            MaasPhase::Deployed => 0,
            MaasPhase::Deploying => 1,
            MaasPhase::Allocated => 2,
            _ => 3,
        };
        (marked, progress, m.system_id.clone())
    };
    held.sort_by_key(rank);
    let mut rest = held.into_iter();
    let kept = rest.next();
    (kept, rest.map(|m| m.system_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::owner_data_for;

    fn held(id: &str, status_code: i64) -> ObservedMachine {
        ObservedMachine {
            system_id: id.into(),
            status_code,
            ..Default::default()
        }
    }

    fn facts() -> MachineFacts {
        crate::machine::decide::tests::base_facts()
    }

    #[test]
    fn one_machine_is_kept_and_none_released() {
        let (kept, rest) = choose_adoptee(vec![held("b", 10)], &facts());
        assert_eq!(kept.map(|m| m.system_id).as_deref(), Some("b"));
        assert!(rest.is_empty());
        assert_eq!(choose_adoptee(vec![], &facts()), (None, vec![]));
    }

    #[test]
    fn the_marked_then_furthest_then_lowest_is_kept() {
        let f = facts();
        let mut marked = held("z", 10);
        marked.owner_data = owner_data_for(&f.uid, &f.namespace, &f.name, None);
        let (kept, rest) = choose_adoptee(vec![held("a", 6), marked, held("b", 10)], &f);
        assert_eq!(kept.map(|m| m.system_id).as_deref(), Some("z"));
        assert_eq!(rest, ["a", "b"]);

        let (kept, rest) = choose_adoptee(vec![held("c", 10), held("d", 6), held("a", 10)], &f);
        assert_eq!(kept.map(|m| m.system_id).as_deref(), Some("d"));
        assert_eq!(rest, ["a", "c"]);
    }
}
