//! A MaasMachine's view of what MAAS has free, from the endpoint's shared inventory: the GPU
//! candidates an allocation asking for several GPUs picks from, and the words of a capacity
//! wait, which count how many Ready machines meet each constraint on its own so the one
//! constraint no machine meets is visible. A pass that waits on an earlier refusal keeps the
//! words already written.

use std::time::Duration;

use capmaas_api::condition::find_condition;
use capmaas_api::condition_names::types;
use capmaas_api::{MaasMachine, MaasMachineStatus};
use maas_client::MaasClient;
use tracing::debug;

use crate::domain::allocation::allocate_request;
use crate::domain::inventory::{Constraint, InventoryMachine, Wanted, waiting_message};
use crate::domain::reasons::WaitReason;
use crate::maas::inventory::EndpointInventory;
use crate::machine::decide::MachineFacts;
use crate::machine::facts::requirements;
use crate::machine::source::gpu::count_to_check;
use crate::machine::steps::{CapacityAnswer, PassReport};

/// How old the shared list of Ready machines may be when an allocation reads it: recent enough
/// to show what MAAS just refused, old enough that many machines asking at once share a read.
pub const REFUSAL_INVENTORY_AGE: Duration = Duration::from_secs(10);

/// How old the list may be when a refusal is explained: MAAS said no a moment ago, and a list
/// from before another allocation would count a machine that is gone. Refusals come at most once
/// a minute per object, and those at the same moment still share a read.
pub const NOTE_INVENTORY_AGE: Duration = Duration::from_secs(2);

/// The zone this MaasMachine's allocate names.
pub fn allocation_zone(f: &MachineFacts) -> Option<String> {
    let machine_zone = f.owner.as_ref().and_then(|o| o.failure_domain.as_deref());
    allocate_request(
        &f.requirements,
        machine_zone,
        f.default_zone.as_deref(),
        &f.uid,
        &f.namespace,
        &f.name,
    )
    .zone
}

/// Fills the GPU candidates of a pass that may allocate for several GPUs: the inventory's
/// Ready machines meeting every constraint, smallest first. Left unread (the search by set-aside
/// then applies) when MAAS cannot be listed.
pub async fn read_gpu_candidates(
    f: &mut MachineFacts,
    maas: Option<&MaasClient>,
    inventory: Option<&EndpointInventory>,
) {
    let (Some(maas), Some(inventory)) = (maas, inventory) else {
        return;
    };
    let refused_lately = f
        .capacity_refused_for
        .is_some_and(|since| since < crate::domain::timing::NO_CAPACITY_RETRY);
    if f.system_id.is_some()
        || f.deleting
        || refused_lately
        || count_to_check(&f.requirements).is_none()
    {
        return;
    }
    let zone = allocation_zone(f);
    let wanted = Wanted {
        req: &f.requirements,
        zone: zone.as_deref(),
    };
    let others = |m: &InventoryMachine| {
        Constraint::ALL
            .iter()
            .filter(|c| **c != Constraint::Gpus)
            .all(|c| wanted.meets(*c, m))
    };
    match inventory
        .ready_machines(maas, REFUSAL_INVENTORY_AGE, others)
        .await
    {
        Ok((mut machines, _)) => {
            let gpu = wanted.req.gpu.as_ref();
            machines.retain(|m| wanted.accepts(m));
            machines.sort_by_key(|m| (m.gpu_count(gpu), m.cpu_count, m.memory_mib, m.storage_gb));
            f.gpu.candidates = Some(machines.into_iter().map(|m| m.system_id).collect());
        }
        Err(error) => debug!(%error, "GPU candidates unread; MAAS picks and the count checks"),
    }
}

/// How a pass stood to MAAS's capacity, the zone its allocate names, and what the condition
/// said after the refusal it waits on (this manager's memory of it).
#[derive(Clone, Debug)]
pub struct CapacityView<'a> {
    /// Refused now, waiting on an earlier refusal, or neither.
    pub answer: CapacityAnswer,
    /// The allocation's zone.
    pub zone: Option<&'a str>,
    /// The note written after that refusal.
    pub remembered: Option<String>,
}

/// The words for this pass's capacity wait, if it is one.
pub async fn capacity_note(
    obj: &MaasMachine,
    report: &PassReport,
    capacity: CapacityView<'_>,
    maas: Option<&MaasClient>,
    inventory: Option<&EndpointInventory>,
) -> Option<String> {
    let taken = report.refused_candidates();
    match capacity.answer {
        CapacityAnswer::Refused => fresh_note(obj, capacity.zone, &taken, maas?, inventory?).await,
        // No MAAS read: the words of the refusal waited on stay as they were written.
        CapacityAnswer::Waited => capacity
            .remembered
            .or_else(|| earlier_note(obj.status.as_ref())),
        CapacityAnswer::Other => None,
    }
}

/// The note from the shared list, without the machines MAAS just refused as taken (the list
/// may predate their allocation by seconds).
async fn fresh_note(
    obj: &MaasMachine,
    zone: Option<&str>,
    taken: &[String],
    maas: &MaasClient,
    inventory: &EndpointInventory,
) -> Option<String> {
    let req = requirements(&obj.spec);
    // GPUs on their own are counted over every Ready machine; each machine's devices are read
    // once and kept (see the inventory).
    let wants_gpus = |_: &_| req.gpu.is_some();
    match inventory
        .ready_machines(maas, NOTE_INVENTORY_AGE, wants_gpus)
        .await
    {
        Ok((mut machines, reads)) => {
            machines.retain(|m| !taken.contains(&m.system_id));
            debug!(
                lists = reads.lists,
                devices = reads.devices,
                "capacity explained"
            );
            Some(waiting_message(&Wanted { req: &req, zone }, &machines))
        }
        Err(error) => {
            debug!(%error, "cannot read MAAS's Ready machines to explain the wait");
            None
        }
    }
}

/// The message of the capacity wait already on the object.
pub fn earlier_note(status: Option<&MaasMachineStatus>) -> Option<String> {
    let condition = find_condition(&status?.conditions, types::READY)?;
    (condition.reason.as_deref() == Some(WaitReason::NoMachineAvailable.as_str()))
        .then(|| condition.message.clone())
        .flatten()
        .filter(|m| !m.is_empty())
}
