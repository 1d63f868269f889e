//! The shared inventory of one MAAS endpoint: its Ready machines, read at most once per
//! [`INVENTORY_MAX_AGE`] whatever the number of templates and waiting MaasMachines asking, and
//! their GPUs, read from the node devices API once per machine per [`DEVICES_MAX_AGE`] and only
//! for machines a caller looks at (GPU hardware changes only when a machine is commissioned
//! again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maas_client::{MaasApi, MaasError, MachineFilter, MachineStatus};
use tokio::sync::Mutex;

use crate::domain::inventory::{InventoryGpu, InventoryMachine};

/// How old the list of Ready machines may be before a caller reads MAAS again.
pub const INVENTORY_MAX_AGE: Duration = Duration::from_secs(60);

/// How long one machine's GPU list is reused.
pub const DEVICES_MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct State {
    ready: Option<(Instant, Arc<Vec<InventoryMachine>>)>,
    gpus: HashMap<String, (Instant, Vec<InventoryGpu>)>,
}

/// One endpoint's inventory. Callers are served one at a time, so concurrent callers share one
/// read instead of each sending its own.
#[derive(Default)]
pub struct EndpointInventory {
    state: Mutex<State>,
}

/// What one call cost, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InventoryReads {
    /// Machine lists read (0 or 1).
    pub lists: usize,
    /// Node device lists read.
    pub devices: usize,
}

impl EndpointInventory {
    /// The Ready machines as listed at most `max_age` ago, with GPUs filled in for every
    /// machine `wants_gpus` accepts (and for any whose GPUs are already known).
    pub async fn ready_machines<M: MaasApi>(
        &self,
        maas: &M,
        max_age: Duration,
        wants_gpus: impl Fn(&InventoryMachine) -> bool,
    ) -> Result<(Vec<InventoryMachine>, InventoryReads), MaasError> {
        let mut state = self.state.lock().await;
        let mut reads = InventoryReads::default();
        let now = Instant::now();
        let listed = match &state.ready {
            Some((at, machines)) if now.duration_since(*at) < max_age => machines.clone(),
            _ => {
                let filter = MachineFilter {
                    status: Some(MachineStatus::Ready),
                    ..Default::default()
                };
                let machines = maas.list_machines(&filter).await?;
                reads.lists = 1;
                let listed: Arc<Vec<InventoryMachine>> =
                    Arc::new(machines.iter().map(InventoryMachine::from_maas).collect());
                state.ready = Some((now, listed.clone()));
                listed
            }
        };
        let mut out = Vec::with_capacity(listed.len());
        for machine in listed.iter() {
            let mut machine = machine.clone();
            machine.gpus = match state.gpus.get(&machine.system_id) {
                Some((at, gpus)) if now.duration_since(*at) < DEVICES_MAX_AGE => Some(gpus.clone()),
                _ if wants_gpus(&machine) => {
                    let gpus = read_gpus(maas, &machine.system_id).await?;
                    reads.devices += 1;
                    state
                        .gpus
                        .insert(machine.system_id.clone(), (now, gpus.clone()));
                    Some(gpus)
                }
                _ => None,
            };
            out.push(machine);
        }
        Ok((out, reads))
    }
}

async fn read_gpus<M: MaasApi>(maas: &M, system_id: &str) -> Result<Vec<InventoryGpu>, MaasError> {
    let devices = maas.node_devices(system_id, Some("gpu")).await?;
    Ok(devices
        .iter()
        .map(|d| InventoryGpu {
            vendor_id: d.vendor_id.to_ascii_lowercase(),
            product_name: d.product_name.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maas::no_maas::NoMaas;

    #[tokio::test]
    async fn a_refusing_maas_is_an_error_not_an_empty_pool() {
        let inventory = EndpointInventory::default();
        let result = inventory
            .ready_machines(&NoMaas, INVENTORY_MAX_AGE, |_| true)
            .await;
        assert!(result.is_err(), "no MAAS must not read as no machines");
    }
}
