//! One observer per MAAS endpoint owns "what MAAS says now" about machines in transit
//! (deploying, releasing, powering on).
//!
//! MAAS has no watch, so something must poll. Polling each machine on its own costs one read per
//! machine per poll; the observer reads every machine it watches in one batched
//! `GET machines/?id=a&id=b...` per tick and wakes only the objects whose machine changed. A pass
//! woken by anything else (our own writes, CAPI status updates) takes the latest observation
//! instead of reading MAAS, so MAAS reads per deploying machine fall as more machines deploy.
//!
//! A pass takes the observation out of the observer ([`MachineObserver::take`]) and puts the
//! machine back ([`MachineObserver::watch`]) only when its pass ends still in transit, with the
//! state MAAS last answered. So an observation never outlives a step of ours: a pass that acts
//! and then fails leaves nothing stale behind, and the next pass reads MAAS itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use maas_client::{MaasApi, MachineFilter};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, warn};

use crate::domain::maas_machine::ObservedMachine;
use crate::domain::observe::observe;
use crate::domain::reasons::WaitReason;
use crate::domain::timing::{
    POLL_MAX, POLL_MIN, POWER_ON_POLL, deploy_poll_delay, release_poll_delay,
};

/// How long a machine may stay in one transit before the observer lets go of it and wakes its
/// object, whose pass then reads MAAS itself: MAAS times a deployment out after 30 minutes, so
/// anything longer is an object that no longer takes its observations (deleted by force).
pub const MAX_TRANSIT: Duration = Duration::from_secs(3600);

/// How long a watched machine's object waits before a pass runs anyway: the observer wakes it as
/// soon as MAAS shows a change, this only covers a wake-up that never came.
pub const SAFETY_NET: Duration = Duration::from_secs(300);

/// Why a machine is watched; each has its own polling rhythm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transit {
    /// Installing its operating system: polls start near the quickest deployments and slow down.
    Deploying,
    /// On its way back to the free pool.
    Releasing,
    /// Deployed, waiting for the power to read `on`.
    PoweringOn,
}

impl Transit {
    /// The transit a pass that ends waiting for `reason` leaves its machine in, if any.
    pub fn of(reason: WaitReason) -> Option<Transit> {
        match reason {
            WaitReason::Deploying => Some(Transit::Deploying),
            WaitReason::Releasing => Some(Transit::Releasing),
            WaitReason::PoweringOn => Some(Transit::PoweringOn),
            _ => None,
        }
    }

    /// The gap before the next read of a machine in this transit for `elapsed`.
    pub fn poll_gap(self, elapsed: Duration) -> Duration {
        match self {
            Transit::Deploying => deploy_poll_delay(Some(elapsed)),
            Transit::Releasing => release_poll_delay(Some(elapsed)),
            Transit::PoweringOn => POWER_ON_POLL,
        }
    }
}

/// The latest word of MAAS on a watched machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The machine as MAAS last described it.
    pub machine: ObservedMachine,
    /// Why it is watched.
    pub transit: Transit,
    /// When this process first saw it in this transit.
    pub since: Instant,
    /// When it is due for its next read.
    pub due: Instant,
}

struct Watched<W> {
    who: W,
    seen: Observation,
}

/// The observer of one MAAS endpoint. `W` names the object to wake (an `ObjectRef` in the
/// manager).
pub struct MachineObserver<W> {
    watched: Mutex<HashMap<String, Watched<W>>>,
    max_transit: Duration,
    changed: Notify,
    wake: mpsc::UnboundedSender<W>,
}

/// What one tick did, for logs, tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Machines read (in one request).
    pub read: usize,
    /// Objects woken because their machine changed or vanished.
    pub woken: usize,
}

/// Failed reads in a row, and when the last one failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The gap after `count` failed reads in a row: the shortest poll gap doubled for each further
/// one, up to the longest. A MAAS restarting is seen again within seconds of its return; one
/// that stays down costs one call a minute once the gap has grown.
fn failure_gap(count: u32) -> Duration {
    POLL_MIN
        .saturating_mul(1u32 << count.saturating_sub(1).min(8))
        .min(POLL_MAX)
}

/// When the next read happens: when the most urgent machine is due, but never sooner than the
/// failure gap after a failed read.
fn next_read(due: Option<Instant>, failed: Option<Failures>) -> Option<Instant> {
    match (due, failed) {
        (Some(due), Some(f)) => Some(due.max(f.last + failure_gap(f.count))),
        (due, _) => due,
    }
}

/// Whether MAAS's new answer differs from the last one in anything a decision reads.
fn moved(before: &ObservedMachine, after: &ObservedMachine) -> bool {
    before.status_code != after.status_code
        || before.power != after.power
        || before.ip_addresses != after.ip_addresses
        || before.interfaces != after.interfaces
        || before.owner_data != after.owner_data
}

impl<W: Clone + Send + 'static> MachineObserver<W> {
    /// An observer that sends the objects to wake on `wake`.
    pub fn new(wake: mpsc::UnboundedSender<W>) -> Self {
        MachineObserver {
            watched: Mutex::new(HashMap::new()),
            max_transit: MAX_TRANSIT,
            changed: Notify::new(),
            wake,
        }
    }

    /// The same observer with another transit limit than [`MAX_TRANSIT`].
    pub fn with_max_transit(mut self, max_transit: Duration) -> Self {
        self.max_transit = max_transit;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched<W>>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `machine` for `who` until its state changes. `earlier` is the observation the
    /// pass took out: in the same transit, its start and its due read carry over, so wake-ups
    /// of the object in between never postpone the read.
    pub fn watch(
        &self,
        who: W,
        machine: ObservedMachine,
        transit: Transit,
        earlier: Option<&Observation>,
    ) {
        let now = Instant::now();
        let (since, due) = match earlier.filter(|e| e.transit == transit) {
            Some(e) => (e.since, e.due),
            None => (now, now + transit.poll_gap(Duration::ZERO)),
        };
        let id = machine.system_id.clone();
        let seen = Observation {
            machine,
            transit,
            since,
            due,
        };
        self.lock().insert(id, Watched { who, seen });
        self.changed.notify_one();
    }

    /// Takes the latest observation of `system_id` out: the pass now owns it, and puts the
    /// machine back with [`watch`](Self::watch) if it is still in transit when the pass ends.
    pub fn take(&self, system_id: &str) -> Option<Observation> {
        self.lock().remove(system_id).map(|w| w.seen)
    }

    /// How many machines are watched.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no machine is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the next read is due, if anything is watched.
    fn next_due(&self) -> Option<Instant> {
        self.lock().values().map(|w| w.seen.due).min()
    }

    /// Reads every watched machine in one request, records what changed and wakes its object.
    /// A machine MAAS no longer lists wakes its object too (the pass finds the 404 itself).
    pub async fn tick<M: MaasApi>(&self, maas: &M) -> Result<TickReport, maas_client::MaasError> {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        if ids.is_empty() {
            return Ok(TickReport::default());
        }
        let filter = MachineFilter {
            id: ids.clone(),
            ..Default::default()
        };
        let answer = maas.list_machines(&filter).await?;
        let mut latest: HashMap<String, ObservedMachine> = answer
            .iter()
            .map(|m| (m.system_id.clone(), observe(m)))
            .collect();
        let now = Instant::now();
        let mut wake = Vec::new();
        let mut map = self.lock();
        for id in &ids {
            // Taken by a pass while the read was in flight: that pass owns it now.
            let Some(entry) = map.get_mut(id) else {
                continue;
            };
            let overdue = now.duration_since(entry.seen.since) > self.max_transit;
            match latest.remove(id) {
                Some(_) if overdue => {
                    if let Some(stale) = map.remove(id) {
                        wake.push(stale.who);
                    }
                }
                Some(m) => {
                    if moved(&entry.seen.machine, &m) {
                        wake.push(entry.who.clone());
                    }
                    entry.seen.machine = m;
                    entry.seen.due = now + entry.seen.transit.poll_gap(now - entry.seen.since);
                }
                None => {
                    if let Some(gone) = map.remove(id) {
                        wake.push(gone.who);
                    }
                }
            }
        }
        drop(map);
        let woken = wake.len();
        for who in wake {
            // The receiver is gone only when the manager stops.
            let _ = self.wake.send(who);
        }
        Ok(TickReport {
            read: ids.len(),
            woken,
        })
    }

    /// Ticks whenever a read is due, until `stop` resolves. After failed reads the next one
    /// waits a gap that doubles from the shortest poll gap up to the longest.
    pub async fn run<M: MaasApi>(&self, maas: M, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failed: Option<Failures> = None;
        loop {
            let due = next_read(self.next_due(), failed);
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = self.changed.notified() => continue,
                _ = sleep => {}
            }
            match self.tick(&maas).await {
                Ok(report) => {
                    failed = None;
                    debug!(
                        read = report.read,
                        woken = report.woken,
                        "observed machines in transit"
                    );
                }
                Err(error) => {
                    warn!(%error, "cannot read the machines in transit; trying again later");
                    failed = Some(Failures {
                        count: failed.map_or(1, |f| f.count.saturating_add(1)),
                        last: Instant::now(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::Power;
    use crate::domain::timing::RELEASE_POLL;

    fn machine(id: &str, status: i64) -> ObservedMachine {
        ObservedMachine {
            system_id: id.into(),
            status_code: status,
            ..Default::default()
        }
    }

    #[test]
    fn a_taken_observation_is_gone_until_watched_again() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let obs = MachineObserver::new(tx);
        obs.watch("mm-1", machine("a", 9), Transit::Deploying, None);
        assert_eq!(obs.len(), 1);
        let seen = obs.take("a").unwrap();
        assert_eq!(seen.machine.status_code, 9);
        assert!(obs.take("a").is_none(), "a pass owns it now");
        let due = seen.due;
        obs.watch("mm-1", seen.machine.clone(), seen.transit, Some(&seen));
        assert_eq!(
            obs.take("a").unwrap().due,
            due,
            "a wake-up never postpones the read"
        );
        obs.watch(
            "mm-1",
            seen.machine.clone(),
            Transit::Releasing,
            Some(&seen),
        );
        let releasing = obs.take("a").unwrap();
        assert!(
            releasing.due != due && releasing.due <= Instant::now() + RELEASE_POLL,
            "a new transit starts its own rhythm"
        );
        assert!(obs.is_empty());
    }

    #[test]
    fn failed_reads_hold_the_next_one_back_by_a_growing_gap() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(5);
        assert_eq!(next_read(None, None), None, "nothing watched: no read");
        assert_eq!(next_read(Some(soon), None), Some(soon));
        let failed = |count| Some(Failures { count, last: now });
        assert_eq!(next_read(Some(soon), failed(1)), Some(now + POLL_MIN));
        assert_eq!(next_read(Some(soon), failed(2)), Some(now + POLL_MIN * 2));
        assert_eq!(next_read(Some(soon), failed(9)), Some(now + POLL_MAX));
        assert_eq!(
            next_read(Some(soon), failed(u32::MAX)),
            Some(now + POLL_MAX)
        );
        let late = now + Duration::from_secs(600);
        assert_eq!(next_read(Some(late), failed(1)), Some(late));
        assert_eq!(next_read(None, failed(1)), None);
    }

    #[test]
    fn waits_on_machine_progress_are_transits() {
        assert_eq!(Transit::of(WaitReason::Deploying), Some(Transit::Deploying));
        assert_eq!(Transit::of(WaitReason::Releasing), Some(Transit::Releasing));
        assert_eq!(
            Transit::of(WaitReason::PoweringOn),
            Some(Transit::PoweringOn)
        );
        assert_eq!(Transit::of(WaitReason::NoMachineAvailable), None);
    }

    #[test]
    fn only_what_decisions_read_counts_as_a_change() {
        let a = machine("a", 9);
        let mut b = a.clone();
        b.status_name = "Deploying: installing".into();
        assert!(!moved(&a, &b), "a new status message alone wakes nobody");
        b.power = Power::On;
        assert!(moved(&a, &b));
        let mut c = a.clone();
        c.ip_addresses.push("10.0.0.9".into());
        assert!(moved(&a, &c));
        assert!(moved(&a, &machine("a", 6)));
    }

    #[test]
    fn each_transit_has_its_rhythm() {
        assert_eq!(Transit::Releasing.poll_gap(Duration::ZERO), RELEASE_POLL);
        assert_eq!(Transit::PoweringOn.poll_gap(Duration::ZERO), POWER_ON_POLL);
        assert_eq!(
            Transit::Deploying.poll_gap(Duration::from_secs(600)),
            POLL_MAX
        );
    }
}
