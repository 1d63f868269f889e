//! What MAAS has free, and which of it a spec's constraints accept: the Ready machines of one
//! MAAS endpoint as the decisions read them, and the pure matching that MAAS's allocate does,
//! so a template can report its pool's capacity and a waiting MaasMachine can say which of its
//! constraints no machine meets. No I/O.

use maas_client::Machine;

use crate::domain::allocation::{GpuRequest, MachineRequirements};
use crate::machine::source::gpu::matching_gpus;

/// A GPU of an inventory machine (from MAAS's node devices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryGpu {
    /// PCI vendor id, lower-case hex (`10de`).
    pub vendor_id: String,
    /// Product name as MAAS shows it.
    pub product_name: String,
}

/// A Ready MAAS machine, with what allocate constraints look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InventoryMachine {
    /// System id.
    pub system_id: String,
    /// Host name.
    pub hostname: String,
    /// CPU cores.
    pub cpu_count: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Total disk in GB.
    pub storage_gb: u64,
    /// MAAS architecture (`amd64/generic`).
    pub architecture: String,
    /// Zone name.
    pub zone: Option<String>,
    /// Resource pool name.
    pub pool: Option<String>,
    /// Tag names.
    pub tags: Vec<String>,
    /// GPUs, when they were read (`None`: not read, so unknown).
    pub gpus: Option<Vec<InventoryGpu>>,
}

impl InventoryMachine {
    /// The machine as MAAS listed it, GPUs not yet known.
    pub fn from_maas(m: &Machine) -> Self {
        InventoryMachine {
            system_id: m.system_id.clone(),
            hostname: m.hostname.clone(),
            cpu_count: m.cpu_count,
            memory_mib: m.memory,
            storage_gb: m.storage_gb(),
            architecture: m.architecture.clone(),
            zone: m.zone.clone(),
            pool: m.pool.clone(),
            tags: m.tag_names.clone(),
            gpus: None,
        }
    }

    /// GPUs that satisfy `gpu` (any GPU when `None`); zero when the GPUs are unknown.
    pub fn gpu_count(&self, gpu: Option<&GpuRequest>) -> u32 {
        let devices = self.gpus.iter().flatten();
        matching_gpus(
            gpu,
            devices.map(|d| (d.vendor_id.as_str(), d.product_name.as_str())),
        )
    }
}

/// One allocate constraint, checked on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// Every tag asked for, and none of the excluded ones.
    Tags,
    /// The resource pool.
    Pool,
    /// The zone.
    Zone,
    /// The CPU minimum.
    Cpu,
    /// The memory minimum.
    Memory,
    /// The disk minimum.
    Disk,
    /// The architecture.
    Architecture,
    /// The GPUs: vendor, product and count.
    Gpus,
}

impl Constraint {
    /// Every constraint, in the order a message lists them.
    pub const ALL: [Constraint; 8] = [
        Constraint::Tags,
        Constraint::Pool,
        Constraint::Zone,
        Constraint::Cpu,
        Constraint::Memory,
        Constraint::Disk,
        Constraint::Architecture,
        Constraint::Gpus,
    ];

    /// The word a message uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Constraint::Tags => "tags",
            Constraint::Pool => "pool",
            Constraint::Zone => "zone",
            Constraint::Cpu => "cpu",
            Constraint::Memory => "memory",
            Constraint::Disk => "disk",
            Constraint::Architecture => "architecture",
            Constraint::Gpus => "GPUs",
        }
    }
}

/// The requirements with the zone the allocation would name resolved, as allocate sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The spec's constraints.
    pub req: &'a MachineRequirements,
    /// The zone allocate would name (the Machine's failure domain, the spec's or the default).
    pub zone: Option<&'a str>,
}

impl Wanted<'_> {
    /// Whether the constraint asks for anything at all.
    pub fn asks(&self, c: Constraint) -> bool {
        let r = self.req;
        match c {
            Constraint::Tags => !r.tags.is_empty() || !r.not_tags.is_empty(),
            Constraint::Pool => non_blank(r.resource_pool.as_deref()).is_some(),
            Constraint::Zone => non_blank(self.zone).is_some(),
            Constraint::Cpu => r.min_cpu.is_some_and(|c| c > 0),
            Constraint::Memory => r.min_memory_mib.is_some_and(|m| m > 0),
            Constraint::Disk => r.min_disk_gb.is_some_and(|g| g > 0),
            Constraint::Architecture => non_blank(r.architecture.as_deref()).is_some(),
            Constraint::Gpus => r.gpu.is_some(),
        }
    }

    /// Whether `m` meets constraint `c` (a constraint that asks nothing is met by every machine).
    pub fn meets(&self, c: Constraint, m: &InventoryMachine) -> bool {
        let r = self.req;
        match c {
            Constraint::Tags => {
                let has = |t: &String| m.tags.iter().any(|x| x.eq_ignore_ascii_case(t.trim()));
                r.tags.iter().filter(|t| !t.trim().is_empty()).all(has)
                    && !r.not_tags.iter().filter(|t| !t.trim().is_empty()).any(has)
            }
            Constraint::Pool => same(non_blank(r.resource_pool.as_deref()), m.pool.as_deref()),
            Constraint::Zone => same(non_blank(self.zone), m.zone.as_deref()),
            Constraint::Cpu => r.min_cpu.is_none_or(|c| m.cpu_count >= c),
            Constraint::Memory => r.min_memory_mib.is_none_or(|mem| m.memory_mib >= mem),
            Constraint::Disk => r.min_disk_gb.is_none_or(|g| m.storage_gb >= g),
            Constraint::Architecture => {
                non_blank(r.architecture.as_deref()).is_none_or(|a| arch_matches(&a, m))
            }
            Constraint::Gpus => r
                .gpu
                .as_ref()
                .is_none_or(|g| m.gpu_count(Some(g)) >= g.min_count.unwrap_or(1).max(1)),
        }
    }

    /// Whether `m` meets every constraint.
    pub fn accepts(&self, m: &InventoryMachine) -> bool {
        Constraint::ALL.iter().all(|c| self.meets(*c, m))
    }
}

/// Machines meeting each asked constraint on its own, in [`Constraint::ALL`] order.
pub fn per_constraint(
    wanted: &Wanted<'_>,
    machines: &[InventoryMachine],
) -> Vec<(Constraint, usize)> {
    Constraint::ALL
        .iter()
        .filter(|c| wanted.asks(**c))
        .map(|c| (*c, machines.iter().filter(|m| wanted.meets(*c, m)).count()))
        .collect()
}

/// What a waiting MaasMachine's condition says: how many Ready machines meet each constraint on
/// its own and all together, naming the constraints no machine meets.
pub fn waiting_message(wanted: &Wanted<'_>, machines: &[InventoryMachine]) -> String {
    let counts = per_constraint(wanted, machines);
    let all = machines.iter().filter(|m| wanted.accepts(m)).count();
    let listed: Vec<String> = counts
        .iter()
        .map(|(c, n)| format!("{} {n}", c.as_str()))
        .collect();
    let blocking: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(c, _)| c.as_str())
        .collect();
    let mut text = format!(
        "No available machine matches constraints: of {} Ready machines, {all} meet all",
        machines.len()
    );
    if !listed.is_empty() {
        text.push_str(&format!("; each on its own: {}", listed.join(", ")));
    }
    if !blocking.is_empty() {
        text.push_str(&format!("; no machine meets {}", blocking.join(", ")));
    }
    text
}

/// The accepted machine a new pool member is sure to be at least: fewest GPUs, then CPUs,
/// memory and disk.
pub fn smallest<'a>(
    wanted: &Wanted<'_>,
    machines: &'a [InventoryMachine],
) -> Option<&'a InventoryMachine> {
    let gpu = wanted.req.gpu.as_ref();
    machines
        .iter()
        .filter(|m| wanted.accepts(m))
        .min_by_key(|m| (m.gpu_count(gpu), m.cpu_count, m.memory_mib, m.storage_gb))
}

/// The Kubernetes spelling (`GOARCH`) of a MAAS architecture: `amd64/generic` is `amd64`,
/// `ppc64el` is `ppc64le`, `i386` is `386`, `armhf` is `arm`.
pub fn kubernetes_arch(maas: &str) -> String {
    let base = maas.split('/').next().unwrap_or_default().trim();
    match base.to_ascii_lowercase().as_str() {
        "ppc64el" => "ppc64le".to_string(),
        "i386" => "386".to_string(),
        "armhf" => "arm".to_string(),
        "" => "amd64".to_string(),
        other => other.to_string(),
    }
}

fn arch_matches(wanted: &str, m: &InventoryMachine) -> bool {
    let have = m.architecture.to_ascii_lowercase();
    let wanted = wanted.to_ascii_lowercase();
    have == wanted || have.starts_with(&format!("{wanted}/"))
}

fn same(wanted: Option<String>, have: Option<&str>) -> bool {
    wanted.is_none_or(|w| have.is_some_and(|h| h.eq_ignore_ascii_case(&w)))
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
