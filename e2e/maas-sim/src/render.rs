//! JSON renderings of simulator objects, in the shapes MAAS sends (see the recorded examples).
//! `agent_name` is never rendered: MAAS treats it as write-only.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::routes::API_PREFIX;
use crate::world::{DnsResource, Machine, Subnet, World};

/// Hardware type codes of node devices.
pub const HARDWARE_TYPES: [&str; 6] = ["Node", "CPU", "Memory", "Storage", "Network", "GPU"];

/// One node device (PCI) of a machine, as `nodes/{id}/devices/` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDevice {
    /// Device id, unique per machine.
    pub id: u64,
    /// Index into `HARDWARE_TYPES`.
    pub hardware_type: usize,
    /// PCI vendor id.
    pub vendor_id: String,
    /// PCI product id.
    pub product_id: String,
    /// Vendor name.
    pub vendor_name: String,
    /// Product name.
    pub product_name: String,
    /// Kernel driver.
    pub driver: String,
    /// PCI address.
    pub pci_address: String,
    /// NUMA node.
    pub numa_node: u32,
}

/// The machine's devices: its GPUs, a NIC and a storage controller.
pub fn node_devices(m: &Machine) -> Vec<NodeDevice> {
    let mut devices = vec![
        NodeDevice {
            id: 1,
            hardware_type: 4,
            vendor_id: "8086".into(),
            product_id: "1572".into(),
            vendor_name: "Intel Corporation".into(),
            product_name: "Ethernet Controller X710 for 10GbE SFP+".into(),
            driver: "i40e".into(),
            pci_address: "0000:01:00.0".into(),
            numa_node: 0,
        },
        NodeDevice {
            id: 2,
            hardware_type: 3,
            vendor_id: "144d".into(),
            product_id: "a808".into(),
            vendor_name: "Samsung Electronics Co Ltd".into(),
            product_name: "NVMe SSD Controller SM981/PM981/PM983".into(),
            driver: "nvme".into(),
            pci_address: "0000:02:00.0".into(),
            numa_node: 0,
        },
    ];
    for (i, g) in m.gpus.iter().enumerate() {
        devices.push(NodeDevice {
            id: 10 + i as u64,
            hardware_type: 5,
            vendor_id: g.vendor_id.clone(),
            product_id: g.product_id.clone(),
            vendor_name: g.vendor_name.clone(),
            product_name: g.product_name.clone(),
            driver: "nvidia".into(),
            pci_address: g.pci_address.clone().unwrap_or_default(),
            numa_node: g.numa_node,
        });
    }
    devices
}

/// JSON of one node device.
pub fn device_json(m: &Machine, d: &NodeDevice) -> Value {
    let bus = d
        .pci_address
        .split(':')
        .nth(1)
        .and_then(|b| u32::from_str_radix(b, 16).ok())
        .unwrap_or(0);
    json!({
        "id": d.id,
        "bus": 1,
        "bus_name": "PCIE",
        "hardware_type": d.hardware_type,
        "hardware_type_name": HARDWARE_TYPES.get(d.hardware_type).copied().unwrap_or("Node"),
        "vendor_id": d.vendor_id,
        "product_id": d.product_id,
        "vendor_name": d.vendor_name,
        "product_name": d.product_name,
        "commissioning_driver": d.driver,
        "bus_number": bus,
        "device_number": 0,
        "pci_address": d.pci_address,
        "numa_node": d.numa_node,
        "physical_blockdevice": null,
        "physical_interface": null,
        "system_id": m.system_id,
        "resource_uri": format!("{API_PREFIX}nodes/{}/devices/{}/", m.system_id, d.id),
    })
}

/// Zone JSON.
pub fn zone_json(world: &World, name: &str) -> Value {
    json!({
        "name": name,
        "description": "",
        "id": world.zone_id(name).unwrap_or(0) + 1,
        "resource_uri": format!("{API_PREFIX}zones/{name}/"),
    })
}

/// Resource pool JSON.
pub fn pool_json(world: &World, name: &str) -> Value {
    let id = world.pool_id(name).unwrap_or(0);
    let members: Vec<&Machine> = world.machines.values().filter(|m| m.pool == name).collect();
    json!({
        "name": name,
        "description": if id == 0 { "Default pool" } else { "" },
        "id": id,
        "machine_total_count": members.len(),
        "machine_ready_count": members.iter().filter(|m| m.status == crate::status::NodeStatus::Ready).count(),
        "resource_uri": format!("{API_PREFIX}resourcepool/{id}/"),
    })
}

/// Tag JSON.
pub fn tag_json(name: &str) -> Value {
    json!({
        "name": name,
        "definition": "",
        "comment": "",
        "kernel_opts": "",
        "resource_uri": format!("{API_PREFIX}tags/{name}/"),
    })
}

/// Domain JSON.
pub fn domain_json(world: &World, name: &str) -> Value {
    let id = world.domain_id(name).unwrap_or(0);
    let records = world
        .dnsresources
        .values()
        .filter(|d| d.domain == name)
        .count()
        + world
            .machines
            .values()
            .filter(|m| m.domain == name && !m.ip_addresses.is_empty())
            .count();
    json!({
        "authoritative": true,
        "ttl": null,
        "id": id,
        "name": name,
        "is_default": id == 0,
        "resource_record_count": records,
        "resource_uri": format!("{API_PREFIX}domains/{id}/"),
    })
}

/// DNS resource JSON (`ip_addresses` as address objects, as MAAS renders them).
pub fn dnsresource_json(d: &DnsResource) -> Value {
    let ips: Vec<Value> = d
        .ip_addresses
        .iter()
        .map(|ip| json!({"ip": ip, "alloc_type": 4, "alloc_type_name": "User reserved"}))
        .collect();
    json!({
        "id": d.id,
        "fqdn": d.fqdn(),
        "address_ttl": d.address_ttl,
        "ip_addresses": ips,
        "resource_records": [],
        "resource_uri": format!("{API_PREFIX}dnsresources/{}/", d.id),
    })
}

/// Boot resources JSON list from the image names.
pub fn boot_resources_json(world: &World) -> Vec<Value> {
    world
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| boot_resource_json(i + 1, image))
        .collect()
}

/// One boot resource.
pub fn boot_resource_json(id: usize, image: &str) -> Value {
    let uploaded = !image.starts_with("ubuntu/");
    json!({
        "id": id,
        "type": if uploaded { "Uploaded" } else { "Synced" },
        "name": image,
        "architecture": "amd64/generic",
        "subarches": "generic",
        "resource_uri": format!("{API_PREFIX}boot-resources/{id}/"),
    })
}

/// `version/` JSON.
pub fn version_json() -> Value {
    json!({
        "capabilities": [
            "networks-management",
            "static-ipaddresses",
            "ipv6-deployment-ubuntu",
            "devices-management",
            "storage-deployment-ubuntu",
            "network-deployment-ubuntu",
            "bridging-interface-ubuntu",
            "bridging-automatic-ubuntu",
            "authenticate-api",
        ],
        "version": "3.5.4",
        "subversion": "simulated",
    })
}

fn hardware_info(m: &Machine) -> Value {
    let cpu_model = if m.cpu_count >= 32 {
        "AMD EPYC 7543 32-Core Processor"
    } else {
        "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
    };
    json!({
        "system_vendor": "Simulated Systems",
        "system_product": "SIM-1000",
        "system_family": "Server",
        "system_version": "1.0",
        "system_sku": "SIM-SKU",
        "system_serial": format!("SN-{}", m.system_id),
        "cpu_model": cpu_model,
        "mainboard_vendor": "Simulated Systems",
        "mainboard_product": "SIM-MB",
        "mainboard_serial": format!("MB-{}", m.system_id),
        "mainboard_version": "1.0",
        "mainboard_firmware_vendor": "Simulated BIOS",
        "mainboard_firmware_date": "01/01/2024",
        "mainboard_firmware_version": "2.1",
        "chassis_vendor": "Simulated Systems",
        "chassis_type": "Rack Mount Chassis",
        "chassis_serial": format!("CH-{}", m.system_id),
        "chassis_version": "1.0",
    })
}

/// Subnet `index` of the machines (0 is the boot interface's), with the ids MAAS would give it.
fn subnet_json(subnet: &Subnet, index: usize) -> Value {
    let id = index + 1;
    json!({
        "id": id,
        "name": subnet.cidr(),
        "cidr": subnet.cidr(),
        "vlan": vlan_json(index),
        "gateway_ip": subnet.gateway().to_string(),
        "dns_servers": [],
        "space": "undefined",
        "resource_uri": format!("{API_PREFIX}subnets/{id}/"),
    })
}

/// The untagged VLAN of fabric `index`: each subnet of the machines is on a fabric of its own.
fn vlan_json(index: usize) -> Value {
    let id = 5001 + index;
    json!({
        "vid": 0, "mtu": 1500, "dhcp_on": index == 0, "external_dhcp": null, "relay_vlan": null,
        "id": id, "name": "untagged", "fabric": format!("fabric-{index}"), "fabric_id": index,
        "primary_rack": null, "secondary_rack": null, "space": "undefined",
        "resource_uri": format!("{API_PREFIX}vlans/{id}/"),
    })
}

/// Interface `eno<index + 1>` of a machine, on subnet `index`: its links carry the machine's
/// addresses inside that subnet (none before deployment, as MAAS shows an AUTO link).
fn interface_json(m: &Machine, subnet: &Subnet, index: usize) -> Value {
    let id = index + 1;
    let ips: Vec<&Ipv4Addr> = m
        .ip_addresses
        .iter()
        .filter(|ip| subnet.contains(**ip))
        .collect();
    let link = |link_id: usize, ip: Option<&Ipv4Addr>| {
        let mut link = json!({"id": link_id, "mode": "auto", "subnet": subnet_json(subnet, index)});
        if let Some(ip) = ip {
            link["ip_address"] = json!(ip.to_string());
        }
        link
    };
    let links: Vec<Value> = if ips.is_empty() {
        vec![link(id * 100, None)]
    } else {
        ips.iter()
            .enumerate()
            .map(|(i, ip)| link(id * 100 + i, Some(ip)))
            .collect()
    };
    json!({
        "id": id,
        "type": "physical",
        "name": format!("eno{id}"),
        "enabled": true,
        "mac_address": interface_mac(&m.mac_address, index),
        "vlan": vlan_json(index),
        "links": links,
        "discovered": null,
        "children": [],
        "parents": [],
        "tags": [],
        "params": "",
        "effective_mtu": 1500,
        "link_connected": true,
        "interface_speed": 10000,
        "link_speed": 10000,
        "vendor": "Intel Corporation",
        "product": "Ethernet Controller X710 for 10GbE SFP+",
        "firmware_version": "8.30",
        "system_id": m.system_id,
        "resource_uri": format!("{API_PREFIX}nodes/{}/interfaces/{id}/", m.system_id),
    })
}

/// The MAC of interface `index`: the machine's own for the boot interface, the next ones with
/// the fourth octet raised (`52:54:00:..` becomes `52:54:01:..`).
fn interface_mac(boot_mac: &str, index: usize) -> String {
    if index == 0 {
        return boot_mac.to_string();
    }
    let mut octets: Vec<String> = boot_mac.split(':').map(str::to_string).collect();
    if let Some(octet) = octets.get_mut(2) {
        let value = u8::from_str_radix(octet, 16).unwrap_or(0);
        *octet = format!("{:02x}", value.wrapping_add(index as u8));
    }
    octets.join(":")
}

fn block_devices(m: &Machine) -> Vec<Value> {
    m.disks
        .iter()
        .enumerate()
        .map(|(i, gb)| {
            let bytes = gb * 1_000_000_000;
            json!({
                "id": i + 1,
                "name": format!("nvme{i}n1"),
                "path": format!("/dev/disk/by-dname/nvme{i}n1"),
                "id_path": null,
                "type": "physical",
                "size": bytes,
                "block_size": 512,
                "available_size": bytes,
                "used_size": 0,
                "used_for": "Unused",
                "model": "SIM NVMe",
                "serial": format!("{}-{i}", m.system_id),
                "tags": ["ssd"],
                "partitions": [],
                "partition_table_type": null,
                "filesystem": null,
                "storage_pool": null,
                "uuid": null,
                "firmware_version": "1.0",
                "numa_node": 0,
                "system_id": m.system_id,
                "resource_uri": format!("{API_PREFIX}nodes/{}/blockdevices/{}/", m.system_id, i + 1),
            })
        })
        .collect()
}

fn numa_nodes(m: &Machine) -> Vec<Value> {
    let count = if m.gpus.iter().any(|g| g.numa_node > 0) || m.cpu_count >= 32 {
        2
    } else {
        1
    };
    let per_cores = m.cpu_count / count;
    (0..count)
        .map(|n| {
            let cores: Vec<u32> = (n * per_cores..(n + 1) * per_cores).collect();
            json!({"index": n, "cores": cores, "memory": m.memory / u64::from(count), "hugepages_set": []})
        })
        .collect()
}

/// Full machine JSON.
pub fn machine_json(world: &World, m: &Machine) -> Value {
    let disks = block_devices(m);
    let interfaces: Vec<Value> = world
        .subnets()
        .enumerate()
        .map(|(index, subnet)| interface_json(m, subnet, index))
        .collect();
    let domain_id = world.domain_id(&m.domain).unwrap_or(0);
    json!({
        "system_id": m.system_id,
        "hostname": m.hostname,
        "fqdn": m.fqdn(),
        "description": m.description,
        "domain": {
            "authoritative": true, "ttl": null, "is_default": domain_id == 0, "name": m.domain,
            "resource_record_count": 0, "id": domain_id,
            "resource_uri": format!("{API_PREFIX}domains/{domain_id}/"),
        },
        "status": m.status.code(),
        "status_name": m.status.label(),
        "status_message": m.status_message,
        "status_action": "",
        "power_state": m.power_state.as_str(),
        "power_type": "ipmi",
        "cpu_count": m.cpu_count,
        "cpu_speed": 2200,
        "memory": m.memory,
        "storage": m.storage_mb(),
        "swap_size": m.swap_size,
        "architecture": m.architecture,
        "osystem": m.osystem,
        "distro_series": m.distro_series,
        "hwe_kernel": m.hwe_kernel,
        "min_hwe_kernel": "",
        "ephemeral_deploy": m.ephemeral_deploy,
        "netboot": !matches!(m.status, crate::status::NodeStatus::Deployed),
        "locked": false,
        "node_type": 0,
        "node_type_name": "Machine",
        "zone": zone_json(world, &m.zone),
        "pool": pool_summary(world, &m.pool),
        "tag_names": m.tags,
        "ip_addresses": m.ip_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "owner": m.owner,
        "owner_data": m.owner_data,
        "workload_annotations": m.owner_data,
        "hardware_info": hardware_info(m),
        "boot_interface": interfaces.first(),
        "interface_set": interfaces,
        "blockdevice_set": disks,
        "physicalblockdevice_set": disks,
        "virtualblockdevice_set": [],
        "boot_disk": disks.first().cloned().unwrap_or(Value::Null),
        "numanode_set": numa_nodes(m),
        "special_filesystems": [],
        "volume_groups": [],
        "raids": [],
        "bcaches": [],
        "cache_sets": [],
        "pod": null,
        "address_ttl": null,
        "disable_ipv4": false,
        "bios_boot_method": "uefi",
        "default_gateways": {
            "ipv4": {"gateway_ip": world.subnet.gateway().to_string(), "link_id": null},
            "ipv6": {"gateway_ip": null, "link_id": null},
        },
        "commissioning_status": 2,
        "commissioning_status_name": "Passed",
        "testing_status": 2,
        "testing_status_name": "Passed",
        "cpu_test_status": 2,
        "cpu_test_status_name": "Passed",
        "memory_test_status": 2,
        "memory_test_status_name": "Passed",
        "storage_test_status": 2,
        "storage_test_status_name": "Passed",
        "network_test_status": 2,
        "network_test_status_name": "Passed",
        "other_test_status": -1,
        "other_test_status_name": "Unknown",
        "interface_test_status": -1,
        "interface_test_status_name": "Unknown",
        "current_commissioning_result_id": 1,
        "current_testing_result_id": 2,
        "current_installation_result_id": null,
        "resource_uri": format!("{API_PREFIX}machines/{}/", m.system_id),
    })
}

fn pool_summary(world: &World, name: &str) -> Value {
    let id = world.pool_id(name).unwrap_or(0);
    json!({
        "name": name,
        "description": if id == 0 { "Default pool" } else { "" },
        "id": id,
        "resource_uri": format!("{API_PREFIX}resourcepool/{id}/"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    #[test]
    fn a_machine_on_two_subnets_has_a_boot_interface_and_a_data_interface() {
        let mut inventory = Inventory::generate(2, 0);
        inventory.extra_subnets = vec!["10.21.0.0/24".into()];
        let mut world = World::from_inventory(&inventory).unwrap();
        let ids = world.predeploy("admin", 2);
        let m = &world.machines[&ids[1]];
        let v = machine_json(&world, m);
        let ips: Vec<&str> = v["ip_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ip| ip.as_str().unwrap())
            .collect();
        assert_eq!(
            ips,
            ["10.20.0.11", "10.21.0.11"],
            "the boot interface's address first"
        );
        let nics = v["interface_set"].as_array().unwrap();
        assert_eq!(nics.len(), 2);
        assert_eq!(v["boot_interface"]["name"], "eno1");
        for (nic, (name, cidr, ip, fabric)) in nics.iter().zip([
            ("eno1", "10.20.0.0/16", "10.20.0.11", "fabric-0"),
            ("eno2", "10.21.0.0/24", "10.21.0.11", "fabric-1"),
        ]) {
            assert_eq!(nic["name"], name);
            let link = &nic["links"][0];
            assert_eq!(link["ip_address"], ip);
            assert_eq!(link["subnet"]["cidr"], cidr);
            assert_eq!(link["subnet"]["vlan"]["fabric"], fabric);
        }
        assert_ne!(nics[0]["mac_address"], nics[1]["mac_address"]);
        // Released, the addresses go and the links stay, without an address.
        let idle = &world.machines[&ids[0]];
        let mut idle = idle.clone();
        idle.ip_addresses.clear();
        let v = machine_json(&world, &idle);
        assert!(
            v["interface_set"][1]["links"][0]
                .get("ip_address")
                .is_none()
        );
    }

    #[test]
    fn machine_json_has_maas_keys_and_hides_agent_name() {
        let mut world = World::from_inventory(&Inventory::generate(1, 1)).unwrap();
        for m in world.machines.values_mut() {
            m.agent_name = Some("secret-agent".into());
        }
        for m in world.machines.values() {
            let v = machine_json(&world, m);
            for key in [
                "system_id",
                "hostname",
                "fqdn",
                "status",
                "status_name",
                "status_message",
                "power_state",
                "cpu_count",
                "memory",
                "storage",
                "architecture",
                "osystem",
                "distro_series",
                "zone",
                "pool",
                "tag_names",
                "ip_addresses",
                "owner",
                "owner_data",
                "hardware_info",
                "interface_set",
                "numanode_set",
                "resource_uri",
            ] {
                assert!(v.get(key).is_some(), "missing {key}");
            }
            assert_eq!(v["hardware_info"].as_object().unwrap().len(), 18);
            assert!(!v.to_string().contains("secret-agent"));
            assert_eq!(v["status"], 4);
            assert_eq!(v["status_name"], "Ready");
        }
    }

    #[test]
    fn gpu_devices_are_listed() {
        let world = World::from_inventory(&Inventory::generate(0, 1)).unwrap();
        let m = world.machines.values().next().unwrap();
        let gpus: Vec<NodeDevice> = node_devices(m)
            .into_iter()
            .filter(|d| d.hardware_type == 5)
            .collect();
        assert_eq!(gpus.len(), 4);
        let v = device_json(m, &gpus[0]);
        assert_eq!(v["vendor_id"], "10de");
        assert_eq!(v["hardware_type_name"], "GPU");
        assert_eq!(v["pci_address"], "0000:17:00.0");
    }
}
