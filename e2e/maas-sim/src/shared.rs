//! State shared by every request of one simulator: the world, the per-process bookkeeping
//! (nonces, faults, request log) and the admin views of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::faults::{FaultConfig, FaultState};
use crate::lifecycle::{HookEvent, Timing};
use crate::oauth::{Credentials, NonceStore};
use crate::requests::RequestStats;
use crate::world::World;

/// Locks a mutex, recovering the data if a holder panicked (the state stays usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything one simulator shares between requests.
#[derive(Debug)]
pub struct Shared {
    /// Persistent state.
    pub world: Mutex<World>,
    /// Seen nonces.
    pub nonces: Mutex<NonceStore>,
    /// Faults.
    pub faults: Mutex<FaultState>,
    /// Request log.
    pub requests: Mutex<RequestStats>,
    /// Known API keys.
    pub keys: Vec<Credentials>,
    /// Transition durations.
    pub timing: Timing,
    /// Set after a change, cleared by the snapshot writer.
    pub dirty: AtomicBool,
    /// Where boot hook events go, when a hook runs.
    pub hook: Option<UnboundedSender<HookEvent>>,
}

impl Shared {
    /// Applies due transitions and forwards hook events.
    pub fn advance(&self, world: &mut World, now: Timestamp) {
        let events = world.advance(now);
        if !events.is_empty() {
            self.dirty.store(true, Ordering::Release);
        }
        self.emit(events);
    }

    /// Forwards hook events (dropped when no hook runs).
    pub fn emit(&self, events: Vec<HookEvent>) {
        if let Some(tx) = &self.hook {
            for e in events {
                // A closed channel means the hook stopped; MAAS state does not depend on it.
                let _ = tx.send(e);
            }
        }
    }

    /// Replaces the faults, scheduling the machines they break and resolving the machines
    /// whose deployments fail; returns the machine names it did not know.
    pub fn set_faults(&self, config: FaultConfig) -> Vec<String> {
        let mut faults = lock(&self.faults);
        let failing = config.fail_deploy_machines.clone();
        faults.replace(config);
        let breaks = faults.take_break_machines();
        drop(faults);
        let now = Timestamp::now();
        let mut world = lock(&self.world);
        let mut unknown = Vec::new();
        let mut failing_ids = std::collections::BTreeSet::new();
        for name in failing {
            match world.find_machine_id(&name) {
                Some(id) => {
                    failing_ids.insert(id);
                }
                None => unknown.push(name),
            }
        }
        lock(&self.faults).set_failing_machines(failing_ids);
        for b in breaks {
            let at = now
                .checked_add(SignedDuration::from_secs_f64(b.after_seconds.max(0.0)))
                .unwrap_or(now);
            if !world.schedule_break(&b.machine, at) {
                unknown.push(b.machine);
            }
        }
        self.advance(&mut world, now);
        self.dirty.store(true, Ordering::Release);
        unknown
    }

    /// The admin view of every machine.
    pub fn state_view(&self) -> StateView {
        let mut world = lock(&self.world);
        self.advance(&mut world, Timestamp::now());
        StateView {
            machines: world
                .machines
                .values()
                .map(|m| MachineView {
                    system_id: m.system_id.clone(),
                    hostname: m.hostname.clone(),
                    status: m.status.label().to_string(),
                    status_code: m.status.code(),
                    owner: m.owner.clone(),
                    owner_data: m.owner_data.clone().into_iter().collect(),
                    agent_name: m.agent_name.clone(),
                    power_state: m.power_state.as_str().to_string(),
                    ip_addresses: m.ip_addresses.iter().map(ToString::to_string).collect(),
                    user_data: m.user_data.clone(),
                    distro_series: m.distro_series.clone(),
                    zone: m.zone.clone(),
                    pool: m.pool.clone(),
                    tags: m.tags.clone(),
                })
                .collect(),
            dnsresources: world
                .dnsresources
                .values()
                .map(|d| DnsView {
                    id: d.id,
                    fqdn: d.fqdn(),
                    ip_addresses: d.ip_addresses.clone(),
                })
                .collect(),
        }
    }
}

/// What `GET /_sim/state` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// Every machine.
    pub machines: Vec<MachineView>,
    /// Every DNS resource.
    pub dnsresources: Vec<DnsView>,
}

impl StateView {
    /// How many machines are in `status` (`Deploying`).
    pub fn in_status(&self, status: &str) -> usize {
        self.machines.iter().filter(|m| m.status == status).count()
    }

    /// A machine by system id or host name.
    pub fn machine(&self, id_or_hostname: &str) -> Option<&MachineView> {
        self.machines
            .iter()
            .find(|m| m.system_id == id_or_hostname || m.hostname == id_or_hostname)
    }
}

/// One machine in the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineView {
    /// System id.
    pub system_id: String,
    /// Host name.
    pub hostname: String,
    /// Status label (`Deployed`).
    pub status: String,
    /// Status code.
    pub status_code: u8,
    /// Owner.
    pub owner: Option<String>,
    /// Owner data.
    pub owner_data: std::collections::BTreeMap<String, String>,
    /// Agent name (hidden from the MAAS API, shown here).
    pub agent_name: Option<String>,
    /// `on`/`off`.
    pub power_state: String,
    /// Assigned addresses.
    pub ip_addresses: Vec<String>,
    /// Decoded user data of the last deploy.
    pub user_data: Option<String>,
    /// Series deployed.
    pub distro_series: String,
    /// Zone.
    pub zone: String,
    /// Pool.
    pub pool: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// One DNS resource in the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsView {
    /// Id.
    pub id: u64,
    /// FQDN.
    pub fqdn: String,
    /// Addresses.
    pub ip_addresses: Vec<String>,
}
