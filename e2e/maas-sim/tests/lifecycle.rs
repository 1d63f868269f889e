#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The machine lifecycle over HTTP, with both signature methods: allocate with constraints,
//! owner data, deploy with user data, timed transitions, AUTO IPs, release with erase.

mod common;

use common::*;
use maas_sim::{FaultConfig, FaultRule, SimConfig};
use serde_json::json;

fn timed() -> SimConfig {
    SimConfig {
        machines: 8,
        gpu_machines: 2,
        deploy_seconds: 0.3,
        release_seconds: Some(0.2),
        erase_seconds: Some(0.4),
        ..Default::default()
    }
}

async fn full_lifecycle(c: &Raw, sim: &maas_sim::SimHandle) {
    let r = c
        .allocate(&[
            ("cpu_count", "32"),
            ("mem", "65536"),
            ("tags", "gpu"),
            ("tags", "nvidia"),
            ("devices", "vendor_id=10de,product_name=A100"),
            ("storage", "root:500,1000"),
            ("agent_name", "capmaas:uid-1"),
            ("comment", "test"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    let id = m["system_id"].as_str().unwrap().to_string();
    assert_eq!(m["status_name"], "Allocated");
    assert_eq!(m["status"], 10);
    assert!(m.get("agent_name").is_none());
    assert_eq!(m["ip_addresses"], json!([]));

    let found = c
        .get("machines/", &[("agent_name", "capmaas:uid-1")])
        .await
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["system_id"], id.as_str());
    assert_eq!(
        c.get("machines/", &[("agent_name", "other")]).await.json(),
        json!([])
    );

    let gpus = c
        .get(&format!("nodes/{id}/devices/"), &[("hardware_type", "gpu")])
        .await
        .json();
    assert!(!gpus.as_array().unwrap().is_empty());
    assert!(
        gpus.as_array()
            .unwrap()
            .iter()
            .all(|d| d["vendor_id"] == "10de"
                && d["product_name"].as_str().unwrap().contains("A100"))
    );

    let r = c
        .post(
            &format!("machines/{id}/"),
            "set_owner_data",
            &[("capmaas-uid", "uid-1"), ("capmaas-name", "m1")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["owner_data"],
        json!({"capmaas-uid": "uid-1", "capmaas-name": "m1"})
    );

    let user_data = "#cloud-config\nhostname: x\n";
    let r = c
        .post(
            &format!("machines/{id}/"),
            "deploy",
            &[
                ("distro_series", "ubuntu/jammy"),
                ("user_data", &b64(user_data)),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status_name"], "Deploying");
    assert_eq!(m["power_state"], "on");
    assert_eq!(m["ip_addresses"].as_array().unwrap().len(), 1);
    let m = c.wait_status(&id, "Deployed").await;
    assert_eq!(m["osystem"], "ubuntu");
    assert_eq!(m["distro_series"], "jammy");
    let ip = m["ip_addresses"][0].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.20."));
    let again = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (
            409,
            "Can't deploy a machine that is in the 'Deployed' state"
        )
    );
    let power = c
        .get(&format!("machines/{id}/"), &[("op", "query_power_state")])
        .await;
    assert_eq!(power.json(), json!({"state": "on"}));
    assert_eq!(
        sim.state().machine(&id).unwrap().user_data.as_deref(),
        Some(user_data)
    );

    let r = c
        .post(
            &format!("machines/{id}/"),
            "release",
            &[("erase", "true"), ("quick_erase", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status_name"], "Disk erasing");
    // As in MAAS, the owner and the owner data stay until the machine is Ready.
    assert_eq!(
        m["owner_data"],
        json!({"capmaas-uid": "uid-1", "capmaas-name": "m1"})
    );
    assert_eq!(m["owner"], "admin");
    let m = c.wait_status(&id, "Ready").await;
    assert_eq!(m["power_state"], "off");
    assert_eq!(m["owner_data"], json!({}));
    assert!(m["owner"].is_null());
    assert_eq!(m["ip_addresses"], json!([]));
    assert_eq!(
        c.get("machines/", &[("agent_name", "capmaas:uid-1")])
            .await
            .json(),
        json!([])
    );
    // Release of a Ready machine is a 200 no-op.
    let r = c.post(&format!("machines/{id}/"), "release", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status_name"], "Ready");
}

#[tokio::test]
async fn lifecycle_with_plaintext() {
    let sim = start(timed()).await;
    full_lifecycle(&Raw::new(&sim), &sim).await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn lifecycle_with_hmac_sha1() {
    let sim = start(timed()).await;
    let c = Raw::new(&sim).hmac();
    full_lifecycle(&c, &sim).await;
    // The HMAC signature covers the query string too.
    let r = c
        .get("machines/", &[("zone", "az1"), ("status", "ready")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["zone"]["name"] == "az1")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn release_without_erase_abort_and_broken() {
    let sim = start(SimConfig {
        deploy_seconds: 30.0,
        release_seconds: Some(0.2),
        ..timed()
    })
    .await;
    let c = Raw::new(&sim);
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(r.json()["status_name"], "Deploying");
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            409,
            "Can't deploy a machine that is in the 'Deploying' state"
        )
    );
    let r = c.post(&format!("machines/{id}/"), "abort", &[]).await;
    assert_eq!(r.json()["status_name"], "Allocated");
    // Aborting powered the machine off: MAAS completes such a release at once.
    let r = c.post(&format!("machines/{id}/"), "release", &[]).await;
    assert_eq!(r.json()["status_name"], "Ready");
    assert!(r.json()["owner"].is_null());
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.post(&format!("machines/{id}/"), "power_on", &[]).await;
    let r = c.post(&format!("machines/{id}/"), "release", &[]).await;
    assert_eq!(r.json()["status_name"], "Releasing");
    c.wait_status(&id, "Ready").await;
    // Only the owner may mark a machine broken: on an unowned one even the admin gets 403.
    let r = c
        .post(
            &format!("machines/{id}/"),
            "mark_broken",
            &[("comment", "x")],
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(
            &format!("machines/{id}/"),
            "mark_broken",
            &[("comment", "bad disk")],
        )
        .await;
    assert_eq!(r.json()["status_name"], "Broken");
    assert_eq!(r.json()["status_message"], "bad disk");
    let r = c.allocate(&[("system_id", &id)]).await;
    assert_eq!(r.status, 409);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn owner_data_only_by_owner() {
    let bob_key = "bobconsumer:bobtoken:bobsecret";
    let sim = start(SimConfig {
        users: vec![maas_sim::SimUser {
            username: "bob".into(),
            api_key: bob_key.into(),
        }],
        ..timed()
    })
    .await;
    let admin = Raw::new(&sim);
    let bob = Raw::with_key(&sim, bob_key);
    let id = admin.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = bob
        .post(&format!("machines/{id}/"), "set_owner_data", &[("k", "v")])
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = bob.post(&format!("machines/{id}/"), "release", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let mine = bob.allocate(&[]).await.json();
    assert_eq!(mine["owner"], "bob");
    let r = bob
        .post(
            &format!("machines/{}/", mine["system_id"].as_str().unwrap()),
            "set_workload_annotations",
            &[("k", "v")],
        )
        .await;
    assert_eq!(r.json()["owner_data"], json!({"k": "v"}));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn injected_faults() {
    let sim = start(timed()).await;
    let c = Raw::new(&sim);
    let rule = FaultRule::on;
    let mut busy = rule("machines:allocate");
    busy.fail_next = 1;
    busy.status = 409;
    busy.retry_after = Some(5);
    let mut unavailable = rule("machine:read");
    unavailable.fail_next = 2;
    unavailable.retry_after = Some(10);
    let mut reset = rule("zones:read");
    reset.reset_next = 1;
    let set: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/_sim/faults", sim.addr()))
        .json(&FaultConfig {
            rules: vec![busy, unavailable, reset],
            fail_next_deploys: 1,
            ..Default::default()
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["applied"], true);

    let r = c.allocate(&[]).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.headers["retry-after"], "5");
    let id = {
        let r = c.allocate(&[]).await;
        assert_eq!(r.status, 200);
        r.json()["system_id"].as_str().unwrap().to_string()
    };
    for _ in 0..2 {
        let r = c.get(&format!("machines/{id}/"), &[]).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.headers["retry-after"], "10");
    }
    assert_eq!(c.get(&format!("machines/{id}/"), &[]).await.status, 200);

    let url = format!("{}/MAAS/api/2.0/zones/", c.base);
    let header = c.auth_header("GET", &url, &[], &fresh_nonce(), now());
    let err = c
        .http
        .get(&url)
        .header("Authorization", header)
        .send()
        .await;
    assert!(
        err.is_err(),
        "the connection must be closed without an answer"
    );
    assert_eq!(c.get("zones/", &[]).await.status, 200);

    c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    c.wait_status(&id, "Failed deployment").await;
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(r.status, 409);

    let stats = sim.requests();
    assert_eq!(stats.count("machines:allocate", 409), 1);
    assert_eq!(stats.count("machines:allocate", 200), 1);
    assert_eq!(stats.count("machine:read", 503), 2);
    assert_eq!(stats.count("zones:read", 0), 1);

    // A machine going Broken on its own.
    let other = sim
        .state()
        .machines
        .iter()
        .find(|m| m.status == "Ready")
        .unwrap()
        .system_id
        .clone();
    let unknown = sim.set_faults(FaultConfig {
        break_machines: vec![maas_sim::BreakMachine {
            machine: other.clone(),
            after_seconds: 0.0,
        }],
        ..Default::default()
    });
    assert!(unknown.is_empty());
    assert_eq!(c.machine(&other).await["status_name"], "Broken");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn catalogues_and_dns_resources() {
    let sim = start(timed()).await;
    let c = Raw::new(&sim);
    let zones = c.get("zones/", &[]).await.json();
    let names: Vec<&str> = zones
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"default") && names.contains(&"az1") && names.contains(&"az2"));
    let pools = c.get("resourcepools/", &[]).await.json();
    assert!(pools.as_array().unwrap().len() >= 3);
    assert_eq!(
        c.get("resourcepool/0/", &[]).await.json()["name"],
        "default"
    );
    assert_eq!(c.get("resourcepool/99/", &[]).await.status, 404);
    let tags = c.get("tags/", &[]).await.json();
    assert!(tags.as_array().unwrap().iter().any(|t| t["name"] == "gpu"));
    let domains = c.get("domains/", &[]).await.json();
    assert_eq!(domains[0]["name"], "maas");
    assert_eq!(domains[0]["is_default"], true);
    let boot = c.get("boot-resources/", &[]).await.json();
    assert!(
        boot.as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "ubuntu/jammy")
    );

    let r = c
        .send(
            "POST",
            "dnsresources/",
            &[],
            Some(&[
                ("fqdn", "api.maas"),
                ("address_ttl", "10"),
                ("ip_addresses", "10.0.0.1 10.0.0.2"),
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.json();
    assert_eq!(d["fqdn"], "api.maas");
    let ips: Vec<&str> = d["ip_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, vec!["10.0.0.1", "10.0.0.2"]);
    let id = d["id"].as_u64().unwrap();
    let dup = c
        .send("POST", "dnsresources/", &[], Some(&[("fqdn", "api.maas")]))
        .await;
    assert_eq!(dup.status, 400);
    let bad = c
        .send(
            "POST",
            "dnsresources/",
            &[],
            Some(&[("fqdn", "x.nodomain")]),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json().get("domain").is_some());
    let r = c
        .send(
            "PUT",
            &format!("dnsresources/{id}/"),
            &[],
            Some(&[("ip_addresses", "10.0.0.3")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["ip_addresses"][0]["ip"], "10.0.0.3");
    let listed = c.get("dnsresources/", &[("name", "api")]).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        sim.state().dnsresources[0].ip_addresses,
        vec!["10.0.0.3".to_string()]
    );
    let r = c
        .send("DELETE", &format!("dnsresources/{id}/"), &[], None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(c.get(&format!("dnsresources/{id}/"), &[]).await.status, 404);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn multipart_bodies_are_parameters() {
    let sim = start(timed()).await;
    let c = Raw::new(&sim);
    let boundary = "simboundary42";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\ngpu\r\n--{b}\r\nContent-Disposition: form-data; name=\"agent_name\"\r\n\r\nmp\r\n--{b}--\r\n",
        b = boundary
    );
    let r = c
        .send_body(
            "POST",
            "machines/",
            &[("op", "allocate")],
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["tag_names"]
            .as_array()
            .unwrap()
            .contains(&json!("gpu"))
    );
    assert_eq!(
        sim.state()
            .machines
            .iter()
            .filter(|m| m.agent_name.as_deref() == Some("mp"))
            .count(),
        1
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let config = SimConfig {
        state_file: Some(path.clone()),
        deploy_seconds: 0.0,
        api_key: Some("a:b:c".into()),
        ..timed()
    };
    let sim = start(config.clone()).await;
    let c = Raw::new(&sim);
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.post(&format!("machines/{id}/"), "set_owner_data", &[("k", "v")])
        .await;
    c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    c.wait_status(&id, "Deployed").await;
    // Saved while running, not only at shutdown (a killed simulator keeps its state too).
    let mut saved = false;
    for _ in 0..200 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("\"deployed\"") && text.contains("\"k\": \"v\"") {
            saved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(saved, "state file not written while running");
    sim.shutdown().await.unwrap();
    let sim = start(config).await;
    let c = Raw::new(&sim);
    let m = c.machine(&id).await;
    assert_eq!(m["status_name"], "Deployed");
    assert_eq!(m["owner_data"], json!({"k": "v"}));
    sim.shutdown().await.unwrap();
}
