#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A restart from the state file: the simulator goes down and comes back on the same address
//! with the same key; a deployment in flight finishes on time, the ledger carries on, and the
//! fault counters say what was injected.

mod common;

use std::time::Duration;

use common::*;
use maas_sim::{FaultConfig, FaultRule, LedgerEvent, SimConfig};
use serde_json::Value;

#[tokio::test]
async fn a_restarted_simulator_keeps_its_machines_and_its_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig {
        machines: 3,
        gpu_machines: 0,
        deploy_seconds: 1.0,
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let mut sim = start(config.clone()).await;
    sim.set_faults(FaultConfig {
        rules: vec![FaultRule {
            fail_next: 1,
            ..FaultRule::on("zones:read")
        }],
        ..Default::default()
    });
    let c = Raw::new(&sim);
    assert_eq!(c.get("zones/", &[]).await.status, 503, "the injected fault");
    let injected: Value = reqwest::get(format!("http://{}/_sim/faults/injected", sim.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(injected["error 503"], 1, "{injected}");
    let id = c.allocate(&[("agent_name", "a1")]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.post(&format!("machines/{id}/"), "deploy", &[])
            .await
            .status,
        200
    );

    config.listen = sim.addr();
    config.api_key = Some(sim.api_key().to_string());
    sim.restart(config, Duration::from_millis(300))
        .await
        .unwrap();
    let c = Raw::new(&sim);
    c.wait_status(&id, "Deployed").await;
    let ledger: Vec<Value> = reqwest::get(format!("http://{}/_sim/ledger", sim.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = ledger
        .iter()
        .filter_map(|e| e["event"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["acquired", "deploy_started"]);
    assert!(matches!(
        sim.ledger()[0].event,
        LedgerEvent::Acquired { ref agent_name, .. } if agent_name.as_deref() == Some("a1")
    ));
    assert!(
        sim.faults_injected().is_empty(),
        "a restart starts the counts afresh"
    );
    sim.shutdown().await.unwrap();
}
