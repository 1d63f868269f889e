//! The machine state machine: every operation that changes a machine, and the timed
//! transitions. Pure: time comes in as an argument and side effects (Nodes to register) come
//! out as events.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::config::ADMIN_USER;
use crate::constraints::{Constraints, FormErrors, machine_matches, no_match_message};
use crate::ledger::{LedgerEntry, LedgerEvent};
use crate::node_facts::NodeFacts;
use crate::status::{NodeStatus, PowerState};
use crate::world::{Machine, World};

/// Durations of the timed transitions, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Deploying -> Deployed.
    pub deploy: f64,
    /// Releasing -> Ready.
    pub release: f64,
    /// Disk erasing -> Ready.
    pub erase: f64,
}

/// The Kubernetes version a machine's bootstrap data installs, as a booted kubelet would report
/// it: the node preparation's argument (`capmaas-node-prep v1.33.1 ...`), else the kubeadm
/// configuration's `kubernetesVersion`. `text` is the user data as stored, decoded, or the
/// kubeadm configuration found in it.
pub fn kubelet_version(text: &str) -> Option<String> {
    let after = |marker: &str| {
        text.split(marker).nth(1).and_then(|rest| {
            let version: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                .collect();
            (version.starts_with('v') && version.len() > 1).then_some(version)
        })
    };
    after("capmaas-node-prep ").or_else(|| after("kubernetesVersion:"))
}

/// Something outside the MAAS state must follow (the boot hook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// The machine reached Deployed: its Node joins.
    Deployed {
        /// Host name (the Node's name).
        hostname: String,
        /// What its kubelet registers: hardware, version, labels and taints.
        node: NodeFacts,
    },
    /// The machine left Deployed: its Node goes.
    Released {
        /// Host name.
        hostname: String,
    },
}

/// Why an operation was refused, mapped to MAAS's status codes by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// 404 `No Machine matches the given query.`
    NotFound,
    /// 409 with a text body.
    Conflict(String),
    /// 403 with a text body.
    Forbidden(String),
    /// 400 with form errors.
    Invalid(FormErrors),
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub username: String,
}

impl Caller {
    /// Whether the caller is the administrator (may act on any machine).
    pub fn is_admin(&self) -> bool {
        self.username == ADMIN_USER
    }
}

/// Deploy parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployRequest {
    /// `distro_series` (`jammy`, `ubuntu/jammy`, a custom image name).
    pub distro_series: Option<String>,
    /// Decoded user data.
    pub user_data: Option<String>,
    /// `hwe_kernel`.
    pub hwe_kernel: Option<String>,
    /// `ephemeral_deploy`.
    pub ephemeral_deploy: bool,
    /// `agent_name` (sets it when given).
    pub agent_name: Option<String>,
    /// Whether this deployment will fail (fault injection decides).
    pub will_fail: bool,
    /// Whether the machine goes Broken halfway through this deployment (fault injection).
    pub will_break: bool,
}

/// Release parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// Erase the disks.
    pub erase: bool,
    /// Quick erase (only with erase).
    pub quick_erase: bool,
    /// Secure erase (only with erase).
    pub secure_erase: bool,
}

fn after(now: Timestamp, seconds: f64) -> Timestamp {
    let d = SignedDuration::from_secs_f64(seconds.max(0.0));
    now.checked_add(d).unwrap_or(now)
}

/// The default series deploy uses when none is given.
pub const DEFAULT_SERIES: &str = "jammy";

/// Resolves `distro_series` against the boot images: `(osystem, series)`.
pub fn resolve_series(images: &[String], wanted: &str) -> Option<(String, String)> {
    images.iter().find_map(|image| {
        let (os, series) = image.split_once('/').unwrap_or(("custom", image.as_str()));
        (image == wanted || series == wanted).then(|| (os.to_string(), series.to_string()))
    })
}

/// MAAS answers a refused permission check with an empty 403 (a bare `PermissionDenied`).
fn forbidden() -> OpError {
    OpError::Forbidden(String::new())
}

/// MAAS's view and edit permission on a machine without RBAC: the administrator may do both
/// on every machine, other users only on machines that are unowned or their own.
pub fn can_access(m: &Machine, caller: &Caller) -> bool {
    caller.is_admin() || m.owner.is_none() || m.owner.as_deref() == Some(caller.username.as_str())
}

fn check_access(m: &Machine, caller: &Caller) -> Result<(), OpError> {
    if can_access(m, caller) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Statuses a release (and a user's mark_broken) starts from, as MAAS lists them.
pub const RELEASABLE: [NodeStatus; 8] = [
    NodeStatus::Allocated,
    NodeStatus::Reserved,
    NodeStatus::Broken,
    NodeStatus::Deploying,
    NodeStatus::Deployed,
    NodeStatus::FailedDeployment,
    NodeStatus::FailedDiskErasing,
    NodeStatus::FailedReleasing,
];

type Ledger = Vec<LedgerEntry>;

fn entry(m: &Machine, event: LedgerEvent) -> LedgerEntry {
    LedgerEntry {
        system_id: m.system_id.clone(),
        event,
    }
}

/// The ledger entry of `m` just taken by its owner.
fn acquired(m: &Machine) -> LedgerEntry {
    entry(
        m,
        LedgerEvent::Acquired {
            user: m.owner.clone().unwrap_or_default(),
            agent_name: m.agent_name.clone(),
        },
    )
}

/// Moves a machine to `status`, remembering where it came from.
fn set_status(m: &mut Machine, status: NodeStatus) {
    if m.status != status {
        m.previous_status = Some(m.status);
        m.status = status;
    }
}

/// The first steps of every release: what MAAS clears at once. The owner, the owner data and
/// the addresses stay until the release completes (`finalize_release`). Returns whether the
/// release may complete at once, which MAAS does when the machine is already powered off.
fn release_steps(m: &mut Machine, events: &mut Vec<HookEvent>, ledger: &mut Ledger) -> bool {
    ledger.push(entry(m, LedgerEvent::ReleaseStarted));
    if m.node_registered {
        m.node_registered = false;
        events.push(HookEvent::Released {
            hostname: m.hostname.clone(),
        });
    }
    m.agent_name = None;
    m.osystem = String::new();
    m.distro_series = String::new();
    m.hwe_kernel = None;
    m.deploy_will_fail = false;
    m.transition_at = None;
    m.power_state == PowerState::Off
}

/// The end of a release: Ready, and only now without owner, owner data and addresses.
fn finalize_release(m: &mut Machine, ledger: &mut Ledger) {
    ledger.push(entry(m, LedgerEvent::Freed));
    set_status(m, NodeStatus::Ready);
    m.status_message = "Released".to_string();
    m.power_state = PowerState::Off;
    m.owner = None;
    m.owner_data = BTreeMap::new();
    m.ip_addresses.clear();
    m.ephemeral_deploy = false;
    m.transition_at = None;
}

/// Breaks a machine as MAAS's `mark_broken` does: a releasable machine is released first;
/// when it was already off the release completes (owner and owner data go), otherwise MAAS
/// powers it off and the Broken status keeps the release from ever completing, so the owner
/// and the owner data stay.
fn break_machine(m: &mut Machine, comment: &str, ledger: &mut Ledger) -> Vec<HookEvent> {
    let before = m.status;
    let mut events = Vec::new();
    if RELEASABLE.contains(&m.status) {
        if release_steps(m, &mut events, ledger) {
            finalize_release(m, ledger);
        } else {
            m.power_state = PowerState::Off;
        }
    }
    m.status = NodeStatus::Broken;
    if before != NodeStatus::Broken {
        ledger.push(entry(m, LedgerEvent::Broken));
        // MAAS records the status the request found, not the intermediate Releasing.
        m.previous_status = Some(before);
    }
    m.status_message = comment.to_string();
    m.transition_at = None;
    m.deploy_will_fail = false;
    events
}

impl World {
    fn machine_mut(&mut self, system_id: &str) -> Result<&mut Machine, OpError> {
        self.machines.get_mut(system_id).ok_or(OpError::NotFound)
    }

    /// Whether `caller` may see a machine: 404 when there is none, 403 when it belongs to
    /// another user (and the caller is not the administrator).
    pub fn check_view(&self, system_id: &str, caller: &Caller) -> Result<(), OpError> {
        let m = self.machines.get(system_id).ok_or(OpError::NotFound)?;
        check_access(m, caller)
    }

    /// Applies every transition due at `now`.
    pub fn advance(&mut self, now: Timestamp) -> Vec<HookEvent> {
        let mut events = Vec::new();
        for m in self.machines.values_mut() {
            if m.break_at.is_some_and(|t| t <= now) {
                m.break_at = None;
                // MAAS marks a machine broken on its own (a system event, no user) when it
                // finds it failing, in practice a machine that is powered on: the release
                // mark_broken starts then never completes, so the owner and the owner data
                // stay, as they do for a user's mark_broken of a running machine.
                if RELEASABLE.contains(&m.status) {
                    m.power_state = PowerState::On;
                }
                events.extend(break_machine(
                    m,
                    "Marked broken by fault injection",
                    &mut self.ledger,
                ));
                continue;
            }
            if m.transition_at.is_none_or(|t| t > now) {
                continue;
            }
            m.transition_at = None;
            match m.status {
                NodeStatus::Deploying if m.deploy_will_fail => {
                    m.deploy_will_fail = false;
                    set_status(m, NodeStatus::FailedDeployment);
                    m.status_message =
                        "Installation failed (refer to the installation log for more information)."
                            .to_string();
                }
                NodeStatus::Deploying => {
                    set_status(m, NodeStatus::Deployed);
                    m.status_message = "Deployed".to_string();
                    m.node_registered = true;
                    events.push(HookEvent::Deployed {
                        hostname: m.hostname.clone(),
                        node: NodeFacts::of(m),
                    });
                }
                NodeStatus::Releasing | NodeStatus::DiskErasing => {
                    finalize_release(m, &mut self.ledger)
                }
                _ => {}
            }
        }
        events
    }

    /// Deploys `count` machines to `username` at once (the fixed setup of another user's
    /// machines). Plain machines go first, the highest host names first, so the cheapest
    /// machines and the GPU machines stay available; returns their system ids.
    pub fn predeploy(&mut self, username: &str, count: usize) -> Vec<String> {
        let mut candidates: Vec<(bool, String, String)> = self
            .machines
            .values()
            .filter(|m| m.status == NodeStatus::Ready && m.owner.is_none())
            .map(|m| (!m.gpus.is_empty(), m.hostname.clone(), m.system_id.clone()))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        let mut ids = Vec::new();
        for (_, _, id) in candidates.into_iter().take(count) {
            let ips = self.auto_addresses();
            let Some(m) = self.machines.get_mut(&id) else {
                continue;
            };
            set_status(m, NodeStatus::Deployed);
            m.status_message = "Deployed".to_string();
            m.owner = Some(username.to_string());
            m.power_state = PowerState::On;
            m.osystem = "ubuntu".to_string();
            m.distro_series = DEFAULT_SERIES.to_string();
            m.ip_addresses = ips;
            let acquired = acquired(m);
            self.ledger.push(acquired);
            ids.push(id);
        }
        ids
    }

    /// Schedules a machine to break at `at`.
    pub fn schedule_break(&mut self, id_or_hostname: &str, at: Timestamp) -> bool {
        match self
            .find_machine_id(id_or_hostname)
            .and_then(|id| self.machines.get_mut(&id))
        {
            Some(m) => {
                m.break_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Picks the cheapest Ready machine matching `c` and allocates it to `caller` (unless dry run).
    pub fn allocate(&mut self, c: &Constraints, caller: &Caller) -> Result<String, OpError> {
        let best = self
            .machines
            .values()
            .filter(|m| m.status == NodeStatus::Ready && machine_matches(c, m))
            .min_by(|a, b| a.cost().total_cmp(&b.cost()))
            .map(|m| m.system_id.clone());
        let Some(id) = best else {
            return Err(OpError::Conflict(no_match_message(c)));
        };
        if c.dry_run {
            return Ok(id);
        }
        let m = self.machine_mut(&id)?;
        set_status(m, NodeStatus::Allocated);
        m.owner = Some(caller.username.clone());
        m.agent_name = c.agent_name.clone();
        m.status_message = c.comment.clone().unwrap_or_default();
        let acquired = acquired(m);
        self.ledger.push(acquired);
        Ok(id)
    }

    /// What MAAS checks before a deploy: the machine is the caller's to deploy, in a state that
    /// can be deployed, and the series names an image; returns the OS and series to install.
    fn deployable(
        &self,
        system_id: &str,
        caller: &Caller,
        req: &DeployRequest,
    ) -> Result<(String, String), OpError> {
        let series = req
            .distro_series
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERIES.to_string());
        let m = self.machines.get(system_id).ok_or(OpError::NotFound)?;
        check_access(m, caller)?;
        if !matches!(m.status, NodeStatus::Ready | NodeStatus::Allocated) {
            return Err(OpError::Conflict(format!(
                "Can't deploy a machine that is in the '{}' state",
                m.status.label()
            )));
        }
        resolve_series(&self.images, &series).ok_or_else(|| {
            let choices: Vec<String> = self.images.iter().map(|i| format!("'{i}'")).collect();
            let mut errors = FormErrors::new();
            errors.insert(
                "distro_series".to_string(),
                vec![format!(
                    "'{series}' is not a valid distro_series.  It should be one of: '', {}.",
                    choices.join(", ")
                )],
            );
            OpError::Invalid(errors)
        })
    }

    /// Starts a deployment.
    pub fn deploy(
        &mut self,
        system_id: &str,
        caller: &Caller,
        req: DeployRequest,
        timing: Timing,
        now: Timestamp,
    ) -> Result<(), OpError> {
        let (osystem, series) = self.deployable(system_id, caller, &req)?;
        let ips = self.auto_addresses();
        let m = self.machines.get_mut(system_id).ok_or(OpError::NotFound)?;
        let was_unowned = m.owner.is_none();
        if was_unowned {
            m.owner = Some(caller.username.clone());
        }
        if req.agent_name.is_some() {
            m.agent_name = req.agent_name;
        }
        if was_unowned {
            self.ledger.push(acquired(m));
        }
        self.ledger.push(entry(m, LedgerEvent::DeployStarted));
        if req.will_break {
            // Halfway through the installation, so the machine is seen Deploying first.
            m.break_at = Some(after(now, timing.deploy / 2.0));
        }
        set_status(m, NodeStatus::Deploying);
        m.status_message = "Deploying".to_string();
        m.osystem = osystem;
        m.distro_series = series;
        m.hwe_kernel = req.hwe_kernel;
        m.ephemeral_deploy = req.ephemeral_deploy;
        m.user_data = req.user_data;
        m.power_state = PowerState::On;
        m.deploy_will_fail = req.will_fail;
        m.ip_addresses = ips;
        m.transition_at = Some(after(now, timing.deploy));
        Ok(())
    }

    /// Starts a release; a no-op when already Ready or Releasing. A machine already powered
    /// off (and not erasing) is Ready at once, as in MAAS; otherwise it goes through Releasing
    /// or Disk erasing, keeping its owner and owner data until it is Ready.
    pub fn release(
        &mut self,
        system_id: &str,
        caller: &Caller,
        req: ReleaseRequest,
        timing: Timing,
        now: Timestamp,
    ) -> Result<Vec<HookEvent>, OpError> {
        // The field, not `machine_mut`: the ledger is written while the machine is borrowed.
        let m = self.machines.get_mut(system_id).ok_or(OpError::NotFound)?;
        check_access(m, caller)?;
        if matches!(m.status, NodeStatus::Ready | NodeStatus::Releasing) {
            // MAAS calls a repeated release a success: the postcondition holds.
            return Ok(Vec::new());
        }
        if !RELEASABLE.contains(&m.status) {
            return Err(OpError::Conflict(format!(
                "Machine cannot be released in its current state ('{}').",
                m.status.label()
            )));
        }
        let mut events = Vec::new();
        let powered_off = release_steps(m, &mut events, &mut self.ledger);
        if req.erase {
            // Erasing boots the machine into an ephemeral environment first.
            let seconds = if req.quick_erase {
                timing.erase / 4.0
            } else {
                timing.erase
            };
            set_status(m, NodeStatus::DiskErasing);
            m.status_message = if req.secure_erase {
                "Secure erasing disks"
            } else {
                "Erasing disks"
            }
            .to_string();
            m.power_state = PowerState::On;
            m.transition_at = Some(after(now, seconds));
        } else if powered_off {
            finalize_release(m, &mut self.ledger);
        } else {
            set_status(m, NodeStatus::Releasing);
            m.status_message = "Releasing".to_string();
            m.transition_at = Some(after(now, timing.release));
        }
        Ok(events)
    }

    /// Aborts a deployment (back to Allocated) or a disk erase (to Failed disk erasing).
    pub fn abort(&mut self, system_id: &str, caller: &Caller) -> Result<(), OpError> {
        let m = self.machine_mut(system_id)?;
        check_access(m, caller)?;
        match m.status {
            NodeStatus::Deploying => {
                set_status(m, NodeStatus::Allocated);
                m.power_state = PowerState::Off;
                m.ip_addresses.clear();
            }
            NodeStatus::DiskErasing => set_status(m, NodeStatus::FailedDiskErasing),
            other => {
                return Err(OpError::Conflict(format!(
                    "Cannot abort in current state: {}",
                    other.label()
                )));
            }
        }
        m.transition_at = None;
        m.deploy_will_fail = false;
        m.status_message = "Aborted".to_string();
        Ok(())
    }

    /// Marks a machine broken at a user's request. MAAS lets only the machine's owner do so,
    /// the administrator included: anyone else, and anyone on an unowned machine, gets 403.
    pub fn mark_broken(
        &mut self,
        system_id: &str,
        caller: &Caller,
        comment: Option<&str>,
    ) -> Result<Vec<HookEvent>, OpError> {
        let m = self.machines.get_mut(system_id).ok_or(OpError::NotFound)?;
        check_access(m, caller)?;
        if m.owner.as_deref() != Some(caller.username.as_str()) {
            return Err(forbidden());
        }
        Ok(break_machine(m, comment.unwrap_or(""), &mut self.ledger))
    }

    /// Marks a broken machine fixed (administrators only): back to Deployed when it was
    /// Deployed before it broke, else Ready. MAAS leaves the owner as it is.
    pub fn mark_fixed(&mut self, system_id: &str, caller: &Caller) -> Result<(), OpError> {
        let m = self.machine_mut(system_id)?;
        if !caller.is_admin() {
            return Err(forbidden());
        }
        if m.status != NodeStatus::Broken {
            return Err(OpError::Conflict(
                "Can't mark a non-broken node as 'Ready'.".to_string(),
            ));
        }
        let to = if m.previous_status == Some(NodeStatus::Deployed) {
            NodeStatus::Deployed
        } else {
            NodeStatus::Ready
        };
        set_status(m, to);
        m.status_message = String::new();
        m.osystem = String::new();
        m.distro_series = String::new();
        m.hwe_kernel = None;
        Ok(())
    }

    /// Powers a machine on or off.
    pub fn set_power(&mut self, system_id: &str, caller: &Caller, on: bool) -> Result<(), OpError> {
        let m = self.machine_mut(system_id)?;
        check_access(m, caller)?;
        m.power_state = if on { PowerState::On } else { PowerState::Off };
        Ok(())
    }

    /// Merges owner data; an empty value removes the key. Only the owner may: someone who may
    /// not edit the machine gets 403, anyone else who does not own it (the administrator on
    /// another user's machine, anyone on an unowned one) MAAS's 409.
    pub fn set_owner_data(
        &mut self,
        system_id: &str,
        caller: &Caller,
        data: &[(String, String)],
    ) -> Result<(), OpError> {
        let m = self.machine_mut(system_id)?;
        check_access(m, caller)?;
        if m.owner.as_deref() != Some(caller.username.as_str()) {
            return Err(OpError::Conflict(
                "Cannot set workload annotation: it hasn't been acquired.".to_string(),
            ));
        }
        for (k, v) in data {
            if v.is_empty() {
                m.owner_data.remove(k);
            } else {
                m.owner_data.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraints::parse_constraints;
    use crate::inventory::Inventory;
    use crate::params::Params;

    const T: Timing = Timing {
        deploy: 10.0,
        release: 2.0,
        erase: 4.0,
    };

    fn admin() -> Caller {
        Caller {
            username: ADMIN_USER.to_string(),
        }
    }

    fn world() -> World {
        World::from_inventory(&Inventory::generate(6, 1)).unwrap()
    }

    fn allocate(w: &mut World, q: &str) -> String {
        let c = parse_constraints(&Params::from_urlencoded(q.as_bytes()), w).unwrap();
        w.allocate(&c, &admin()).unwrap()
    }

    #[test]
    fn the_kubelet_version_comes_from_the_bootstrap_data() {
        let prep = "runcmd:\n  - \"/usr/local/sbin/capmaas-node-prep v1.37.2 '1.7.*'\"\n";
        assert_eq!(kubelet_version(prep).as_deref(), Some("v1.37.2"));
        let init = "content: |\n  kubernetesVersion: v1.33.1\n";
        assert_eq!(kubelet_version(init).as_deref(), Some("v1.33.1"));
        assert_eq!(kubelet_version("#cloud-config\n"), None);
        assert_eq!(kubelet_version("capmaas-node-prep latest"), None);
    }

    #[test]
    fn the_deployed_event_carries_what_the_kubelet_registers() {
        let mut w = world();
        let now = Timestamp::now();
        let id = allocate(&mut w, "tags=gpu");
        let req = DeployRequest {
            user_data: Some("#cloud-config\nruncmd: [capmaas-node-prep v1.34.1]\n".into()),
            ..Default::default()
        };
        w.deploy(&id, &admin(), req, T, now).unwrap();
        let events = w.advance(after(now, 10.0));
        let [HookEvent::Deployed { hostname, node }] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(hostname, &w.machines[&id].hostname);
        assert_eq!((node.cpu, node.architecture.as_str()), (64, "amd64"));
        assert_eq!(node.gpus.get("nvidia.com/gpu"), Some(&4));
        assert_eq!(node.kubelet_version.as_deref(), Some("v1.34.1"));
        assert!(node.labels.is_empty() && node.taints.is_empty());
    }

    #[test]
    fn allocate_picks_cheapest_and_records_agent() {
        let mut w = world();
        let id = allocate(&mut w, "agent_name=a1");
        let cheapest = w
            .machines
            .values()
            .map(|m| m.cost())
            .fold(f64::MAX, f64::min);
        let m = &w.machines[&id];
        assert_eq!(m.cost(), cheapest);
        assert_eq!(m.status, NodeStatus::Allocated);
        assert_eq!(m.agent_name.as_deref(), Some("a1"));
        assert_eq!(m.owner.as_deref(), Some(ADMIN_USER));
    }

    #[test]
    fn deploy_then_timed_deployed_then_release_with_erase() {
        let mut w = world();
        let now = Timestamp::now();
        let id = allocate(&mut w, "");
        w.set_owner_data(&id, &admin(), &[("k".into(), "v".into())])
            .unwrap();
        assert!(w.machines[&id].ip_addresses.is_empty());
        let req = DeployRequest {
            user_data: Some("#cloud-config".into()),
            ..Default::default()
        };
        w.deploy(&id, &admin(), req, T, now).unwrap();
        assert_eq!(w.machines[&id].status, NodeStatus::Deploying);
        assert_eq!(w.machines[&id].ip_addresses.len(), 1);
        assert!(w.advance(after(now, 9.0)).is_empty());
        let events = w.advance(after(now, 10.0));
        assert_eq!(events.len(), 1);
        assert_eq!(w.machines[&id].status, NodeStatus::Deployed);
        let err = w
            .deploy(&id, &admin(), DeployRequest::default(), T, now)
            .unwrap_err();
        assert_eq!(
            err,
            OpError::Conflict("Can't deploy a machine that is in the 'Deployed' state".into())
        );
        let events = w
            .release(
                &id,
                &admin(),
                ReleaseRequest {
                    erase: true,
                    ..Default::default()
                },
                T,
                after(now, 20.0),
            )
            .unwrap();
        assert!(matches!(events.as_slice(), [HookEvent::Released { .. }]));
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::DiskErasing);
        // The agent name and the OS go at once; owner, owner data and addresses stay.
        assert!(m.agent_name.is_none() && m.osystem.is_empty());
        assert_eq!(m.owner.as_deref(), Some(ADMIN_USER));
        assert_eq!(m.owner_data.len(), 1);
        assert_eq!(m.ip_addresses.len(), 1);
        w.advance(after(now, 23.0));
        assert_eq!(w.machines[&id].status, NodeStatus::DiskErasing);
        w.advance(after(now, 24.0));
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Ready);
        assert_eq!(m.power_state, PowerState::Off);
        assert!(m.owner.is_none() && m.owner_data.is_empty() && m.ip_addresses.is_empty());
        // Releasing a Ready machine is a no-op.
        assert!(
            w.release(&id, &admin(), ReleaseRequest::default(), T, now)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_ledger_records_each_holding_and_a_break_during_deployment() {
        let mut w = world();
        let now = Timestamp::now();
        let id = allocate(&mut w, "agent_name=capmaas:1");
        let req = DeployRequest {
            will_break: true,
            ..Default::default()
        };
        w.deploy(&id, &admin(), req, T, now).unwrap();
        w.advance(after(now, 4.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Deploying);
        w.advance(after(now, 5.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Broken, "halfway");
        w.release(&id, &admin(), ReleaseRequest::default(), T, after(now, 6.0))
            .unwrap();
        w.advance(after(now, 9.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Ready);
        let kinds: Vec<&str> = w.ledger.iter().map(|e| e.event.kind()).collect();
        assert_eq!(
            kinds,
            [
                "acquired",
                "deploy_started",
                "release_started",
                "broken",
                "release_started",
                "freed"
            ]
        );
        let audit = crate::ledger::audit(&w.ledger);
        assert_eq!(audit.double_actions(), 0, "{audit:?}");
        assert_eq!((audit.acquisitions, audit.broken), (1, 1));
    }

    #[test]
    fn failed_deployment_abort_and_broken() {
        let mut w = world();
        let now = Timestamp::now();
        let id = allocate(&mut w, "");
        let req = DeployRequest {
            will_fail: true,
            ..Default::default()
        };
        w.deploy(&id, &admin(), req, T, now).unwrap();
        w.advance(after(now, 11.0));
        assert_eq!(w.machines[&id].status, NodeStatus::FailedDeployment);
        assert!(matches!(
            w.deploy(&id, &admin(), DeployRequest::default(), T, now),
            Err(OpError::Conflict(_))
        ));
        w.release(&id, &admin(), ReleaseRequest::default(), T, now)
            .unwrap();
        w.advance(after(now, 2.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Ready);
        let id = allocate(&mut w, "");
        w.deploy(&id, &admin(), DeployRequest::default(), T, now)
            .unwrap();
        w.abort(&id, &admin()).unwrap();
        assert_eq!(w.machines[&id].status, NodeStatus::Allocated);
        w.advance(after(now, 60.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Allocated);
        w.mark_broken(&id, &admin(), Some("disk")).unwrap();
        assert_eq!(w.machines[&id].status, NodeStatus::Broken);
    }

    #[test]
    fn owner_data_only_by_owner_and_access_rules() {
        let mut w = world();
        let id = allocate(&mut w, "");
        let bob = Caller {
            username: "bob".into(),
        };
        assert_eq!(
            w.set_owner_data(&id, &bob, &[]),
            Err(OpError::Forbidden(String::new()))
        );
        assert!(matches!(
            w.release(&id, &bob, ReleaseRequest::default(), T, Timestamp::now()),
            Err(OpError::Forbidden(_))
        ));
        w.set_owner_data(
            &id,
            &admin(),
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
        )
        .unwrap();
        w.set_owner_data(&id, &admin(), &[("a".into(), String::new())])
            .unwrap();
        assert_eq!(
            w.machines[&id].owner_data.keys().collect::<Vec<_>>(),
            vec!["b"]
        );
        assert_eq!(
            w.set_owner_data("nope", &admin(), &[]),
            Err(OpError::NotFound)
        );
    }

    fn bob() -> Caller {
        Caller {
            username: "bob".into(),
        }
    }

    fn allocate_as(w: &mut World, caller: &Caller) -> String {
        let c = parse_constraints(&Params::default(), w).unwrap();
        w.allocate(&c, caller).unwrap()
    }

    /// A machine Deployed to `caller`, with owner data and an agent name.
    fn deployed_to(w: &mut World, caller: &Caller, now: Timestamp) -> String {
        let id = allocate_as(w, caller);
        w.set_owner_data(&id, caller, &[("k".into(), "v".into())])
            .unwrap();
        let req = DeployRequest {
            agent_name: Some("agent".into()),
            ..Default::default()
        };
        w.deploy(&id, caller, req, T, now).unwrap();
        w.advance(after(now, 10.0));
        assert_eq!(w.machines[&id].status, NodeStatus::Deployed);
        id
    }

    #[test]
    fn release_keeps_owner_until_ready_and_is_immediate_when_off() {
        let mut w = world();
        let now = Timestamp::now();
        let id = deployed_to(&mut w, &admin(), now);
        w.release(&id, &admin(), ReleaseRequest::default(), T, now)
            .unwrap();
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Releasing);
        assert!(m.agent_name.is_none() && m.distro_series.is_empty());
        assert_eq!(m.owner.as_deref(), Some(ADMIN_USER));
        assert_eq!(m.owner_data["k"], "v");
        w.advance(after(now, 2.0));
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Ready);
        assert!(m.owner.is_none() && m.owner_data.is_empty());
        // An allocated machine is powered off: MAAS completes its release at once.
        let id = allocate_as(&mut w, &admin());
        w.set_owner_data(&id, &admin(), &[("k".into(), "v".into())])
            .unwrap();
        w.release(&id, &admin(), ReleaseRequest::default(), T, now)
            .unwrap();
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Ready);
        assert!(m.owner.is_none() && m.owner_data.is_empty());
    }

    #[test]
    fn release_refused_while_erasing() {
        let mut w = world();
        let now = Timestamp::now();
        let id = deployed_to(&mut w, &admin(), now);
        let erase = ReleaseRequest {
            erase: true,
            ..Default::default()
        };
        w.release(&id, &admin(), erase, T, now).unwrap();
        assert_eq!(
            w.release(&id, &admin(), ReleaseRequest::default(), T, now),
            Err(OpError::Conflict(
                "Machine cannot be released in its current state ('Disk erasing').".into()
            ))
        );
    }

    #[test]
    fn mark_broken_only_by_the_owner_keeps_a_running_machine_owned() {
        let mut w = world();
        let now = Timestamp::now();
        let id = deployed_to(&mut w, &admin(), now);
        let forbidden = OpError::Forbidden(String::new());
        assert_eq!(w.mark_broken(&id, &bob(), None), Err(forbidden.clone()));
        let bobs = allocate_as(&mut w, &bob());
        assert_eq!(w.mark_broken(&bobs, &admin(), None), Err(forbidden.clone()));
        let unowned = w
            .machines
            .values()
            .find(|m| m.owner.is_none())
            .map(|m| m.system_id.clone())
            .unwrap();
        assert_eq!(
            w.mark_broken(&unowned, &admin(), None),
            Err(forbidden.clone())
        );
        let events = w.mark_broken(&id, &admin(), Some("disk")).unwrap();
        assert!(matches!(events.as_slice(), [HookEvent::Released { .. }]));
        let m = &w.machines[&id];
        assert_eq!(
            (m.status, m.status_message.as_str(), m.power_state),
            (NodeStatus::Broken, "disk", PowerState::Off)
        );
        assert!(m.agent_name.is_none());
        assert_eq!(m.owner.as_deref(), Some(ADMIN_USER));
        assert_eq!(m.owner_data["k"], "v");
        assert_eq!(w.mark_fixed(&id, &bob()), Err(forbidden));
        w.mark_fixed(&id, &admin()).unwrap();
        assert_eq!(w.machines[&id].status, NodeStatus::Deployed);
        assert_eq!(
            w.mark_fixed(&id, &admin()),
            Err(OpError::Conflict(
                "Can't mark a non-broken node as 'Ready'.".into()
            ))
        );
        // Broken is releasable; powered off, the release completes at once.
        w.mark_broken(&id, &admin(), None).unwrap();
        w.release(&id, &admin(), ReleaseRequest::default(), T, now)
            .unwrap();
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Ready);
        assert!(m.owner.is_none() && m.owner_data.is_empty());
    }

    #[test]
    fn mark_broken_of_a_powered_off_machine_completes_its_release() {
        let mut w = world();
        let id = allocate_as(&mut w, &bob());
        w.set_owner_data(&id, &bob(), &[("k".into(), "v".into())])
            .unwrap();
        w.mark_broken(&id, &bob(), None).unwrap();
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Broken);
        assert!(m.owner.is_none() && m.owner_data.is_empty());
        w.mark_fixed(&id, &admin()).unwrap();
        assert_eq!(w.machines[&id].status, NodeStatus::Ready);
    }

    #[test]
    fn breaking_on_its_own_keeps_owner_and_owner_data() {
        let mut w = world();
        let now = Timestamp::now();
        let id = deployed_to(&mut w, &bob(), now);
        assert!(w.schedule_break(&id, now));
        w.advance(after(now, 11.0));
        let m = &w.machines[&id];
        assert_eq!(m.status, NodeStatus::Broken);
        assert_eq!(m.owner.as_deref(), Some("bob"));
        assert_eq!(m.owner_data["k"], "v");
    }

    #[test]
    fn other_users_machines_are_out_of_reach() {
        let mut w = world();
        let now = Timestamp::now();
        let id = deployed_to(&mut w, &admin(), now);
        let forbidden = Err(OpError::Forbidden(String::new()));
        assert_eq!(w.check_view(&id, &bob()), forbidden);
        assert_eq!(w.set_power(&id, &bob(), false), forbidden);
        assert_eq!(w.set_owner_data(&id, &bob(), &[]), forbidden);
        assert!(w.check_view("nope", &bob()) == Err(OpError::NotFound));
        let bobs = allocate_as(&mut w, &bob());
        assert_eq!(w.check_view(&bobs, &admin()), Ok(()));
        assert!(matches!(
            w.set_owner_data(&bobs, &admin(), &[]),
            Err(OpError::Conflict(_))
        ));
    }

    #[test]
    fn predeployed_machines_spare_the_gpu_and_cheapest_ones() {
        let mut w = world();
        let ids = w.predeploy("other", 2);
        assert_eq!(ids.len(), 2);
        let hostnames: Vec<&str> = ids
            .iter()
            .map(|id| w.machines[id].hostname.as_str())
            .collect();
        assert_eq!(hostnames, vec!["node-006", "node-005"]);
        for id in &ids {
            let m = &w.machines[id];
            assert_eq!(m.status, NodeStatus::Deployed);
            assert_eq!(m.owner.as_deref(), Some("other"));
            assert_eq!(m.ip_addresses.len(), 1);
        }
        assert_ne!(
            w.machines[&ids[0]].ip_addresses,
            w.machines[&ids[1]].ip_addresses
        );
        assert_eq!(w.predeploy("other", 100).len(), 5);
    }

    #[test]
    fn unknown_series_is_a_form_error() {
        let mut w = world();
        let id = allocate(&mut w, "");
        let req = DeployRequest {
            distro_series: Some("plan9".into()),
            ..Default::default()
        };
        assert!(
            matches!(w.deploy(&id, &admin(), req, T, Timestamp::now()), Err(OpError::Invalid(e)) if e.contains_key("distro_series"))
        );
        assert_eq!(
            resolve_series(&w.images, "ubuntu/jammy"),
            Some(("ubuntu".into(), "jammy".into()))
        );
        assert_eq!(
            resolve_series(&w.images, "focal"),
            Some(("ubuntu".into(), "focal".into()))
        );
    }

    #[test]
    fn ips_are_distinct_across_deployments() {
        let mut w = world();
        let now = Timestamp::now();
        let a = allocate(&mut w, "");
        let b = allocate(&mut w, "");
        w.deploy(&a, &admin(), DeployRequest::default(), T, now)
            .unwrap();
        w.deploy(&b, &admin(), DeployRequest::default(), T, now)
            .unwrap();
        assert_ne!(w.machines[&a].ip_addresses, w.machines[&b].ip_addresses);
    }
}
