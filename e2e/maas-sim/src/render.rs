//! JSON renderings of simulator objects, in the shapes MAAS sends (see the recorded examples).
//! `agent_name` is never rendered: MAAS treats it as write-only.

use serde_json::{Value, json};

use crate::routes::API_PREFIX;
use crate::world::{DnsResource, Machine, World};

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

fn subnet_json(world: &World) -> Value {
    json!({
        "id": 1,
        "name": world.subnet.cidr(),
        "cidr": world.subnet.cidr(),
        "vlan": vlan_json(),
        "gateway_ip": world.subnet.gateway().to_string(),
        "dns_servers": [],
        "space": "undefined",
        "resource_uri": format!("{API_PREFIX}subnets/1/"),
    })
}

fn vlan_json() -> Value {
    json!({
        "vid": 0, "mtu": 1500, "dhcp_on": true, "external_dhcp": null, "relay_vlan": null,
        "id": 5001, "name": "untagged", "fabric": "fabric-0", "fabric_id": 0,
        "primary_rack": null, "secondary_rack": null, "space": "undefined",
        "resource_uri": format!("{API_PREFIX}vlans/5001/"),
    })
}

fn interface_json(world: &World, m: &Machine) -> Value {
    let links: Vec<Value> = if m.ip_addresses.is_empty() {
        vec![json!({"id": 1, "mode": "auto", "subnet": subnet_json(world)})]
    } else {
        m.ip_addresses
            .iter()
            .map(|ip| json!({"id": 1, "mode": "auto", "ip_address": ip.to_string(), "subnet": subnet_json(world)}))
            .collect()
    };
    json!({
        "id": 1,
        "type": "physical",
        "name": "eno1",
        "enabled": true,
        "mac_address": m.mac_address,
        "vlan": vlan_json(),
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
        "resource_uri": format!("{API_PREFIX}nodes/{}/interfaces/1/", m.system_id),
    })
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
    let interface = interface_json(world, m);
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
        "interface_set": [interface.clone()],
        "boot_interface": interface,
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
