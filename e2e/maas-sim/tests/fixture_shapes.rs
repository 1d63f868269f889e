#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The simulator's JSON has the shape of JSON recorded from MAAS itself: every key MAAS always
//! sends, with values of the same JSON type, and a describe/ document whose handlers, paths and
//! actions agree with a recorded one. The recordings are read in place from the shared fixtures
//! folder beside the project; without it the tests say so and pass.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> Option<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/maas");
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap()),
        Err(_) => {
            println!(
                "SKIPPED: recorded MAAS fixture {} is absent",
                path.display()
            );
            None
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key present in all `recorded` objects is in `ours`, with a compatible type.
fn assert_same_shape(what: &str, recorded: &[&Value], ours: &Value) {
    let mut common: Option<BTreeSet<String>> = None;
    for r in recorded {
        let keys: BTreeSet<String> = r.as_object().unwrap().keys().cloned().collect();
        common = Some(match common {
            None => keys,
            Some(c) => c.intersection(&keys).cloned().collect(),
        });
    }
    let ours = ours.as_object().unwrap();
    for key in common.unwrap_or_default() {
        let Some(value) = ours.get(&key) else {
            panic!("{what}: missing key {key}")
        };
        let recorded_kinds: BTreeSet<&str> = recorded
            .iter()
            .map(|r| kind(&r[&key]))
            .filter(|k| *k != "null")
            .collect();
        if value.is_null() || recorded_kinds.is_empty() {
            continue;
        }
        assert!(
            recorded_kinds.contains(kind(value)),
            "{what}.{key}: {} where MAAS sends {recorded_kinds:?}",
            kind(value)
        );
    }
}

#[tokio::test]
async fn machine_and_device_json_match_recorded_maas() {
    let (Some(machines), Some(nodes)) = (
        fixture("maas-examples-machines.json"),
        fixture("maas-examples-nodes.json"),
    ) else {
        return;
    };
    let recorded: Vec<&Value> = machines
        .as_object()
        .unwrap()
        .values()
        .filter(|m| m.get("system_id").is_some())
        .collect();
    assert!(recorded.len() > 5);
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let ours = c.get("machines/", &[]).await.json();
    for m in ours.as_array().unwrap() {
        assert_same_shape("machine", &recorded, m);
    }
    // A deployed machine too, with IPs and owner data.
    let id = c.allocate(&[("tags", "gpu")]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.post(&format!("machines/{id}/"), "set_owner_data", &[("a", "b")])
        .await;
    c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_same_shape(
        "deployed machine",
        &recorded,
        &c.wait_status(&id, "Deployed").await,
    );

    let device = &nodes["node-devices-read-by-id"];
    let ours = c
        .get(&format!("nodes/{id}/devices/"), &[("hardware_type", "GPU")])
        .await
        .json();
    let first = &ours.as_array().unwrap()[0];
    assert_same_shape("node device", &[device], first);
    let power = &nodes["query-power-state"];
    let ours = c
        .get(&format!("machines/{id}/"), &[("op", "query_power_state")])
        .await
        .json();
    assert_same_shape("power state", &[power], &ours);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn catalogue_json_matches_recorded_maas() {
    let (Some(dns), Some(domains), Some(boot)) = (
        fixture("maas-examples-dnsresources.json"),
        fixture("maas-examples-domains.json"),
        fixture("maas-examples-boot-resources.json"),
    ) else {
        return;
    };
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let created = c
        .send(
            "POST",
            "dnsresources/",
            &[],
            Some(&[("fqdn", "x.maas"), ("ip_addresses", "10.1.1.1")]),
        )
        .await
        .json();
    assert_same_shape(
        "dnsresource",
        &[&dns["dnsresources-create"], &dns["dnsresources-read-by-id"]],
        &created,
    );
    let ours = c.get("domains/", &[]).await.json();
    let recorded: Vec<&Value> = domains["domains-read"].as_array().unwrap().iter().collect();
    assert_same_shape("domain", &recorded, &ours[0]);
    let ours = c.get("boot-resources/", &[]).await.json();
    let recorded: Vec<&Value> = boot["boot-res-read"].as_array().unwrap().iter().collect();
    for b in ours.as_array().unwrap() {
        assert_same_shape("boot resource", &recorded, b);
    }
    sim.shutdown().await.unwrap();
}

/// Actions MAAS added after the 2.2 recording.
const NEWER_ACTIONS: &[&str] = &["set_workload_annotations"];

#[tokio::test]
async fn describe_agrees_with_a_recorded_document() {
    let Some(recorded) = fixture("python-libmaas-api22-describe.json") else {
        return;
    };
    let sim = start_default().await;
    let ours: Value = reqwest::get(format!("{}describe/", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let top: BTreeSet<&String> = ours.as_object().unwrap().keys().collect();
    assert_eq!(top, recorded.as_object().unwrap().keys().collect());
    let mut compared = 0;
    for r in ours["resources"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let Some(rec) = recorded["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
        else {
            continue;
        };
        let side = if r["auth"].is_null() { "anon" } else { "auth" };
        let (o, rr) = (&r[side], &rec[side]);
        assert!(
            !rr.is_null(),
            "{name}: MAAS serves it {}",
            if side == "auth" {
                "anonymously"
            } else {
                "with auth"
            }
        );
        let okeys: BTreeSet<&String> = o.as_object().unwrap().keys().collect();
        assert_eq!(okeys, rr.as_object().unwrap().keys().collect(), "{name}");
        assert_eq!(o["path"], rr["path"], "{name}");
        assert_eq!(o["params"], rr["params"], "{name}");
        for a in o["actions"].as_array().unwrap() {
            let known = rr["actions"].as_array().unwrap().iter().any(|x| {
                x["name"] == a["name"]
                    && x["method"] == a["method"]
                    && x["op"] == a["op"]
                    && x["restful"] == a["restful"]
            });
            assert!(
                known || NEWER_ACTIONS.contains(&a["name"].as_str().unwrap()),
                "{name}: {a}"
            );
        }
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} handlers compared");
    sim.shutdown().await.unwrap();
}
