//! GPU counts. MAAS's allocate `devices` constraint only asks that one matching device exists, so
//! a request for several GPUs is checked after allocation with the node devices API. A machine
//! with too few is set aside, still allocated to us so MAAS cannot hand it out again, and the
//! allocation is retried; once a machine with enough GPUs is found (or none is left, or the
//! budget of rejections is spent) the set-aside machines are released.

use crate::domain::allocation::{GpuRequest, MachineRequirements, pci_vendor_id};
use crate::domain::reasons::WaitReason;
use maas_client::{MaasApi, MaasError};
use tracing::info;

use crate::domain::maas_machine::Ownership;
use crate::domain::observe::observe;
use crate::machine::decide::{EraseOptions, MachineAction, MachineFacts};
use crate::machine::outcome::StepOutcome;
use crate::machine::steps::release_params;
use crate::machine::store::MachineStore;
use crate::runtime::error::ReconcileError;

/// Annotation listing the system ids set aside for too few GPUs, comma-separated: durable across
/// restarts (the machines stay allocated until released from this list) and never pruned.
pub const GPU_REJECTED: &str = "infrastructure.cluster.x-k8s.io/maas-gpu-rejected";

/// How many machines one MaasMachine may set aside before giving up.
pub const MAX_GPU_REJECTIONS: usize = 3;

/// The object's side of the GPU search: the machines set aside (the annotation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuFacts {
    /// Machines set aside (the annotation), oldest first.
    pub rejected: Vec<String>,
    /// Ready machines with enough matching GPUs in the endpoint's inventory, smallest first,
    /// when the pass read it (a spec asking for more than one GPU, nothing recorded yet).
    pub candidates: Option<Vec<String>>,
}

/// What a pass learnt of the GPU search so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuNotes {
    /// GPUs the recorded machine carries, when counted in this pass.
    pub count: Option<u32>,
    /// No further machine will be tried in this pass (MAAS has none left, or the budget is
    /// spent): release the set-aside machines and fail.
    pub exhausted: bool,
    /// The first set-aside machine as read in this pass: its id and whether it is still ours
    /// and held (so releasing it cannot touch someone else's machine).
    pub first_rejected_held: Option<(String, bool)>,
    /// Candidates MAAS refused to allocate in this pass (taken meanwhile).
    pub tried: Vec<String>,
}

impl GpuFacts {
    /// Facts from the annotation value.
    pub fn from_annotation(value: Option<&str>) -> Self {
        Self {
            rejected: parse_rejected(value),
            candidates: None,
        }
    }
}

/// The system ids in the annotation value.
pub fn parse_rejected(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The annotation value for a list; `None` removes the annotation.
pub fn render_rejected(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| ids.join(","))
}

/// The GPU count to check after allocation: only for more than one GPU (for one, the allocate
/// constraint already guarantees it).
pub fn count_to_check(req: &MachineRequirements) -> Option<u32> {
    req.gpu
        .as_ref()
        .and_then(|g| g.min_count)
        .filter(|n| *n > 1)
}

/// How many of a machine's GPUs (vendor id, product name) satisfy the request: the vendor and
/// the product (a substring, as MAAS matches it) when given.
pub fn matching_gpus<'a>(
    gpu: Option<&GpuRequest>,
    devices: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u32 {
    let vendor = gpu
        .and_then(|g| g.vendor.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(pci_vendor_id);
    let product = gpu
        .and_then(|g| g.product.as_deref())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_lowercase);
    let n = devices
        .into_iter()
        .filter(|(v, p)| {
            vendor
                .as_deref()
                .is_none_or(|want| v.eq_ignore_ascii_case(want))
                && product
                    .as_deref()
                    .is_none_or(|want| p.to_ascii_lowercase().contains(want))
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A step of the GPU search.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuAction {
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

impl GpuAction {
    /// The step's name, for logs, events and tests.
    pub fn name(&self) -> &'static str {
        match self {
            GpuAction::CountGpus { .. } => "CountGpus",
            GpuAction::RejectForGpus { .. } => "RejectForGpus",
            GpuAction::ReadRejected { .. } => "ReadRejected",
            GpuAction::ReleaseRejected { .. } => "ReleaseRejected",
            GpuAction::DropRejected { .. } => "DropRejected",
        }
    }
}

/// The GPU step for an allocated machine before its deploy: count its GPUs, set it aside when
/// short, or give back the machines set aside once this one has enough. `None` when the search
/// has nothing left to do.
pub fn after_allocation(f: &MachineFacts, id: &str) -> Option<MachineAction> {
    if let Some(wanted) = count_to_check(&f.requirements) {
        match f.pass.gpu.count {
            None => {
                return Some(MachineAction::Gpu(GpuAction::CountGpus {
                    system_id: id.to_string(),
                }));
            }
            Some(found) if found < wanted => {
                return Some(MachineAction::Gpu(GpuAction::RejectForGpus {
                    system_id: id.to_string(),
                    found,
                    wanted,
                }));
            }
            Some(_) => {}
        }
    }
    // A machine with enough GPUs is ours: the ones set aside go back before the deploy.
    (!f.gpu.rejected.is_empty()).then(|| release_rejected(f))
}

/// The step once the search is over (MAAS has nothing left, or the budget is spent): give the
/// set-aside machines back, then wait for capacity as any allocation MAAS refused does (a
/// failure would only have Cluster API replace the object and search again at once). `None`
/// while the search goes on.
pub fn search_over(f: &MachineFacts) -> Option<MachineAction> {
    if !(f.pass.gpu.exhausted || f.gpu.rejected.len() >= MAX_GPU_REJECTIONS) {
        return None;
    }
    if !f.gpu.rejected.is_empty() {
        return Some(release_rejected(f));
    }
    Some(no_candidate_left())
}

/// The inventory's candidates not yet refused or set aside, when the inventory was read for a
/// spec asking for several GPUs.
pub fn candidates_left(f: &MachineFacts) -> Option<Vec<String>> {
    count_to_check(&f.requirements)?;
    let candidates = f.gpu.candidates.as_ref()?;
    Some(
        candidates
            .iter()
            .filter(|c| !f.pass.gpu.tried.contains(c) && !f.gpu.rejected.contains(c))
            .cloned()
            .collect(),
    )
}

/// No machine with enough GPUs is free: wait, and ask again after the capacity retry delay.
pub fn no_candidate_left() -> MachineAction {
    MachineAction::Wait {
        reason: WaitReason::NoMachineAvailable,
        after: Some(crate::domain::timing::NO_CAPACITY_RETRY),
    }
}

/// The next step in releasing the machines set aside for too few GPUs, oldest first: read it,
/// then release it when it is still ours and held, else just drop it from the list.
pub fn release_rejected(f: &MachineFacts) -> MachineAction {
    let Some(first) = f.gpu.rejected.first() else {
        return MachineAction::Wait {
            reason: WaitReason::NoMachineAvailable,
            after: None,
        };
    };
    match &f.pass.gpu.first_rejected_held {
        Some((id, true)) if id == first => MachineAction::Gpu(GpuAction::ReleaseRejected {
            system_id: first.clone(),
            erase: f.erase,
        }),
        Some((id, false)) if id == first => MachineAction::Gpu(GpuAction::DropRejected {
            system_id: first.clone(),
        }),
        _ => MachineAction::Gpu(GpuAction::ReadRejected {
            system_id: first.clone(),
        }),
    }
}

/// Performs a step of the GPU search and reports what MAAS or the store answered.
pub async fn perform<M: MaasApi, S: MachineStore>(
    maas: &M,
    store: &S,
    facts: &MachineFacts,
    action: &GpuAction,
) -> Result<StepOutcome, ReconcileError> {
    Ok(match action {
        GpuAction::CountGpus { system_id } => {
            let devices = maas.node_devices(system_id, Some("gpu")).await?;
            StepOutcome::GpusCounted(matching_gpus(
                facts.requirements.gpu.as_ref(),
                devices
                    .iter()
                    .map(|d| (d.vendor_id.as_str(), d.product_name.as_str())),
            ))
        }
        GpuAction::RejectForGpus {
            system_id,
            found,
            wanted,
        } => {
            let mut rejected = facts.gpu.rejected.clone();
            rejected.push(system_id.clone());
            store.set_gpu_rejected(&rejected, true).await?;
            info!(%system_id, found, wanted, "set aside a machine with too few GPUs");
            StepOutcome::SetAside(rejected)
        }
        GpuAction::ReadRejected { system_id } => {
            let ours = match maas.read_machine(system_id).await {
                Ok(m) => {
                    let m = observe(&m);
                    m.phase().is_held()
                        && m.ownership(&facts.uid, &facts.namespace, &facts.name) == Ownership::Ours
                }
                Err(MaasError::NotFound { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            StepOutcome::SetAsideRead(system_id.clone(), ours)
        }
        GpuAction::ReleaseRejected { system_id, erase } => {
            match maas.release(system_id, &release_params(*erase)).await {
                Ok(_) | Err(MaasError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            info!(%system_id, "released a machine set aside for too few GPUs");
            drop_rejected(store, facts, system_id).await?
        }
        GpuAction::DropRejected { system_id } => drop_rejected(store, facts, system_id).await?,
    })
}

/// Removes a set-aside machine from the list, durably.
async fn drop_rejected<S: MachineStore>(
    store: &S,
    facts: &MachineFacts,
    system_id: &str,
) -> Result<StepOutcome, ReconcileError> {
    let rest: Vec<String> = facts
        .gpu
        .rejected
        .iter()
        .filter(|id| *id != system_id)
        .cloned()
        .collect();
    store.set_gpu_rejected(&rest, false).await?;
    Ok(StepOutcome::SetAsideDropped(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_round_trip() {
        let ids = parse_rejected(Some(" a1, b2,,c3 "));
        assert_eq!(ids, ["a1", "b2", "c3"]);
        assert_eq!(render_rejected(&ids).as_deref(), Some("a1,b2,c3"));
        assert_eq!(render_rejected(&[]), None);
        assert!(parse_rejected(None).is_empty());
    }

    #[test]
    fn only_several_gpus_need_a_count() {
        let mut req = MachineRequirements::default();
        assert_eq!(count_to_check(&req), None);
        req.gpu = Some(GpuRequest {
            min_count: Some(1),
            ..Default::default()
        });
        assert_eq!(count_to_check(&req), None);
        req.gpu = Some(GpuRequest {
            min_count: Some(4),
            ..Default::default()
        });
        assert_eq!(count_to_check(&req), Some(4));
    }

    #[test]
    fn gpus_are_counted_by_vendor_and_product() {
        let devices = [
            ("10de", "GA100 [A100 SXM4 40GB]"),
            ("10de", "GA100 [A100 SXM4 40GB]"),
            ("10de", "TU104GL [Tesla T4]"),
            ("1002", "Instinct MI210"),
        ];
        let req = |vendor: Option<&str>, product: Option<&str>| GpuRequest {
            vendor: vendor.map(str::to_string),
            product: product.map(str::to_string),
            min_count: Some(2),
        };
        assert_eq!(matching_gpus(None, devices), 4);
        assert_eq!(matching_gpus(Some(&req(Some("nvidia"), None)), devices), 3);
        assert_eq!(
            matching_gpus(Some(&req(Some("nvidia"), Some("a100"))), devices),
            2
        );
        assert_eq!(matching_gpus(Some(&req(Some("amd"), None)), devices), 1);
        assert_eq!(matching_gpus(Some(&req(Some("intel"), None)), devices), 0);
    }
}
