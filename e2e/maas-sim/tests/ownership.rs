#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Ownership as MAAS enforces it without RBAC: a user sees and acts on machines that are
//! unowned or its own, gets an empty 403 for anyone else's, and another user's machines are
//! missing from its lists. Broken, release and owner data follow MAAS's model.

mod common;

use common::*;
use maas_sim::{SimConfig, SimUser};
use serde_json::json;

const BOB: &str = "bobconsumer:bobtoken:bobsecret";

fn with_bob() -> SimConfig {
    SimConfig {
        machines: 6,
        gpu_machines: 0,
        users: vec![SimUser {
            username: "bob".into(),
            api_key: BOB.into(),
        }],
        ..Default::default()
    }
}

async fn deployed(c: &Raw) -> String {
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(&format!("machines/{id}/"), "set_owner_data", &[("k", "v")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.wait_status(&id, "Deployed").await;
    id
}

#[tokio::test]
async fn another_users_machines_are_hidden_and_refused() {
    let sim = start(with_bob()).await;
    let admin = Raw::new(&sim);
    let bob = Raw::with_key(&sim, BOB);
    let id = deployed(&admin).await;
    let path = format!("machines/{id}/");

    let listed = bob.get("machines/", &[]).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 5);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["system_id"] != id.as_str())
    );
    let tagged = bob.get("tags/virtual/", &[("op", "machines")]).await.json();
    assert!(
        tagged
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["system_id"] != id.as_str())
    );
    assert_eq!(
        admin
            .get("machines/", &[])
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let refused = [
        bob.get(&path, &[]).await,
        bob.get(&path, &[("op", "query_power_state")]).await,
        bob.get(&format!("nodes/{id}/devices/"), &[]).await,
        bob.post(&path, "release", &[]).await,
        bob.post(&path, "power_off", &[]).await,
        bob.post(&path, "abort", &[]).await,
        bob.post(&path, "set_owner_data", &[("k", "x")]).await,
        bob.post(&path, "mark_broken", &[]).await,
        bob.post(&path, "mark_fixed", &[]).await,
    ];
    for r in refused {
        assert_eq!((r.status, r.text.as_str()), (403, ""));
    }
    assert_eq!(bob.get("machines/nosuch/", &[]).await.status, 404);
    let m = admin.machine(&id).await;
    assert_eq!(
        (m["status_name"].as_str(), m["power_state"].as_str()),
        (Some("Deployed"), Some("on"))
    );
    assert_eq!(m["owner_data"], json!({"k": "v"}));

    // The administrator may act on bob's machine, but owner data belong to the owner alone.
    let bobs = bob.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = admin
        .post(
            &format!("machines/{bobs}/"),
            "set_owner_data",
            &[("k", "v")],
        )
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            409,
            "Cannot set workload annotation: it hasn't been acquired."
        )
    );
    let r = admin
        .post(&format!("machines/{bobs}/"), "mark_broken", &[])
        .await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    assert_eq!(
        admin.get(&format!("machines/{bobs}/"), &[]).await.status,
        200
    );
    let mine = bob
        .get("machines/", &[("op", "list_allocated")])
        .await
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn broken_release_and_owner_data_as_maas() {
    let sim = start(with_bob()).await;
    let admin = Raw::new(&sim);
    let bob = Raw::with_key(&sim, BOB);
    let id = deployed(&bob).await;
    let path = format!("machines/{id}/");
    let r = bob.post(&path, "mark_broken", &[("comment", "fan")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status_name"], "Broken");
    assert_eq!(m["status_message"], "fan");
    // A running machine: MAAS powers it off and the release never completes.
    assert_eq!(m["power_state"], "off");
    assert_eq!(m["owner"], "bob");
    assert_eq!(m["owner_data"], json!({"k": "v"}));
    assert!(sim.state().machine(&id).unwrap().agent_name.is_none());

    let r = bob.post(&path, "mark_fixed", &[]).await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    let r = admin.post(&path, "mark_fixed", &[]).await;
    assert_eq!(r.json()["status_name"], "Deployed");
    let r = admin.post(&path, "mark_fixed", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (409, "Can't mark a non-broken node as 'Ready'.")
    );

    bob.post(&path, "mark_broken", &[]).await;
    let r = bob.post(&path, "release", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status_name"], "Ready");
    assert!(m["owner"].is_null());
    assert_eq!(m["owner_data"], json!({}));
    sim.shutdown().await.unwrap();
}
