//! What a MaasMachine waiting for capacity tells its user: how many of MAAS's Ready machines
//! meet each of its constraints on its own, so the one constraint no machine meets is visible.
//! Read from the endpoint's shared inventory after a fresh refusal only; a pass that waits on an
//! earlier refusal keeps the words already written, at no MAAS call.

use std::time::Duration;

use capmaas_api::condition::find_condition;
use capmaas_api::condition_names::types;
use capmaas_api::{MaasMachine, MaasMachineStatus};
use maas_client::MaasClient;
use tracing::debug;

use crate::domain::inventory::{Wanted, waiting_message};
use crate::domain::reasons::WaitReason;
use crate::maas::inventory::EndpointInventory;
use crate::machine::decide::MachineAction;
use crate::machine::facts::requirements;
use crate::machine::steps::{CapacityAnswer, PassReport};

/// How old the shared list of Ready machines may be when a refusal is explained: recent enough
/// to show what MAAS just refused, old enough that many machines refused at once share a read.
pub const REFUSAL_INVENTORY_AGE: Duration = Duration::from_secs(10);

/// The words for this pass's capacity wait, if it is one.
pub async fn capacity_note(
    obj: &MaasMachine,
    report: &PassReport,
    maas: Option<&MaasClient>,
    inventory: Option<&EndpointInventory>,
) -> Option<String> {
    match report.capacity() {
        CapacityAnswer::Refused => {
            let (maas, inventory) = (maas?, inventory?);
            fresh_note(obj, report, maas, inventory).await
        }
        CapacityAnswer::Waited => earlier_note(obj.status.as_ref()),
        CapacityAnswer::Other => None,
    }
}

async fn fresh_note(
    obj: &MaasMachine,
    report: &PassReport,
    maas: &MaasClient,
    inventory: &EndpointInventory,
) -> Option<String> {
    let req = requirements(&obj.spec);
    let zone = report.steps.iter().rev().find_map(|s| match &s.action {
        MachineAction::Allocate(r) => Some(r.zone.clone()),
        _ => None,
    })?;
    // GPUs on their own are counted over every Ready machine; each machine's devices are read
    // once and kept (see the inventory).
    let wants_gpus = |_: &_| req.gpu.is_some();
    match inventory
        .ready_machines(maas, REFUSAL_INVENTORY_AGE, wants_gpus)
        .await
    {
        Ok((machines, reads)) => {
            debug!(
                lists = reads.lists,
                devices = reads.devices,
                "capacity explained"
            );
            let wanted = Wanted {
                req: &req,
                zone: zone.as_deref(),
            };
            Some(waiting_message(&wanted, &machines))
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
