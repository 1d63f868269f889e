//! What a step did, typed: the executor reports what MAAS or the store answered, [`absorb`]
//! folds it into the facts (the interpretation is a decision, so it is here and pure), and
//! events are derived from the outcomes of a pass.

use crate::domain::ignition::IgnitionError;
use crate::domain::maas_machine::ObservedMachine;
use crate::domain::timing::DeployFailures;
use crate::domain::user_data::UserDataFormat;
use crate::machine::decide::{MaasView, MachineAction, MachineFacts};
use crate::machine::source::gpu::MAX_GPU_REJECTIONS;

/// What performing one action gave.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// A wait, a poll, ready or a failure: the action ends the pass, nothing was performed.
    Ended,
    /// The allocation-attempt annotation is written.
    AttemptMarked,
    /// The lookup under our agent name found this held machine (or none), and these other held
    /// machines under the same agent name, to be released.
    LookedUp(Option<ObservedMachine>, Vec<String>),
    /// MAAS says whether the machine carries our agent name.
    AgentNameChecked(bool),
    /// A second machine under our agent name is released (or was already gone).
    DuplicateReleased(String),
    /// MAAS allocated this machine.
    Allocated(ObservedMachine),
    /// MAAS answered the allocate with a business conflict (409): nothing matches now.
    NoMachineMatched,
    /// MAAS refused to allocate this candidate by its system id (409: taken since the inventory
    /// was read, or no longer matching); nothing was allocated.
    CandidateRefused(String),
    /// `spec.systemID` now records the machine.
    SystemIdRecorded(String),
    /// MAAS answered with the machine (owner data, read), or 404.
    Observed(MaasView),
    /// MAAS took the power-on and answered with the machine, or 404.
    PowerOnSent(MaasView),
    /// The deploy was refused before any MAAS call: the bootstrap data cannot be deployed.
    BootstrapRefused(String),
    /// MAAS started the deployment with user data of this format.
    DeployStarted(UserDataFormat, ObservedMachine),
    /// MAAS refused the deploy with a business conflict (409), with its message.
    DeployRefused(String),
    /// The release intent (and, for a failure, the failure record) is written.
    ReleaseIntentMarked(Option<DeployFailures>),
    /// MAAS released the machine.
    Released(MaasView),
    /// MAAS refused the release (403, 409), with its words.
    ReleaseRefused(String),
    /// The released machine is dropped from the object.
    Forgotten,
    /// The recorded machine carries this many matching GPUs.
    GpusCounted(u32),
    /// The machine is set aside for too few GPUs; the list is now this.
    SetAside(Vec<String>),
    /// The first set-aside machine is (or is not) still ours and held.
    SetAsideRead(String, bool),
    /// A set-aside machine left the list (released, or no longer ours); the list is now this.
    SetAsideDropped(Vec<String>),
    /// The finalizer is gone.
    FinalizerRemoved,
}

/// One step of a pass: the action decided and what performing it gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The action.
    pub action: MachineAction,
    /// Its outcome.
    pub outcome: StepOutcome,
}

/// Folds an outcome into the facts, so the next decision sees what the step changed.
pub fn absorb(f: &mut MachineFacts, outcome: &StepOutcome) {
    match outcome {
        StepOutcome::Ended | StepOutcome::FinalizerRemoved => {}
        StepOutcome::AttemptMarked
        | StepOutcome::LookedUp(..)
        | StepOutcome::AgentNameChecked(_)
        | StepOutcome::DuplicateReleased(_)
        | StepOutcome::Allocated(_)
        | StepOutcome::NoMachineMatched
        | StepOutcome::SystemIdRecorded(_) => absorb_acquisition(f, outcome),
        StepOutcome::GpusCounted(_)
        | StepOutcome::CandidateRefused(_)
        | StepOutcome::SetAside(_)
        | StepOutcome::SetAsideRead(..)
        | StepOutcome::SetAsideDropped(_) => absorb_gpu(f, outcome),
        StepOutcome::Observed(view) => f.maas = view.clone(),
        StepOutcome::Released(view) => {
            if let MaasView::Found(m) = view {
                f.released_in_state = Some(m.status_code);
            }
            f.maas = view.clone();
        }
        StepOutcome::ReleaseRefused(message) => f.pass.release_refused = Some(message.clone()),
        StepOutcome::PowerOnSent(view) => {
            f.pass.power_on_sent = true;
            f.maas = view.clone();
        }
        StepOutcome::BootstrapRefused(problem) => f.pass.bootstrap_refused = Some(problem.clone()),
        StepOutcome::DeployStarted(_, m) => f.maas = MaasView::Found(m.clone()),
        StepOutcome::DeployRefused(message) => {
            // The first refusal may answer an earlier deploy whose answer was lost: look again.
            f.pass.deploy_refusals += 1;
            f.pass.deploy_refusal = Some(message.clone());
            f.maas = MaasView::Unread;
        }
        StepOutcome::ReleaseIntentMarked(failures) => {
            f.release_intent = true;
            f.pass.release_intent_marked = true;
            if let Some(failures) = failures {
                f.failures = *failures;
            }
        }
        StepOutcome::Forgotten => {
            f.system_id = None;
            f.attempt_marked = false;
            f.release_intent = false;
            f.maas = MaasView::Unread;
        }
    }
}

/// The outcomes of acquiring a machine: the attempt mark, the lookup, allocate, the record.
fn absorb_acquisition(f: &mut MachineFacts, outcome: &StepOutcome) {
    match outcome {
        StepOutcome::AttemptMarked => {
            f.attempt_marked = true;
            // Nothing can have been allocated under this mark yet: no lookup needed.
            f.maas = MaasView::NotFound;
        }
        StepOutcome::LookedUp(found, duplicates) => {
            if found.is_some() {
                f.pass.agent_name = Some(true);
            }
            f.maas = found.clone().map_or(MaasView::NotFound, MaasView::Found);
            f.pass.duplicates = duplicates.clone();
        }
        StepOutcome::AgentNameChecked(ours) => f.pass.agent_name = Some(*ours),
        StepOutcome::DuplicateReleased(id) => f.pass.duplicates.retain(|d| d != id),
        StepOutcome::Allocated(m) => {
            f.pass.agent_name = Some(true);
            f.maas = MaasView::Found(m.clone());
        }
        // After setting machines aside, MAAS having nothing else means the GPU search is over.
        StepOutcome::NoMachineMatched if !f.gpu.rejected.is_empty() => f.pass.gpu.exhausted = true,
        StepOutcome::NoMachineMatched => f.pass.allocation_refused = true,
        StepOutcome::SystemIdRecorded(id) => f.system_id = Some(id.clone()),
        _ => {}
    }
}

/// The outcomes of the GPU search.
fn absorb_gpu(f: &mut MachineFacts, outcome: &StepOutcome) {
    match outcome {
        StepOutcome::GpusCounted(n) => f.pass.gpu.count = Some(*n),
        StepOutcome::CandidateRefused(id) => f.pass.gpu.tried.push(id.clone()),
        StepOutcome::SetAside(rejected) => {
            f.pass.gpu.exhausted |= rejected.len() >= MAX_GPU_REJECTIONS;
            f.gpu.rejected = rejected.clone();
            f.pass.gpu.count = None;
            f.system_id = None;
            // Nothing else was allocated under this attempt: allocate again directly.
            f.maas = MaasView::NotFound;
        }
        StepOutcome::SetAsideRead(id, held) => {
            f.pass.gpu.first_rejected_held = Some((id.clone(), *held));
        }
        StepOutcome::SetAsideDropped(rest) => {
            f.gpu.rejected = rest.clone();
            f.pass.gpu.first_rejected_held = None;
        }
        _ => {}
    }
}

/// An event a pass leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    /// A warning rather than a normal event.
    pub warning: bool,
    /// The event reason.
    pub reason: &'static str,
    /// The action (the step's name).
    pub action: &'static str,
    /// The note.
    pub note: String,
}

/// The events of a pass, derived from its steps: an allocation or adoption once recorded, a
/// started deployment, a release, a refusal of the bootstrap data.
pub fn events(steps: &[Step]) -> Vec<EventNote> {
    let mut out = Vec::new();
    let mut came_from: Option<(&'static str, &ObservedMachine)> = None;
    for step in steps {
        let action = step.action.name();
        let normal = |reason, note| EventNote {
            warning: false,
            reason,
            action,
            note,
        };
        match &step.outcome {
            StepOutcome::Allocated(m) => came_from = Some(("Allocated", m)),
            StepOutcome::LookedUp(Some(m), _) => came_from = Some(("Adopted", m)),
            StepOutcome::DuplicateReleased(id) => out.push(EventNote {
                warning: true,
                reason: "DuplicateReleased",
                action,
                note: format!(
                    "released MAAS machine {id}: a second machine allocated under this object's \
                     agent name"
                ),
            }),
            StepOutcome::SystemIdRecorded(_) => match came_from.take() {
                Some(("Allocated", m)) => out.push(normal(
                    "Allocated",
                    format!("allocated MAAS machine {}", m.system_id),
                )),
                Some((_, m)) => out.push(normal(
                    "Adopted",
                    format!(
                        "adopted MAAS machine {} from an interrupted allocation",
                        m.system_id
                    ),
                )),
                None => {}
            },
            StepOutcome::DeployStarted(format, _) => out.push(normal(
                "DeployStarted",
                format!("deploying with {} bootstrap data", format.as_str()),
            )),
            StepOutcome::Released(_) if matches!(step.action, MachineAction::Release { .. }) => {
                out.push(normal("Released", "released the MAAS machine".to_string()))
            }
            StepOutcome::BootstrapRefused(problem) => out.push(EventNote {
                warning: true,
                reason: IgnitionError::REASON,
                action,
                note: format!("not deploying: {problem}"),
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::decide::EraseOptions;
    use crate::machine::source::gpu::GpuAction;

    fn m(id: &str) -> ObservedMachine {
        ObservedMachine {
            system_id: id.into(),
            ..Default::default()
        }
    }

    fn step(action: MachineAction, outcome: StepOutcome) -> Step {
        Step { action, outcome }
    }

    #[test]
    fn allocation_and_adoption_are_told_once_recorded() {
        let allocated = [
            step(
                MachineAction::Allocate(Default::default()),
                StepOutcome::Allocated(m("s1")),
            ),
            step(
                MachineAction::RecordSystemId("s1".into()),
                StepOutcome::SystemIdRecorded("s1".into()),
            ),
        ];
        let ev = events(&allocated);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].reason, ev[0].action),
            ("Allocated", "RecordSystemId")
        );
        assert!(ev[0].note.contains("s1"));

        let adopted = [
            step(
                MachineAction::AdoptLookup {
                    agent_name: "capmaas:u".into(),
                },
                StepOutcome::LookedUp(Some(m("s2")), vec![]),
            ),
            step(
                MachineAction::RecordSystemId("s2".into()),
                StepOutcome::SystemIdRecorded("s2".into()),
            ),
        ];
        assert_eq!(events(&adopted)[0].reason, "Adopted");
        assert!(
            events(&adopted[..1]).is_empty(),
            "an allocation whose record failed is not told"
        );
    }

    #[test]
    fn deploys_releases_and_refusals() {
        let steps = [
            step(
                MachineAction::Release {
                    system_id: "s1".into(),
                    erase: EraseOptions::default(),
                },
                StepOutcome::Released(MaasView::Found(m("s1"))),
            ),
            step(
                MachineAction::Gpu(GpuAction::ReleaseRejected {
                    system_id: "s9".into(),
                    erase: EraseOptions::default(),
                }),
                StepOutcome::SetAsideDropped(vec![]),
            ),
            step(
                MachineAction::Forget,
                StepOutcome::BootstrapRefused("line 1".into()),
            ),
        ];
        let ev = events(&steps);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].reason, "Released");
        assert!(ev[1].warning && ev[1].note.ends_with("line 1"));
    }
}
