//! Translation from the client's MAAS machine to the facts the decisions read.

use maas_client::{Machine, PowerState};

use crate::domain::maas_machine::ObservedMachine;
use crate::domain::maas_machine::Power;

/// The decision's view of a MAAS machine.
pub fn observe(m: &Machine) -> ObservedMachine {
    ObservedMachine {
        system_id: m.system_id.clone(),
        status_code: m.status.code(),
        status_name: if m.status_name.is_empty() {
            m.status.label().to_string()
        } else {
            m.status_name.clone()
        },
        power: match m.power_state {
            PowerState::On => Power::On,
            PowerState::Off => Power::Off,
            _ => Power::Unknown,
        },
        zone: m.zone.clone(),
        hostname: m.hostname.clone(),
        fqdn: m.fqdn.clone(),
        ip_addresses: m.ip_addresses.clone(),
        interfaces: interfaces(m),
        owner_data: m.owner_data.clone(),
        cpu_count: m.cpu_count,
        memory_mib: m.memory,
        storage_gb: m.storage_gb(),
    }
}

/// The machine's interfaces with the addresses MAAS linked to them. The boot interface is told
/// by id (names repeat on no machine, but ids are what MAAS compares).
pub fn interfaces(m: &Machine) -> Vec<capmaas_api::MachineInterface> {
    let boot = m.boot_interface.as_ref().map(|b| b.id);
    m.interface_set
        .iter()
        .map(|nic| capmaas_api::MachineInterface {
            name: nic.name.clone(),
            boot: boot == Some(nic.id),
            addresses: nic
                .links
                .iter()
                .filter_map(|link| {
                    let address = link.ip_address.clone().filter(|ip| !ip.trim().is_empty())?;
                    let subnet = link.subnet.clone().unwrap_or_default();
                    Some(capmaas_api::InterfaceAddress {
                        address,
                        subnet: subnet.cidr,
                        subnet_name: subnet.name,
                        space: subnet.space,
                        fabric: subnet.vlan.map(|v| v.fabric).unwrap_or_default(),
                    })
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::MaasPhase;

    #[test]
    fn interfaces_keep_their_addresses_networks_and_the_boot_mark() {
        let link = |ip: Option<&str>, cidr: &str, space: &str, fabric: &str| {
            let mut link = serde_json::json!({"id": 1, "mode": "auto",
                "subnet": {"name": cidr, "cidr": cidr, "space": space, "vlan": {"fabric": fabric}}});
            if let Some(ip) = ip {
                link["ip_address"] = serde_json::json!(ip);
            }
            link
        };
        let m: Machine = serde_json::from_value(serde_json::json!({
            "boot_interface": {"id": 2, "name": "eno1"},
            "interface_set": [
                {"id": 2, "name": "eno1", "links": [link(Some("10.20.0.5"), "10.20.0.0/16", "undefined", "fabric-0")]},
                {"id": 3, "name": "eno2", "links": [link(Some("10.21.0.5"), "10.21.0.0/24", "data", "fabric-1"), link(None, "10.22.0.0/24", "x", "y")]},
            ]
        }))
        .unwrap();
        let nics = interfaces(&m);
        assert_eq!(nics.len(), 2);
        assert!(nics[0].boot && !nics[1].boot);
        assert_eq!(nics[0].addresses[0].address, "10.20.0.5");
        assert_eq!(
            nics[1].addresses.len(),
            1,
            "a link without an address is no address"
        );
        let data = &nics[1].addresses[0];
        assert_eq!(
            (
                data.subnet.as_str(),
                data.space.as_str(),
                data.fabric.as_str()
            ),
            ("10.21.0.0/24", "data", "fabric-1")
        );
    }

    #[test]
    fn maps_status_power_and_owner_data() {
        let m: Machine = serde_json::from_value(serde_json::json!({
            "system_id": "s1", "status": 11, "status_name": "Failed deployment",
            "power_state": "off", "zone": {"name": "az2"}, "hostname": "h", "fqdn": "h.maas",
            "ip_addresses": ["10.1.1.1"], "owner_data": {"capmaas-uid": "u"}
        }))
        .unwrap();
        let o = observe(&m);
        assert_eq!(o.phase(), MaasPhase::FailedDeployment);
        assert_eq!(o.power, Power::Off);
        assert_eq!(o.zone.as_deref(), Some("az2"));
        assert_eq!(o.owner_data["capmaas-uid"], "u");
        let unknown: Machine =
            serde_json::from_value(serde_json::json!({"power_state": "error"})).unwrap();
        assert_eq!(observe(&unknown).power, Power::Unknown);
        assert_eq!(observe(&unknown).status_name, "Unknown");
    }
}

/// The GPU inventory for `status.hardware.gpus` from MAAS node devices.
pub fn gpu_devices(devices: &[maas_client::NodeDevice]) -> Vec<capmaas_api::GpuDevice> {
    let non_empty = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    devices
        .iter()
        .map(|d| capmaas_api::GpuDevice {
            vendor_id: non_empty(&d.vendor_id),
            vendor_name: non_empty(&d.vendor_name),
            product_id: non_empty(&d.product_id),
            product_name: non_empty(&d.product_name),
            pci_address: non_empty(&d.pci_address),
            numa_node: d.numa_node.and_then(|n| i32::try_from(n).ok()),
        })
        .collect()
}

#[cfg(test)]
mod gpu_tests {
    use super::*;

    #[test]
    fn maps_node_devices() {
        let d: maas_client::NodeDevice = serde_json::from_value(serde_json::json!({
            "id": 1, "system_id": "s", "vendor_id": "10de", "product_id": "20b5",
            "vendor_name": "NVIDIA Corporation", "product_name": "GA100", "pci_address": "0000:3b:00.0",
            "numa_node": 1
        }))
        .unwrap();
        let g = gpu_devices(&[d]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].vendor_id.as_deref(), Some("10de"));
        assert_eq!(g[0].numa_node, Some(1));
    }
}
