//! Runs the MaasMachine decisions against MAAS and a store for the Kubernetes side.
//!
//! One pass: decide, perform the step, fold its result into the facts, decide again, until a
//! step ends the pass. The Kubernetes writes go through a [`MachineStore`] so this loop is tested
//! against the MAAS simulator with an in-memory store, and the reconciler supplies the real one.

use std::time::Duration;

use maas_client::{DeployParams, MaasApi, MaasError, ReleaseParams};
use tracing::{debug, info, warn};

use crate::domain::ignition::{DeployTarget, IgnitionPatchOptions, prepare_user_data};
use crate::domain::maas_machine::ObservedMachine;
use crate::domain::observe::observe;
use crate::domain::reasons::{FailReason, WaitReason};
use crate::domain::user_data::{UserDataFormat, detect_format};
use crate::machine::decide::{
    EraseOptions, MaasView, MachineAction, MachineFacts, ReadyMachine, decide_machine, machine_zone,
};
use crate::machine::outcome::{Step, StepOutcome, absorb};
use crate::machine::source::{gpu, pool};
use crate::machine::store::MachineStore;
use crate::runtime::error::ReconcileError;

/// Upper bound on steps in one pass; the longest legitimate sequence (adopt, record, owner data,
/// deploy, ready) is far below it.
pub const MAX_STEPS: usize = 32;

/// How a pass ended.
#[derive(Clone, Debug, PartialEq)]
pub enum PassEnd {
    /// Waiting for a change, or for `after`.
    Waiting {
        /// Why.
        reason: WaitReason,
        /// When to look again.
        after: Option<Duration>,
    },
    /// Deployed and ready.
    Ready(ReadyMachine),
    /// Terminal failure.
    Failed {
        /// Stable reason.
        reason: FailReason,
        /// Message.
        message: String,
    },
    /// Finalizer removed: the object may go.
    Finalized,
}

/// How a pass stands to MAAS's capacity, for the memory of refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityAnswer {
    /// MAAS answered this pass's allocate with "no machine matches".
    Refused,
    /// The pass waited on an earlier refusal without asking MAAS.
    Waited,
    /// Anything else: an allocation, or no allocation asked for.
    Other,
}

/// What a pass did, for status, events and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// How it ended.
    pub end: PassEnd,
    /// The steps taken, in order, each with its outcome.
    pub steps: Vec<Step>,
    /// The machine as MAAS last described it.
    pub maas: MaasView,
}

impl PassReport {
    /// The names of the actions taken, in order.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.action.name()).collect()
    }

    /// The bootstrap format of the deployment this pass started.
    pub fn deployed_format(&self) -> Option<UserDataFormat> {
        self.steps.iter().find_map(|s| match s.outcome {
            StepOutcome::DeployStarted(format, _) => Some(format),
            _ => None,
        })
    }

    /// Why the bootstrap data was refused (position and version only, never content).
    pub fn bootstrap_problem(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match &s.outcome {
            StepOutcome::BootstrapRefused(problem) => Some(problem.as_str()),
            _ => None,
        })
    }

    /// What the wait's condition says beyond its reason: the bootstrap refusal, or MAAS's words
    /// on a refused deploy.
    pub fn wait_message(&self) -> Option<&str> {
        self.bootstrap_problem().or_else(|| {
            self.steps.iter().rev().find_map(|s| match &s.outcome {
                StepOutcome::DeployRefused(message) | StepOutcome::ReleaseRefused(message) => {
                    Some(message.as_str())
                }
                _ => None,
            })
        })
    }

    /// The GPU candidates MAAS refused to allocate in this pass (taken meanwhile).
    pub fn refused_candidates(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match &s.outcome {
                StepOutcome::CandidateRefused(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// How the pass stands to MAAS's capacity when the inventory offered `candidates` (GPU
    /// machines, read before the pass): an inventory with none is a refusal too, even though
    /// no allocate was sent.
    pub fn capacity_given(&self, candidates: Option<&[String]>) -> CapacityAnswer {
        match (self.capacity(), candidates) {
            (CapacityAnswer::Waited, Some([])) => CapacityAnswer::Refused,
            (answer, _) => answer,
        }
    }

    /// How the pass stands to MAAS's capacity: it asked and MAAS had no machine that matches
    /// (`Refused`), it waited on an earlier refusal without asking (`Waited`), or neither.
    pub fn capacity(&self) -> CapacityAnswer {
        let waiting = matches!(
            self.end,
            PassEnd::Waiting {
                reason: WaitReason::NoMachineAvailable,
                ..
            }
        );
        let asked = self
            .steps
            .iter()
            .any(|s| matches!(s.action, MachineAction::Allocate(_)));
        // MAAS said no to the allocate, to a GPU candidate, or gave only machines with too few
        // GPUs: all of them mean "nothing fits now", to be asked again after the retry delay.
        let refused = self.steps.iter().any(|s| {
            matches!(
                s.outcome,
                StepOutcome::NoMachineMatched
                    | StepOutcome::CandidateRefused(_)
                    | StepOutcome::SetAside(_)
            )
        });
        match (waiting, asked, refused) {
            (true, _, true) => CapacityAnswer::Refused,
            (true, false, _) => CapacityAnswer::Waited,
            _ => CapacityAnswer::Other,
        }
    }

    /// The machine this pass sent a power-on to, if it did.
    pub fn power_on_sent(&self) -> Option<String> {
        self.steps.iter().find_map(|s| match &s.action {
            MachineAction::PowerOn { system_id } => Some(system_id.clone()),
            _ => None,
        })
    }

    /// The MAAS status the recorded machine showed right after this pass's release, if it sent
    /// one that MAAS took.
    pub fn released_in_state(&self) -> Option<(String, i64)> {
        self.steps
            .iter()
            .rev()
            .find_map(|s| match (&s.action, &s.outcome) {
                (
                    MachineAction::Release { system_id, .. },
                    StepOutcome::Released(MaasView::Found(m)),
                ) => Some((system_id.clone(), m.status_code)),
                _ => None,
            })
    }
}

/// The client's release parameters for the erase options.
pub fn release_params(e: EraseOptions) -> ReleaseParams {
    e.release_params()
}

/// How to turn the bootstrap secret into deploy user data: the MaasMachine's choices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDataOptions {
    /// `spec.userDataFormat`.
    pub format_override: Option<String>,
    /// `spec.ignition`.
    pub ignition: IgnitionPatchOptions,
}

/// The machine the user data is patched for: host name and zone as MAAS reported them at
/// allocation, the zone chosen the same way as the provider ID's.
fn deploy_target(facts: &MachineFacts, system_id: &str) -> DeployTarget {
    match &facts.maas {
        MaasView::Found(m) => DeployTarget {
            system_id: system_id.to_string(),
            hostname: m.hostname.clone(),
            zone: machine_zone(facts, m),
        },
        _ => DeployTarget {
            system_id: system_id.to_string(),
            hostname: String::new(),
            zone: machine_zone(
                facts,
                &ObservedMachine {
                    system_id: system_id.to_string(),
                    ..Default::default()
                },
            ),
        },
    }
}

/// Runs one pass for a MaasMachine. `format_override` is `spec.userDataFormat`.
pub async fn run_machine_pass<M: MaasApi, S: MachineStore>(
    maas: &M,
    store: &S,
    facts: MachineFacts,
    format_override: Option<&str>,
) -> Result<PassReport, ReconcileError> {
    let options = UserDataOptions {
        format_override: format_override.map(str::to_string),
        ..Default::default()
    };
    run_machine_pass_with(maas, store, facts, &options).await
}

/// Runs one pass for a MaasMachine with its user-data options: decide, perform, absorb the
/// outcome, until an action ends the pass.
pub async fn run_machine_pass_with<M: MaasApi, S: MachineStore>(
    maas: &M,
    store: &S,
    mut facts: MachineFacts,
    options: &UserDataOptions,
) -> Result<PassReport, ReconcileError> {
    let mut steps = Vec::new();
    for _ in 0..MAX_STEPS {
        let action = decide_machine(&facts);
        debug!(step = action.name(), "machine step");
        let end = pass_end(&action);
        let outcome = match &end {
            Some(_) => StepOutcome::Ended,
            None if !store.may_act() => return Err(ReconcileError::NotLeader),
            None => perform(maas, store, &facts, options, &action).await?,
        };
        absorb(&mut facts, &outcome);
        let finalized = outcome == StepOutcome::FinalizerRemoved;
        steps.push(Step { action, outcome });
        if let Some(end) = end.or(finalized.then_some(PassEnd::Finalized)) {
            return Ok(PassReport {
                end,
                steps,
                maas: facts.maas,
            });
        }
    }
    Err(ReconcileError::TooManySteps(MAX_STEPS))
}

/// The end of the pass an action stands for, if it is one.
fn pass_end(action: &MachineAction) -> Option<PassEnd> {
    match action {
        MachineAction::Wait { reason, after } => Some(PassEnd::Waiting {
            reason: *reason,
            after: *after,
        }),
        MachineAction::Poll { reason, after } => Some(PassEnd::Waiting {
            reason: *reason,
            after: Some(*after),
        }),
        MachineAction::Ready(r) => Some(PassEnd::Ready(r.clone())),
        MachineAction::Fail { reason, message } => Some(PassEnd::Failed {
            reason: *reason,
            message: message.clone(),
        }),
        _ => None,
    }
}

/// Performs one action and reports what MAAS or the store answered; interpreting the answer is
/// [`absorb`]'s job.
async fn perform<M: MaasApi, S: MachineStore>(
    maas: &M,
    store: &S,
    facts: &MachineFacts,
    options: &UserDataOptions,
    action: &MachineAction,
) -> Result<StepOutcome, ReconcileError> {
    Ok(match action {
        MachineAction::Wait { .. }
        | MachineAction::Poll { .. }
        | MachineAction::Ready(_)
        | MachineAction::Fail { .. } => StepOutcome::Ended,
        MachineAction::RemoveFinalizer
        | MachineAction::MarkAttempt
        | MachineAction::RecordSystemId(_)
        | MachineAction::MarkReleaseIntent { .. }
        | MachineAction::Forget => store_step(store, action).await?,
        MachineAction::AdoptLookup { agent_name } => {
            pool::adopt_lookup(maas, facts, agent_name).await?
        }
        MachineAction::Allocate(request) => pool::allocate(maas, request).await?,
        MachineAction::SetOwnerData { system_id, data } => {
            StepOutcome::Observed(found_or_gone(maas.set_owner_data(system_id, data).await)?)
        }
        MachineAction::Deploy {
            system_id,
            distro_series,
            ephemeral,
            hwe_kernel,
            bootstrap_secret,
        } => {
            let deploy = DeployStep {
                system_id,
                distro_series: distro_series.clone(),
                ephemeral: *ephemeral,
                hwe_kernel: hwe_kernel.clone(),
                bootstrap_secret,
            };
            deploy.perform(maas, store, facts, options).await?
        }
        MachineAction::PowerOn { system_id } => {
            StepOutcome::PowerOnSent(found_or_gone(maas.power_on(system_id).await)?)
        }
        MachineAction::Read { system_id } => {
            StepOutcome::Observed(found_or_gone(maas.read_machine(system_id).await)?)
        }
        MachineAction::Release { system_id, erase } => release(maas, system_id, *erase).await?,
        MachineAction::ConfirmAgentName {
            system_id,
            agent_name,
        } => pool::confirm_agent_name(maas, system_id, agent_name).await?,
        MachineAction::ReleaseDuplicate { system_id, erase } => {
            found_or_gone(maas.release(system_id, &release_params(*erase)).await)?;
            warn!(%system_id, "released a second machine allocated under this object's agent name");
            StepOutcome::DuplicateReleased(system_id.clone())
        }
        MachineAction::Gpu(step) => gpu::perform(maas, store, facts, step).await?,
    })
}

/// Releases the recorded machine; a refusal (403, 409) is an outcome, not an error.
async fn release<M: MaasApi>(
    maas: &M,
    system_id: &str,
    erase: EraseOptions,
) -> Result<StepOutcome, ReconcileError> {
    match found_or_gone(maas.release(system_id, &release_params(erase)).await) {
        Ok(view) => {
            info!(%system_id, "released");
            Ok(StepOutcome::Released(view))
        }
        Err(ReconcileError::Maas(
            MaasError::Conflict { message, .. } | MaasError::Forbidden { message, .. },
        )) => {
            warn!(%system_id, %message, "MAAS refused the release");
            Ok(StepOutcome::ReleaseRefused(message))
        }
        Err(e) => Err(e),
    }
}

/// The durable Kubernetes writes of the pass: each returns once the write is stored, so the
/// next MAAS call can rely on it across a crash.
async fn store_step<S: MachineStore>(
    store: &S,
    action: &MachineAction,
) -> Result<StepOutcome, ReconcileError> {
    Ok(match action {
        MachineAction::RemoveFinalizer => {
            store.remove_finalizer().await?;
            StepOutcome::FinalizerRemoved
        }
        MachineAction::MarkAttempt => {
            store.mark_attempt().await?;
            StepOutcome::AttemptMarked
        }
        MachineAction::RecordSystemId(id) => {
            store.record_system_id(id).await?;
            StepOutcome::SystemIdRecorded(id.clone())
        }
        MachineAction::MarkReleaseIntent { failures } => {
            store.mark_release_intent(*failures).await?;
            StepOutcome::ReleaseIntentMarked(*failures)
        }
        MachineAction::Forget => {
            store.forget().await?;
            StepOutcome::Forgotten
        }
        other => {
            return Err(ReconcileError::Invalid(format!(
                "{} is not a store step",
                other.name()
            )));
        }
    })
}

/// A deploy: the bootstrap data read and prepared, then MAAS asked.
struct DeployStep<'a> {
    system_id: &'a str,
    distro_series: Option<String>,
    ephemeral: bool,
    hwe_kernel: Option<String>,
    bootstrap_secret: &'a str,
}

impl DeployStep<'_> {
    async fn perform<M: MaasApi, S: MachineStore>(
        self,
        maas: &M,
        store: &S,
        facts: &MachineFacts,
        options: &UserDataOptions,
    ) -> Result<StepOutcome, ReconcileError> {
        let system_id = self.system_id;
        let data = store.bootstrap_data(self.bootstrap_secret).await?;
        let format = detect_format(
            options.format_override.as_deref(),
            data.format.as_deref(),
            &data.value,
        );
        let target = deploy_target(facts, system_id);
        let user_data = match prepare_user_data(format, &data.value, &target, &options.ignition) {
            Ok(user_data) => user_data,
            Err(e) => {
                warn!(%system_id, error = %e, "bootstrap data refused, not deploying");
                return Ok(StepOutcome::BootstrapRefused(e.to_string()));
            }
        };
        let params = DeployParams {
            distro_series: self.distro_series,
            user_data: Some(user_data),
            ephemeral_deploy: self.ephemeral,
            hwe_kernel: self.hwe_kernel,
            ..Default::default()
        };
        match maas.deploy(system_id, &params).await {
            Ok(m) => {
                info!(%system_id, format = format.as_str(), "deploy started");
                Ok(StepOutcome::DeployStarted(format, observe(&m)))
            }
            Err(MaasError::Conflict { message, .. }) => Ok(StepOutcome::DeployRefused(message)),
            Err(e @ MaasError::NotFound { .. }) => {
                debug!(error = %e, "machine gone at deploy");
                Ok(StepOutcome::Observed(MaasView::NotFound))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A machine answer, with 404 folded into the view instead of an error.
fn found_or_gone(
    result: Result<maas_client::Machine, MaasError>,
) -> Result<MaasView, ReconcileError> {
    match result {
        Ok(m) => Ok(MaasView::Found(observe(&m))),
        Err(MaasError::NotFound { .. }) => Ok(MaasView::NotFound),
        Err(e) => Err(e.into()),
    }
}
