//! Runs the MaasMachine decisions against MAAS and a store for the Kubernetes side.
//!
//! One pass: decide, perform the step, fold its result into the facts, decide again, until a
//! step ends the pass. The Kubernetes writes go through [`MachineStore`] so this loop is tested
//! against the MAAS simulator with an in-memory store, and the reconciler supplies the real one.

use std::future::Future;
use std::time::Duration;

use maas_client::{AllocateParams, DeployParams, MaasApi, MaasError, MachineFilter, ReleaseParams};
use tracing::{debug, info, warn};

use crate::domain::allocation::AllocateRequest;
use crate::domain::ignition::{DeployTarget, IgnitionPatchOptions, prepare_user_data};
use crate::domain::maas_machine::ObservedMachine;
use crate::domain::maas_machine::Ownership;
use crate::domain::observe::observe;
use crate::domain::reasons::FailReason;
use crate::domain::reasons::WaitReason;
use crate::domain::timing::{DeployFailures, NO_CAPACITY_RETRY};
use crate::domain::user_data::{UserDataFormat, detect_format};
use crate::machine::decide::MaasView;
use crate::machine::decide::MachineAction;
use crate::machine::decide::MachineFacts;
use crate::machine::decide::ReadyMachine;
use crate::machine::decide::decide_machine;
use crate::machine::decide::{EraseOptions, machine_zone};
use crate::machine::source::gpu::{MAX_GPU_REJECTIONS, matching_gpus};
use crate::runtime::error::ReconcileError;

/// Upper bound on steps in one pass; the longest legitimate sequence (adopt, record, owner data,
/// deploy, ready) is far below it.
pub const MAX_STEPS: usize = 32;

/// Bootstrap data read from the Machine's data secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapData {
    /// The `value` key.
    pub value: Vec<u8>,
    /// The `format` key, when present.
    pub format: Option<String>,
}

impl std::fmt::Debug for BootstrapData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bootstrap data holds join tokens: never print it.
        f.debug_struct("BootstrapData")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("format", &self.format)
            .finish()
    }
}

/// The Kubernetes writes and reads a MaasMachine pass needs. Each write must be durable when it
/// returns: the next MAAS call relies on it across a crash.
pub trait MachineStore: Send + Sync {
    /// Add the allocation-attempt annotation.
    fn mark_attempt(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Record `spec.systemID`.
    fn record_system_id(
        &self,
        system_id: &str,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Add the release-intent annotation and, when given, the failure record.
    fn mark_release_intent(
        &self,
        failures: Option<DeployFailures>,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Clear systemID, providerID and the attempt and intent annotations.
    fn forget(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Read the bootstrap data secret.
    fn bootstrap_data(
        &self,
        secret: &str,
    ) -> impl Future<Output = Result<BootstrapData, ReconcileError>> + Send;
    /// Drop the finalizer.
    fn remove_finalizer(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Write the list of machines set aside for too few GPUs and, when `clear_system_id`,
    /// clear `spec.systemID` in the same write. Stores that never see GPU requests may keep the
    /// default, which refuses.
    fn set_gpu_rejected(
        &self,
        rejected: &[String],
        clear_system_id: bool,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send {
        let _ = (rejected, clear_system_id);
        async {
            Err(ReconcileError::Invalid(
                "this store cannot record machines set aside for GPUs".into(),
            ))
        }
    }
}

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

/// What a pass did, for status, events and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// How it ended.
    pub end: PassEnd,
    /// The steps taken, by name, in order.
    pub steps: Vec<&'static str>,
    /// The machine as MAAS last described it.
    pub maas: MaasView,
    /// The bootstrap format used when the pass deployed.
    pub deployed_format: Option<UserDataFormat>,
    /// Why the bootstrap data was refused (position and version only, never content).
    pub bootstrap_problem: Option<String>,
}

/// The name of a step, for logs, events and tests.
pub fn step_name(action: &MachineAction) -> &'static str {
    match action {
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

fn release_params(e: EraseOptions) -> ReleaseParams {
    ReleaseParams {
        erase: e.erase || e.quick_erase || e.secure_erase,
        quick_erase: e.quick_erase,
        secure_erase: e.secure_erase,
        ..Default::default()
    }
}

/// How to turn the bootstrap secret into deploy user data: the MaasMachine's choices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDataOptions {
    /// `spec.userDataFormat`.
    pub format_override: Option<String>,
    /// `spec.ignition`.
    pub ignition: IgnitionPatchOptions,
}

/// A malformed secret is read again after this long (a fix to the Secret also wakes the
/// machine earlier through the Secret watch).
pub const INVALID_BOOTSTRAP_RETRY: Duration = Duration::from_secs(120);

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

/// Runs one pass for a MaasMachine with its user-data options.
pub async fn run_machine_pass_with<M: MaasApi, S: MachineStore>(
    maas: &M,
    store: &S,
    mut facts: MachineFacts,
    options: &UserDataOptions,
) -> Result<PassReport, ReconcileError> {
    let mut steps = Vec::new();
    let mut deployed_format = None;
    let mut bootstrap_problem = None;
    let mut deploy_conflicts = 0;
    if facts.gpu.rejected.len() >= MAX_GPU_REJECTIONS {
        facts.gpu.exhausted = true;
    }
    for _ in 0..MAX_STEPS {
        let action = decide_machine(&facts);
        steps.push(step_name(&action));
        debug!(step = step_name(&action), "machine step");
        let end = match action {
            MachineAction::Wait { reason, after } => Some(PassEnd::Waiting { reason, after }),
            MachineAction::Poll { reason, after } => Some(PassEnd::Waiting {
                reason,
                after: Some(after),
            }),
            MachineAction::Ready(r) => Some(PassEnd::Ready(r)),
            MachineAction::Fail { reason, message } => Some(PassEnd::Failed { reason, message }),
            MachineAction::RemoveFinalizer => {
                store.remove_finalizer().await?;
                Some(PassEnd::Finalized)
            }
            MachineAction::MarkAttempt => {
                store.mark_attempt().await?;
                facts.attempt_marked = true;
                // Nothing can have been allocated under this mark yet: no lookup needed.
                facts.maas = MaasView::NotFound;
                None
            }
            MachineAction::AdoptLookup { agent_name } => {
                let filter = MachineFilter {
                    agent_name: Some(agent_name),
                    ..Default::default()
                };
                let found = maas.list_machines(&filter).await?;
                // Machines set aside for too few GPUs carry our agent name too: never adopt them.
                let held = found
                    .iter()
                    .map(observe)
                    .find(|m| m.phase().is_held() && !facts.gpu.rejected.contains(&m.system_id));
                if let Some(m) = &held {
                    info!(system_id = %m.system_id, "adopting a machine allocated by an earlier attempt");
                }
                facts.maas = held.map_or(MaasView::NotFound, MaasView::Found);
                None
            }
            MachineAction::Allocate(request) => {
                match maas.allocate(&allocate_params(&request)).await {
                    Ok(m) => {
                        info!(system_id = %m.system_id, "allocated");
                        facts.maas = MaasView::Found(observe(&m));
                        None
                    }
                    // Nothing left to try after setting machines aside: give them back and fail.
                    Err(MaasError::Conflict { .. }) if !facts.gpu.rejected.is_empty() => {
                        facts.gpu.exhausted = true;
                        None
                    }
                    Err(MaasError::Conflict { .. }) => Some(PassEnd::Waiting {
                        reason: WaitReason::NoMachineAvailable,
                        after: Some(NO_CAPACITY_RETRY),
                    }),
                    Err(e) => return Err(e.into()),
                }
            }
            MachineAction::RecordSystemId(id) => {
                store.record_system_id(&id).await?;
                facts.system_id = Some(id);
                None
            }
            MachineAction::SetOwnerData { system_id, data } => {
                facts.maas = found_or_gone(maas.set_owner_data(&system_id, &data).await)?;
                None
            }
            MachineAction::Deploy {
                system_id,
                distro_series,
                ephemeral,
                bootstrap_secret,
            } => {
                let data = store.bootstrap_data(&bootstrap_secret).await?;
                let format = detect_format(
                    options.format_override.as_deref(),
                    data.format.as_deref(),
                    &data.value,
                );
                let target = deploy_target(&facts, &system_id);
                let user_data =
                    match prepare_user_data(format, &data.value, &target, &options.ignition) {
                        Ok(user_data) => user_data,
                        Err(e) => {
                            warn!(%system_id, error = %e, "bootstrap data refused, not deploying");
                            bootstrap_problem = Some(e.to_string());
                            return Ok(PassReport {
                                end: PassEnd::Waiting {
                                    reason: WaitReason::InvalidBootstrapData,
                                    after: Some(INVALID_BOOTSTRAP_RETRY),
                                },
                                steps,
                                maas: facts.maas,
                                deployed_format,
                                bootstrap_problem,
                            });
                        }
                    };
                let params = DeployParams {
                    distro_series,
                    user_data: Some(user_data),
                    ephemeral_deploy: ephemeral,
                    ..Default::default()
                };
                match maas.deploy(&system_id, &params).await {
                    Ok(m) => {
                        info!(%system_id, format = format.as_str(), "deploy started");
                        deployed_format = Some(format);
                        facts.maas = MaasView::Found(observe(&m));
                    }
                    // An earlier deploy whose answer was lost: look at the machine again.
                    Err(MaasError::Conflict { .. }) if deploy_conflicts == 0 => {
                        deploy_conflicts += 1;
                        facts.maas = MaasView::Unread;
                    }
                    Err(e @ MaasError::NotFound { .. }) => {
                        debug!(error = %e, "machine gone at deploy");
                        facts.maas = MaasView::NotFound;
                    }
                    Err(e) => return Err(e.into()),
                }
                None
            }
            MachineAction::PowerOn { system_id } => {
                facts.maas = found_or_gone(maas.power_on(&system_id).await)?;
                Some(PassEnd::Waiting {
                    reason: WaitReason::PoweringOn,
                    after: Some(Duration::from_secs(10)),
                })
            }
            MachineAction::Read { system_id } => {
                facts.maas = found_or_gone(maas.read_machine(&system_id).await)?;
                None
            }
            MachineAction::MarkReleaseIntent { failures } => {
                store.mark_release_intent(failures).await?;
                facts.release_intent = true;
                facts.intent_marked_this_pass = true;
                if let Some(f) = failures {
                    facts.failures = f;
                }
                None
            }
            MachineAction::Release { system_id, erase } => {
                facts.maas = found_or_gone(maas.release(&system_id, &release_params(erase)).await)?;
                info!(%system_id, "released");
                None
            }
            MachineAction::CountGpus { system_id } => {
                let devices = maas.node_devices(&system_id, Some("gpu")).await?;
                let n = matching_gpus(
                    facts.requirements.gpu.as_ref(),
                    devices
                        .iter()
                        .map(|d| (d.vendor_id.as_str(), d.product_name.as_str())),
                );
                facts.gpu.count = Some(n);
                None
            }
            MachineAction::RejectForGpus {
                system_id,
                found,
                wanted,
            } => {
                let mut rejected = facts.gpu.rejected.clone();
                rejected.push(system_id.clone());
                store.set_gpu_rejected(&rejected, true).await?;
                info!(%system_id, found, wanted, "set aside a machine with too few GPUs");
                facts.gpu.exhausted |= rejected.len() >= MAX_GPU_REJECTIONS;
                facts.gpu.rejected = rejected;
                facts.gpu.count = None;
                facts.system_id = None;
                // Nothing else was allocated under this attempt: allocate again directly.
                facts.maas = MaasView::NotFound;
                None
            }
            MachineAction::ReadRejected { system_id } => {
                let ours = match maas.read_machine(&system_id).await {
                    Ok(m) => {
                        let m = observe(&m);
                        m.phase().is_held()
                            && m.ownership(&facts.uid, &facts.namespace, &facts.name)
                                == Ownership::Ours
                    }
                    Err(MaasError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                };
                facts.gpu.first_rejected_held = Some((system_id, ours));
                None
            }
            MachineAction::ReleaseRejected { system_id, erase } => {
                match maas.release(&system_id, &release_params(erase)).await {
                    Ok(_) | Err(MaasError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                info!(%system_id, "released a machine set aside for too few GPUs");
                drop_rejected(store, &mut facts, &system_id).await?;
                None
            }
            MachineAction::DropRejected { system_id } => {
                drop_rejected(store, &mut facts, &system_id).await?;
                None
            }
            MachineAction::Forget => {
                store.forget().await?;
                facts.system_id = None;
                facts.attempt_marked = false;
                facts.release_intent = false;
                facts.maas = MaasView::Unread;
                None
            }
        };
        if let Some(end) = end {
            return Ok(PassReport {
                end,
                steps,
                maas: facts.maas,
                deployed_format,
                bootstrap_problem,
            });
        }
    }
    Err(ReconcileError::TooManySteps(MAX_STEPS))
}

/// Removes a set-aside machine from the list, durably, then from the facts.
async fn drop_rejected<S: MachineStore>(
    store: &S,
    facts: &mut MachineFacts,
    system_id: &str,
) -> Result<(), ReconcileError> {
    let rest: Vec<String> = facts
        .gpu
        .rejected
        .iter()
        .filter(|id| *id != system_id)
        .cloned()
        .collect();
    store.set_gpu_rejected(&rest, false).await?;
    facts.gpu.rejected = rest;
    facts.gpu.first_rejected_held = None;
    Ok(())
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
