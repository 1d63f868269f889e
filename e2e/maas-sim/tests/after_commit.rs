#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Faults after the operation was applied and committed (the answer reset, held past the
//! caller's timeout, or replaced by a 5xx) and machines whose every deployment fails.

mod common;

use std::time::Duration;

use common::*;
use maas_sim::{FaultConfig, FaultRule, SimConfig};
use serde_json::json;

fn config() -> SimConfig {
    SimConfig {
        machines: 4,
        gpu_machines: 0,
        ..Default::default()
    }
}

fn with_rules(rules: Vec<FaultRule>) -> FaultConfig {
    FaultConfig {
        rules,
        ..Default::default()
    }
}

#[tokio::test]
async fn held_answer_arrives_after_the_client_gave_up_but_the_allocation_stands() {
    let sim = start(config()).await;
    let mut c = Raw::new(&sim);
    sim.set_faults(with_rules(vec![FaultRule {
        hold_next: 1,
        hold_ms: 1500,
        ..FaultRule::on("machines:allocate")
    }]));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let patient = std::mem::replace(&mut c.http, impatient);
    let url = format!("{}/MAAS/api/2.0/machines/?op=allocate", c.base);
    let header = c.auth_header(
        "POST",
        &url.replace("?op=allocate", ""),
        &[("op".into(), "allocate".into())],
        &fresh_nonce(),
        now(),
    );
    let err = c
        .http
        .post(&url)
        .header("Authorization", header)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    c.http = patient;
    let owned: Vec<_> = sim
        .state()
        .machines
        .into_iter()
        .filter(|m| m.owner.as_deref() == Some("admin"))
        .collect();
    assert_eq!(owned.len(), 1, "the allocation was applied");
    assert_eq!(owned[0].status, "Allocated");
    // Only the next call was held; the held one is in the log with its real code.
    let r = c.allocate(&[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.requests().count("machines:allocate", 200), 2);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_error_after_commit_and_lost_answer() {
    let sim = start(config()).await;
    let c = Raw::new(&sim);
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    sim.set_faults(with_rules(vec![
        FaultRule {
            fail_after_next: 1,
            status: 503,
            retry_after: Some(10),
            ..FaultRule::on("machine:deploy")
        },
        FaultRule {
            lose_next: 1,
            ..FaultRule::on("set_owner_data")
        },
    ]));
    let r = c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "10");
    c.wait_status(&id, "Deployed").await;

    let url = format!("{}/MAAS/api/2.0/machines/{id}/", c.base);
    let params = vec![
        ("op".to_string(), "set_owner_data".to_string()),
        ("k".to_string(), "v".to_string()),
    ];
    let header = c.auth_header("POST", &url, &params, &fresh_nonce(), now());
    let err = c
        .http
        .post(format!("{url}?op=set_owner_data"))
        .header("Authorization", header)
        .form(&[("k", "v")])
        .send()
        .await;
    assert!(err.is_err(), "the answer must be lost");
    assert_eq!(c.machine(&id).await["owner_data"], json!({"k": "v"}));
    let stats = sim.requests();
    assert_eq!(stats.count("machine:deploy", 503), 1);
    assert_eq!(stats.count("machine:set_owner_data", 0), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn named_machines_fail_every_deployment() {
    let sim = start(config()).await;
    let c = Raw::new(&sim);
    let unknown = sim.set_faults(FaultConfig {
        fail_deploy_machines: vec!["node-001".into(), "nosuch".into()],
        ..Default::default()
    });
    assert_eq!(unknown, vec!["nosuch".to_string()]);
    let bad = sim.state().machine("node-001").unwrap().system_id.clone();
    for _ in 0..2 {
        let r = c.allocate(&[("system_id", &bad)]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        c.post(&format!("machines/{bad}/"), "deploy", &[]).await;
        c.wait_status(&bad, "Failed deployment").await;
        c.post(&format!("machines/{bad}/"), "release", &[]).await;
        c.wait_status(&bad, "Ready").await;
    }
    let good = c.allocate(&[("hostname", "node-002")]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.post(&format!("machines/{good}/"), "deploy", &[]).await;
    c.wait_status(&good, "Deployed").await;
    sim.shutdown().await.unwrap();
}
