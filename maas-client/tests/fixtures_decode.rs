//! Every machine and node object recorded from real MAAS decodes, and the decoded fields agree
//! with the raw JSON. The recordings live outside the project; without them the tests skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use maas_client::{
    BootResource, DnsResource, Domain, Machine, MachineStatus, NodeDevice, PowerState,
};
use serde_json::Value;

fn fixture(name: &str) -> Option<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/maas");
    let file = dir.join(name);
    match std::fs::read_to_string(&file) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap()),
        Err(_) => {
            println!(
                "skipping: recorded MAAS fixtures not found at {}",
                file.display()
            );
            None
        }
    }
}

fn strings(raw: &Value) -> Vec<&str> {
    raw.as_array()
        .map(|items| items.iter().map(|t| t.as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn object_len(raw: &Value) -> usize {
    raw.as_object().map_or(0, serde_json::Map::len)
}

/// The boot interface and every link's subnet, space and fabric, as MAAS sent them.
fn check_interfaces(name: &str, machine: &Machine, raw: &Value) {
    assert_eq!(
        machine.boot_interface.as_ref().map(|i| i.name.as_str()),
        raw["boot_interface"]["name"].as_str(),
        "{name}: boot interface"
    );
    for (nic, raw_nic) in machine
        .interface_set
        .iter()
        .zip(raw["interface_set"].as_array().into_iter().flatten())
    {
        for (link, raw_link) in nic
            .links
            .iter()
            .zip(raw_nic["links"].as_array().into_iter().flatten())
        {
            assert_eq!(
                link.ip_address.as_deref(),
                raw_link["ip_address"].as_str(),
                "{name}"
            );
            let Some(subnet) = &link.subnet else {
                assert!(raw_link["subnet"].is_null(), "{name}");
                continue;
            };
            let raw_subnet = &raw_link["subnet"];
            assert_eq!(subnet.cidr, raw_subnet["cidr"].as_str().unwrap(), "{name}");
            assert_eq!(
                subnet.space,
                raw_subnet["space"].as_str().unwrap_or(""),
                "{name}"
            );
            assert_eq!(
                subnet.vlan.as_ref().map(|v| v.fabric.as_str()),
                raw_subnet["vlan"]["fabric"].as_str(),
                "{name}: fabric"
            );
        }
    }
}

/// Checks one decoded machine against its raw JSON, field by field. Controllers in node listings
/// lack some machine fields; those must decode to the defaults.
fn check_machine(name: &str, raw: &Value) -> Machine {
    let machine: Machine = serde_json::from_value(raw.clone())
        .unwrap_or_else(|err| panic!("{name} does not decode: {err}"));
    assert_eq!(
        machine.system_id,
        raw["system_id"].as_str().unwrap(),
        "{name}"
    );
    assert_eq!(
        machine.hostname,
        raw["hostname"].as_str().unwrap(),
        "{name}"
    );
    assert_eq!(machine.fqdn, raw["fqdn"].as_str().unwrap_or(""), "{name}");
    match raw["status"].as_i64() {
        Some(code) => {
            assert_eq!(machine.status.code(), code, "{name}");
            assert!(
                !matches!(machine.status, MachineStatus::Unknown(_)),
                "{name}"
            );
            assert_eq!(
                machine.status.label(),
                raw["status_name"].as_str().unwrap(),
                "{name}"
            );
        }
        None => assert_eq!(machine.status, MachineStatus::Unknown(-1), "{name}"),
    }
    let power = raw["power_state"].as_str().unwrap_or("unknown");
    assert_eq!(machine.power_state.as_str(), power, "{name}");
    assert!(
        !matches!(machine.power_state, PowerState::Other(_)),
        "{name}"
    );
    assert_eq!(
        u64::from(machine.cpu_count),
        raw["cpu_count"].as_u64().unwrap_or(0),
        "{name}"
    );
    assert_eq!(
        machine.memory,
        raw["memory"].as_u64().unwrap_or(0),
        "{name}"
    );
    assert_eq!(
        machine.storage,
        raw["storage"].as_f64().unwrap_or(0.0),
        "{name}"
    );
    assert_eq!(
        machine.architecture,
        raw["architecture"].as_str().unwrap_or(""),
        "{name}"
    );
    assert_eq!(
        machine.zone.as_deref(),
        raw["zone"]["name"].as_str(),
        "{name}"
    );
    assert_eq!(
        machine.pool.as_deref(),
        raw["pool"]["name"].as_str(),
        "{name}"
    );
    assert_eq!(machine.tag_names, strings(&raw["tag_names"]), "{name}");
    assert_eq!(
        machine.ip_addresses,
        strings(&raw["ip_addresses"]),
        "{name}"
    );
    let owner = raw["owner"].as_str().filter(|s| !s.is_empty());
    assert_eq!(machine.owner.as_deref(), owner, "{name}");
    assert_eq!(
        machine.owner_data.len(),
        object_len(&raw["owner_data"]),
        "{name}"
    );
    assert_eq!(
        machine.hardware_info.len(),
        object_len(&raw["hardware_info"]),
        "{name}"
    );
    let interfaces = raw["interface_set"].as_array().map_or(0, Vec::len);
    assert_eq!(machine.interface_set.len(), interfaces, "{name}");
    check_interfaces(name, &machine, raw);
    machine
}

#[test]
fn every_recorded_machine_decodes() {
    let Some(all) = fixture("maas-examples-machines.json") else {
        return;
    };
    let mut decoded = 0;
    for (name, raw) in all.as_object().unwrap() {
        if raw.get("system_id").is_none() {
            // Placeholder entries hold only a message, not a machine.
            continue;
        }
        check_machine(name, raw);
        decoded += 1;
    }
    assert_eq!(
        decoded,
        all.as_object().unwrap().len() - 1,
        "only the placeholder is skipped"
    );
    assert!(decoded >= 19);
}

#[test]
fn every_recorded_node_decodes() {
    let Some(all) = fixture("maas-examples-nodes.json") else {
        return;
    };
    let mut decoded = 0;
    for (name, raw) in all.as_object().unwrap() {
        let candidates: Vec<&Value> = match raw {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in candidates {
            // Node objects are the ones with a system id and a host name (not block devices,
            // interfaces or results, which carry a system_id too).
            if item.get("hostname").is_some() && item.get("system_id").is_some() {
                let machine = check_machine(name, item);
                if name == "set-owner-data" {
                    assert_eq!(machine.owner_data["somekey"], "somevalue");
                }
                decoded += 1;
            }
        }
    }
    assert!(decoded >= 6, "decoded {decoded} node objects");

    let device: NodeDevice =
        serde_json::from_value(all["node-devices-read-by-id"].clone()).unwrap();
    assert_eq!(device.vendor_id, "1af4");
    assert_eq!(device.pci_address, "0000:00:06.0");
    assert_eq!(device.numa_node, Some(0));
    let power: maas_client::PowerStateReply =
        serde_json::from_value(all["query-power-state"].clone()).unwrap();
    assert_eq!(power.state, PowerState::On);
}

#[test]
fn recorded_dns_resources_domains_and_boot_resources_decode() {
    if let Some(dns) = fixture("maas-examples-dnsresources.json") {
        let listed: Vec<DnsResource> =
            serde_json::from_value(dns["dnsresources-read"].clone()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].fqdn, "divine-buck.ubnt");
        assert_eq!(listed[0].id, Some(-1));
        assert!(listed[0].ip_addresses.is_empty());
        for key in [
            "dnsresources-create",
            "dnsresources-read-by-id",
            "dnsresources-update",
        ] {
            let one: DnsResource = serde_json::from_value(dns[key].clone()).unwrap();
            assert_eq!(one.id, Some(1), "{key}");
        }
    }
    if let Some(domains) = fixture("maas-examples-domains.json") {
        let listed: Vec<Domain> = serde_json::from_value(domains["domains-read"].clone()).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed.iter().filter(|d| d.is_default).count(), 1);
        let set_default: Domain =
            serde_json::from_value(domains["domains-set-default"].clone()).unwrap();
        assert!(set_default.is_default);
    }
    if let Some(boot) = fixture("maas-examples-boot-resources.json") {
        let listed: Vec<BootResource> =
            serde_json::from_value(boot["boot-res-read"].clone()).unwrap();
        assert_eq!(
            listed.len(),
            boot["boot-res-read"].as_array().unwrap().len()
        );
        assert!(
            listed
                .iter()
                .any(|r| r.name == "ubuntu/bionic" && r.subarches.is_some())
        );
        assert!(listed.iter().all(|r| r.kind == "Synced"));
    }
}
