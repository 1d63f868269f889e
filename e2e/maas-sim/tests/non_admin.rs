#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Running as a non-admin MAAS user: the main key belongs to an ordinary user, another
//! ordinary user owns Deployed machines, and clients see MAAS's 403s and filtered lists.

mod common;

use common::*;
use maas_sim::SimConfig;

fn non_admin() -> SimConfig {
    SimConfig {
        machines: 6,
        gpu_machines: 0,
        non_admin: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_main_key_is_an_ordinary_user_beside_another_users_machines() {
    let sim = start(non_admin()).await;
    assert_ne!(sim.api_key(), sim.admin_api_key());
    let c = Raw::new(&sim);
    let me = c.get("users/", &[("op", "whoami")]).await.json();
    assert_eq!(
        (me["username"].as_str(), me["is_superuser"].as_bool()),
        (Some("user"), Some(false))
    );

    let state = sim.state();
    let theirs: Vec<_> = state
        .machines
        .iter()
        .filter(|m| m.owner.as_deref() == Some("other"))
        .collect();
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|m| m.status == "Deployed"));
    let listed = c.get("machines/", &[]).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    let theirs_id = theirs[0].system_id.clone();
    let r = c.get(&format!("machines/{theirs_id}/"), &[]).await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    let r = c
        .post(&format!("machines/{theirs_id}/"), "release", &[])
        .await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));

    // Allocating and deploying work; admin-only calls are refused.
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .send(
            "PUT",
            &format!("machines/{id}/"),
            &[],
            Some(&[("swap_size", "0")]),
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    let r = c
        .post("tags/virtual/", "update_nodes", &[("add", &id)])
        .await;
    assert_eq!((r.status, r.text.as_str()), (403, ""));
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.wait_status(&id, "Deployed").await;

    // The administrator and the other user see what MAAS would show them.
    let admin = Raw::with_key(&sim, sim.admin_api_key());
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
    let r = admin
        .send(
            "PUT",
            &format!("machines/{id}/"),
            &[],
            Some(&[("swap_size", "0")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let other = Raw::with_key(&sim, sim.other_api_key());
    let seen = other.get("machines/", &[]).await.json();
    assert_eq!(seen.as_array().unwrap().len(), 5);
    assert_eq!(other.get(&format!("machines/{id}/"), &[]).await.status, 403);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_user_machines_can_be_asked_for_in_admin_mode() {
    let sim = start(SimConfig {
        other_user_machines: Some(1),
        ..non_admin()
    })
    .await;
    assert_eq!(
        sim.state()
            .machines
            .iter()
            .filter(|m| m.owner.is_some())
            .count(),
        1
    );
    sim.shutdown().await.unwrap();
    let sim = start(SimConfig {
        machines: 3,
        gpu_machines: 0,
        other_user_machines: Some(1),
        ..Default::default()
    })
    .await;
    assert_eq!(sim.api_key(), sim.admin_api_key());
    let admin = Raw::new(&sim);
    assert_eq!(
        admin
            .get("machines/", &[])
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    sim.shutdown().await.unwrap();
}
