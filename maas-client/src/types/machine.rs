//! The machine object MAAS returns from `machines/` and the machine actions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;
use super::status::{MachineStatus, PowerState};

/// A MAAS machine, with the fields the provider reads.
///
/// Decoding is lenient on purpose: MAAS versions add fields, send integers as floats and `null`
/// where a value is not known yet. Missing fields take their default; unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Machine {
    /// The MAAS system id (`abc123`), the key of every machine call.
    #[serde(deserialize_with = "lenient::string")]
    pub system_id: String,
    /// Short host name.
    #[serde(deserialize_with = "lenient::string")]
    pub hostname: String,
    /// Fully qualified domain name.
    #[serde(deserialize_with = "lenient::string")]
    pub fqdn: String,
    /// Status code as an enum.
    pub status: MachineStatus,
    /// MAAS's own status label (kept as sent, for display).
    #[serde(deserialize_with = "lenient::string")]
    pub status_name: String,
    /// The last status message (e.g. `From 'Ready' to 'Allocated'`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub status_message: Option<String>,
    /// Power state.
    pub power_state: PowerState,
    /// Power driver type (`ipmi`, `virsh`, `manual`, ...).
    #[serde(deserialize_with = "lenient::string")]
    pub power_type: String,
    /// Number of CPU cores.
    #[serde(deserialize_with = "lenient::u32_lenient")]
    pub cpu_count: u32,
    /// Memory in MiB.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub memory: u64,
    /// Total storage in MB (decimal megabytes, as MAAS sends it; often fractional).
    #[serde(deserialize_with = "lenient::f64_lenient")]
    pub storage: f64,
    /// Architecture, e.g. `amd64/generic`.
    #[serde(deserialize_with = "lenient::string")]
    pub architecture: String,
    /// Deployed OS (`ubuntu`, `custom`); empty when not deployed.
    #[serde(deserialize_with = "lenient::string")]
    pub osystem: String,
    /// Deployed series (`jammy`); empty when not deployed.
    #[serde(deserialize_with = "lenient::string")]
    pub distro_series: String,
    /// HWE kernel chosen at deploy, when any.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub hwe_kernel: Option<String>,
    /// Availability zone name.
    #[serde(deserialize_with = "lenient::name_ref")]
    pub zone: Option<String>,
    /// Resource pool name.
    #[serde(deserialize_with = "lenient::name_ref")]
    pub pool: Option<String>,
    /// DNS domain name.
    #[serde(deserialize_with = "lenient::name_ref")]
    pub domain: Option<String>,
    /// Tag names.
    #[serde(deserialize_with = "lenient::string_list")]
    pub tag_names: Vec<String>,
    /// IP addresses; AUTO addresses appear only once deployment has started.
    #[serde(deserialize_with = "lenient::string_list")]
    pub ip_addresses: Vec<String>,
    /// The MAAS user holding the machine; `None` when free.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub owner: Option<String>,
    /// Owner data (workload annotations); wiped by MAAS on release.
    #[serde(deserialize_with = "lenient::string_map")]
    pub owner_data: BTreeMap<String, String>,
    /// Hardware summary (`system_vendor`, `cpu_model`, ...), string values.
    #[serde(deserialize_with = "lenient::string_map")]
    pub hardware_info: BTreeMap<String, String>,
    /// NUMA nodes (absent on older MAAS).
    #[serde(deserialize_with = "lenient::lenient_list")]
    pub numanode_set: Vec<NumaNode>,
    /// Network interfaces with their links.
    #[serde(deserialize_with = "lenient::lenient_list")]
    pub interface_set: Vec<Interface>,
    /// The interface the machine last PXE-booted from (else MAAS's lowest-id one); `None` on a
    /// machine without interfaces.
    pub boot_interface: Option<Interface>,
    /// Whether the machine is locked against changes.
    #[serde(deserialize_with = "lenient::bool_lenient")]
    pub locked: bool,
}

impl Machine {
    /// Storage in whole decimal gigabytes (the unit of the `storage` allocate constraint).
    pub fn storage_gb(&self) -> u64 {
        if self.storage.is_finite() && self.storage > 0.0 {
            (self.storage / 1000.0) as u64
        } else {
            0
        }
    }
}

/// One NUMA node of a machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct NumaNode {
    /// NUMA node index.
    #[serde(deserialize_with = "lenient::u32_lenient")]
    pub index: u32,
    /// Core ids on this node.
    #[serde(deserialize_with = "lenient::lenient_list")]
    pub cores: Vec<u32>,
    /// Memory on this node in MiB.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub memory: u64,
}

/// A network interface of a machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Interface {
    /// Interface id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// Interface name (`eth0`).
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// MAC address.
    #[serde(deserialize_with = "lenient::string")]
    pub mac_address: String,
    /// Subnet links (configured addresses).
    #[serde(deserialize_with = "lenient::lenient_list")]
    pub links: Vec<InterfaceLink>,
}

/// One link of an interface to a subnet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct InterfaceLink {
    /// Link id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// `auto`, `static`, `dhcp` or `link_up`.
    #[serde(deserialize_with = "lenient::string")]
    pub mode: String,
    /// The address once assigned.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub ip_address: Option<String>,
    /// The subnet, when linked to one.
    pub subnet: Option<SubnetRef>,
}

/// The subnet part of an interface link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SubnetRef {
    /// Subnet name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Subnet CIDR.
    #[serde(deserialize_with = "lenient::string")]
    pub cidr: String,
    /// The MAAS space the subnet is in (`undefined` when none).
    #[serde(deserialize_with = "lenient::string")]
    pub space: String,
    /// The subnet's VLAN, which names its fabric.
    pub vlan: Option<VlanRef>,
}

/// The VLAN part of a subnet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct VlanRef {
    /// The fabric's name (`fabric-0`).
    #[serde(deserialize_with = "lenient::string")]
    pub fabric: String,
}

/// The answer of `query_power_state`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PowerStateReply {
    /// The state the power driver reported.
    pub state: PowerState,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_a_machine_we_write_ourselves() {
        let m: Machine = serde_json::from_value(json!({
            "system_id": "x7y8z9", "hostname": "node-1", "fqdn": "node-1.maas",
            "status": 6.0, "status_name": "Deployed", "status_message": null,
            "power_state": "on", "cpu_count": 8.0, "memory": 16384, "storage": 500107.862016,
            "architecture": "amd64/generic", "osystem": "ubuntu", "distro_series": "jammy",
            "zone": {"name": "az1", "id": 2}, "pool": {"name": "gpu"}, "domain": null,
            "tag_names": ["gpu", "nvme"], "ip_addresses": ["10.0.0.5"],
            "owner": "capmaas", "owner_data": {"capmaas-uid": "u-1"},
            "hardware_info": {"cpu_model": "EPYC"},
            "numanode_set": [{"index": 0, "cores": [0, 1, 2, 3], "memory": 8192},
                             {"index": 1, "cores": [4, 5, 6, 7], "memory": 8192.0}],
            "interface_set": [{"id": 1, "name": "eth0", "mac_address": "52:54:00:00:00:01",
                "links": [{"id": 3, "mode": "auto", "ip_address": "10.0.0.5",
                           "subnet": {"name": "pxe", "cidr": "10.0.0.0/24", "vlan": {}}}]}],
            "some_future_field": {"nested": true}
        }))
        .unwrap();
        assert_eq!(m.status, MachineStatus::Deployed);
        assert_eq!(m.power_state, PowerState::On);
        assert_eq!((m.cpu_count, m.memory), (8, 16384));
        assert_eq!(m.storage_gb(), 500);
        assert_eq!(m.zone.as_deref(), Some("az1"));
        assert_eq!(m.pool.as_deref(), Some("gpu"));
        assert_eq!(m.domain, None);
        assert_eq!(m.status_message, None);
        assert_eq!(m.owner_data["capmaas-uid"], "u-1");
        assert_eq!(m.numanode_set.len(), 2);
        assert_eq!(m.numanode_set[1].memory, 8192);
        assert_eq!(
            m.interface_set[0].links[0].subnet.as_ref().unwrap().cidr,
            "10.0.0.0/24"
        );
    }

    #[test]
    fn an_empty_object_decodes_to_defaults() {
        let m: Machine = serde_json::from_str("{}").unwrap();
        assert_eq!(m.status, MachineStatus::Unknown(-1));
        assert_eq!(m.power_state, PowerState::Unknown);
        assert!(m.system_id.is_empty());
    }
}
