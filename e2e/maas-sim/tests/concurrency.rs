#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fifty clients allocating at once never get the same machine.

mod common;

use std::collections::BTreeSet;

use common::*;
use maas_sim::SimConfig;

async fn allocate_concurrently(machines: usize, clients: usize) -> (Vec<String>, usize) {
    let sim = start(SimConfig {
        machines,
        gpu_machines: 0,
        ..Default::default()
    })
    .await;
    let c = Raw::new(&sim);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let agent = format!("agent-{i}");
            c.allocate(&[("agent_name", agent.as_str())]).await
        }));
    }
    let mut ids = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ids.push(r.json()["system_id"].as_str().unwrap().to_string()),
            409 => {
                // Only agent_name was given, which is no constraint: MAAS's text for that.
                assert_eq!(r.text, "No machine available.");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    let owned = sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .count();
    assert_eq!(owned, ids.len());
    sim.shutdown().await.unwrap();
    (ids, conflicts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_allocations_on_sixty_machines_are_distinct() {
    let (ids, conflicts) = allocate_concurrently(60, 50).await;
    assert_eq!(ids.len(), 50);
    assert_eq!(conflicts, 0);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_allocations_on_thirty_machines_give_twenty_conflicts() {
    let (ids, conflicts) = allocate_concurrently(30, 50).await;
    assert_eq!(ids.len(), 30);
    assert_eq!(conflicts, 20);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 30);
}
