//! The simulated MAAS's persistent state: machines, zones, pools, tags, domains, DNS resources
//! and the subnet AUTO addresses come from. Serializable as a whole for the snapshot file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::inventory::{GpuSpec, Inventory, MachineSpec};
use crate::ledger::LedgerEntry;
use crate::status::{NodeStatus, PowerState};

/// The default DNS domain, as in a fresh MAAS.
pub const DEFAULT_DOMAIN: &str = "maas";
/// Boot images offered when the inventory names none.
pub const DEFAULT_IMAGES: [&str; 3] = ["ubuntu/focal", "ubuntu/jammy", "ubuntu/noble"];
/// The subnet AUTO addresses come from when the inventory names none.
pub const DEFAULT_SUBNET: &str = "10.20.0.0/16";

/// The whole persistent state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    /// Machines by system id.
    pub machines: BTreeMap<String, Machine>,
    /// Zone names; `default` first.
    pub zones: Vec<String>,
    /// Pool names; `default` first (id = index).
    pub pools: Vec<String>,
    /// Tag names.
    pub tags: BTreeSet<String>,
    /// Domain names; `maas` first (id = index).
    pub domains: Vec<String>,
    /// DNS resources by id.
    pub dnsresources: BTreeMap<u64, DnsResource>,
    /// Next DNS resource id.
    pub next_dns_id: u64,
    /// Boot images (`os/series`).
    pub images: Vec<String>,
    /// AUTO address subnet of every machine's boot interface (`eno1`).
    pub subnet: Subnet,
    /// One more interface per subnet on every machine (`eno2`, `eno3`, ...), each with an AUTO
    /// address from it once deployment starts: the data network beside the PXE one.
    #[serde(default)]
    pub extra_subnets: Vec<Subnet>,
    /// What MAAS did to machines, in order (the audit trail).
    #[serde(default)]
    pub ledger: Vec<LedgerEntry>,
}

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n`.
    pub fn parse(cidr: &str) -> Result<Self, SimError> {
        let bad = || SimError::InvalidInventory(format!("subnet {cidr:?} is not a.b.c.d/n"));
        let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=29).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: Ipv4Addr::from(u32::from(network) & mask),
            prefix,
        })
    }

    /// `a.b.c.d/n`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.network)
    }

    /// The gateway (first host).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The lowest free AUTO address (hosts from .10 on, below the broadcast address).
    pub fn first_free(&self, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let base = u32::from(self.network);
        let size = 1u32 << (32 - self.prefix);
        (10..size - 1)
            .map(|offset| Ipv4Addr::from(base + offset))
            .find(|ip| !used.contains(ip))
    }
}

/// One machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// System id.
    pub system_id: String,
    /// Host name.
    pub hostname: String,
    /// Domain name.
    pub domain: String,
    /// Zone name.
    pub zone: String,
    /// Pool name.
    pub pool: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Cores.
    pub cpu_count: u32,
    /// MiB.
    pub memory: u64,
    /// Disks in GB.
    pub disks: Vec<u64>,
    /// Architecture.
    pub architecture: String,
    /// GPUs.
    pub gpus: Vec<GpuSpec>,
    /// MAC address of the boot interface.
    pub mac_address: String,
    /// Status.
    pub status: NodeStatus,
    /// Status message.
    pub status_message: String,
    /// Power.
    pub power_state: PowerState,
    /// Owner user name.
    pub owner: Option<String>,
    /// Owner data.
    pub owner_data: BTreeMap<String, String>,
    /// Agent name (write-only for clients).
    pub agent_name: Option<String>,
    /// OS deployed or being deployed.
    pub osystem: String,
    /// Series deployed or being deployed.
    pub distro_series: String,
    /// HWE kernel asked for.
    pub hwe_kernel: Option<String>,
    /// Deployed to memory only.
    pub ephemeral_deploy: bool,
    /// User data of the last deploy, decoded.
    pub user_data: Option<String>,
    /// AUTO addresses (assigned at deploy start).
    pub ip_addresses: Vec<Ipv4Addr>,
    /// When the current timed transition completes.
    pub transition_at: Option<Timestamp>,
    /// Whether the deployment in progress will fail.
    pub deploy_will_fail: bool,
    /// When the machine breaks on its own (fault injection).
    pub break_at: Option<Timestamp>,
    /// Whether a Node was registered for it (boot hook).
    pub node_registered: bool,
    /// The status before the last change, which `mark_fixed` returns a machine to when it was
    /// Deployed (MAAS keeps the same field).
    #[serde(default)]
    pub previous_status: Option<NodeStatus>,
    /// Free-text description (machine update).
    #[serde(default)]
    pub description: String,
    /// Swap file size in bytes (machine update); `None` lets the installer choose.
    #[serde(default)]
    pub swap_size: Option<u64>,
}

/// A DNS resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsResource {
    /// Id.
    pub id: u64,
    /// Label.
    pub name: String,
    /// Domain name.
    pub domain: String,
    /// TTL of the address records.
    pub address_ttl: Option<u64>,
    /// Addresses.
    pub ip_addresses: Vec<String>,
}

impl DnsResource {
    /// `name.domain` (`@` stands for the domain itself).
    pub fn fqdn(&self) -> String {
        if self.name == "@" {
            self.domain.clone()
        } else {
            format!("{}.{}", self.name, self.domain)
        }
    }
}

/// A deterministic six-character system id from an index, MAAS-like (lower-case letters and
/// digits).
pub fn system_id_for(index: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstwxy34678";
    let mut n = (index as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(97_531)
        % 244_140_625;
    let mut id = String::with_capacity(6);
    for _ in 0..6 {
        id.push(char::from(ALPHABET[(n % ALPHABET.len() as u64) as usize]));
        n /= ALPHABET.len() as u64;
    }
    id
}

impl World {
    /// Builds the initial state from an inventory, checking that it is consistent.
    pub fn from_inventory(inv: &Inventory) -> Result<Self, SimError> {
        let mut zones = vec!["default".to_string()];
        let mut pools = vec!["default".to_string()];
        let mut tags: BTreeSet<String> = inv.tags.iter().cloned().collect();
        for z in &inv.zones {
            if !zones.contains(z) {
                zones.push(z.clone());
            }
        }
        for p in &inv.pools {
            if !pools.contains(p) {
                pools.push(p.clone());
            }
        }
        let mut domains = vec![DEFAULT_DOMAIN.to_string()];
        for d in &inv.domains {
            if !domains.contains(d) {
                domains.push(d.clone());
            }
        }
        let subnet = Subnet::parse(inv.subnet.as_deref().unwrap_or(DEFAULT_SUBNET))?;
        let extra_subnets = inv
            .extra_subnets
            .iter()
            .map(|cidr| Subnet::parse(cidr))
            .collect::<Result<Vec<_>, _>>()?;
        let images = if inv.images.is_empty() {
            DEFAULT_IMAGES.iter().map(|s| s.to_string()).collect()
        } else {
            inv.images.clone()
        };
        let mut machines = BTreeMap::new();
        let mut hostnames = BTreeSet::new();
        for (index, spec) in inv.machines.iter().enumerate() {
            if !hostnames.insert(spec.hostname.clone()) {
                return Err(SimError::InvalidInventory(format!(
                    "host name {} appears twice",
                    spec.hostname
                )));
            }
            // Zones and pools named by machines exist, as they would in a MAAS holding them.
            if !zones.contains(&spec.zone) {
                zones.push(spec.zone.clone());
            }
            if !pools.contains(&spec.pool) {
                pools.push(spec.pool.clone());
            }
            tags.extend(spec.tags.iter().cloned());
            let machine = Machine::from_spec(spec, index);
            if machines.contains_key(&machine.system_id) {
                return Err(SimError::InvalidInventory(format!(
                    "system id {} appears twice",
                    machine.system_id
                )));
            }
            machines.insert(machine.system_id.clone(), machine);
        }
        Ok(Self {
            machines,
            zones,
            pools,
            tags,
            domains,
            dnsresources: BTreeMap::new(),
            next_dns_id: 1,
            images,
            subnet,
            extra_subnets,
            ledger: Vec::new(),
        })
    }

    /// Addresses in use by machines and DNS resources.
    pub fn used_ips(&self) -> BTreeSet<Ipv4Addr> {
        self.machines
            .values()
            .flat_map(|m| m.ip_addresses.iter().copied())
            .collect()
    }

    /// Every machine's subnets, the boot interface's first: interface `eno<i + 1>` is on the
    /// `i`-th.
    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        std::iter::once(&self.subnet).chain(&self.extra_subnets)
    }

    /// The AUTO addresses a machine starting to deploy gets: the lowest free one of each of its
    /// subnets, boot interface first.
    pub fn auto_addresses(&self) -> Vec<Ipv4Addr> {
        let mut used = self.used_ips();
        let mut out = Vec::new();
        for subnet in self.subnets() {
            if let Some(ip) = subnet.first_free(&used) {
                used.insert(ip);
                out.push(ip);
            }
        }
        out
    }

    /// Looks a machine up by system id.
    pub fn machine(&self, system_id: &str) -> Option<&Machine> {
        self.machines.get(system_id)
    }

    /// Looks a machine up by system id or host name.
    pub fn find_machine_id(&self, id_or_hostname: &str) -> Option<String> {
        if self.machines.contains_key(id_or_hostname) {
            return Some(id_or_hostname.to_string());
        }
        self.machines
            .values()
            .find(|m| m.hostname == id_or_hostname)
            .map(|m| m.system_id.clone())
    }

    /// Pool id (its index).
    pub fn pool_id(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p == name)
    }

    /// Zone id (its index).
    pub fn zone_id(&self, name: &str) -> Option<usize> {
        self.zones.iter().position(|z| z == name)
    }

    /// Domain id (its index).
    pub fn domain_id(&self, name: &str) -> Option<usize> {
        self.domains.iter().position(|d| d == name)
    }
}

impl Machine {
    /// A Ready machine from its inventory entry.
    pub fn from_spec(spec: &MachineSpec, index: usize) -> Self {
        let system_id = spec
            .system_id
            .clone()
            .unwrap_or_else(|| system_id_for(index));
        let mac_address = format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            (index >> 16) & 0xff,
            (index >> 8) & 0xff,
            index & 0xff
        );
        let gpus = spec
            .gpus
            .iter()
            .enumerate()
            .map(|(g, gpu)| GpuSpec {
                pci_address: gpu
                    .pci_address
                    .clone()
                    .or_else(|| Some(format!("0000:{:02x}:00.0", 0x17 + g * 0x10))),
                ..gpu.clone()
            })
            .collect();
        Self {
            system_id,
            hostname: spec.hostname.clone(),
            domain: DEFAULT_DOMAIN.to_string(),
            zone: spec.zone.clone(),
            pool: spec.pool.clone(),
            tags: spec.tags.clone(),
            cpu_count: spec.cpu,
            memory: spec.memory,
            disks: spec.storage.clone(),
            architecture: spec.architecture.clone(),
            gpus,
            mac_address,
            status: NodeStatus::Ready,
            status_message: String::new(),
            power_state: PowerState::Off,
            owner: None,
            owner_data: BTreeMap::new(),
            agent_name: None,
            osystem: String::new(),
            distro_series: String::new(),
            hwe_kernel: None,
            ephemeral_deploy: false,
            user_data: None,
            ip_addresses: Vec::new(),
            transition_at: None,
            deploy_will_fail: false,
            break_at: None,
            node_registered: false,
            previous_status: None,
            description: String::new(),
            swap_size: None,
        }
    }

    /// `hostname.domain`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }

    /// Total storage in MB, as MAAS reports `storage`.
    pub fn storage_mb(&self) -> f64 {
        self.disks.iter().map(|gb| *gb as f64 * 1000.0).sum()
    }

    /// Allocation cost as MAAS ranks candidates: cores plus GiB of memory.
    pub fn cost(&self) -> f64 {
        f64::from(self.cpu_count) + self.memory as f64 / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ids_are_distinct_and_maas_shaped() {
        let ids: BTreeSet<_> = (0..5000).map(system_id_for).collect();
        assert_eq!(ids.len(), 5000);
        assert!(ids.iter().all(|id| id.len() == 6));
    }

    #[test]
    fn subnet_allocation_skips_used() {
        let s = Subnet::parse("10.1.2.0/24").unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(s.first_free(&used), Some(Ipv4Addr::new(10, 1, 2, 10)));
        used.insert(Ipv4Addr::new(10, 1, 2, 10));
        assert_eq!(s.first_free(&used), Some(Ipv4Addr::new(10, 1, 2, 11)));
        assert!(Subnet::parse("10.1.2.0").is_err());
        assert_eq!(
            Subnet::parse("10.1.2.77/24").unwrap().network,
            Ipv4Addr::new(10, 1, 2, 0)
        );
    }

    #[test]
    fn world_from_inventory_collects_names() {
        let world = World::from_inventory(&Inventory::generate(4, 1)).unwrap();
        assert_eq!(world.machines.len(), 5);
        assert_eq!(world.zones[0], "default");
        assert!(world.zones.len() >= 3);
        assert!(world.tags.contains("gpu"));
        let mut dup = Inventory::generate(2, 0);
        dup.machines[1].hostname = dup.machines[0].hostname.clone();
        assert!(World::from_inventory(&dup).is_err());
    }
}
