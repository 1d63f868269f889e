#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The MAAS observer against the simulator over HTTP: one batched read per tick for every
//! watched machine, and only the objects whose machine changed are woken.

mod common;

use capmaas_controllers::domain::observe::observe;
use capmaas_controllers::maas::observer::{MachineObserver, Transit};
use maas_client::{AllocateParams, DeployParams, MaasApi, ReleaseParams};
use tokio::sync::mpsc;

#[tokio::test]
async fn one_read_per_tick_wakes_only_the_machines_that_changed() {
    let (sim, client) = common::sim_and_client(3, 0).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(client.allocate(&AllocateParams::default()).await.unwrap());
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer = MachineObserver::new(tx);
    for (i, m) in held.iter().enumerate() {
        observer.watch(format!("mm-{i}"), observe(m), Transit::Deploying, None);
    }
    // Two of the three move on in MAAS (deploy time zero: straight to Deployed).
    for m in &held[..2] {
        client
            .deploy(&m.system_id, &DeployParams::default())
            .await
            .unwrap();
    }
    sim.reset_requests();

    let report = observer.tick(&client).await.unwrap();
    assert_eq!((report.read, report.woken), (3, 2));
    let mut woken = vec![rx.try_recv().unwrap(), rx.try_recv().unwrap()];
    woken.sort();
    assert_eq!(woken, vec!["mm-0", "mm-1"]);
    assert!(rx.try_recv().is_err(), "the unchanged machine sleeps on");
    let stats = sim.requests();
    assert_eq!(stats.count_op("machines:read"), 1, "one batched read");
    assert_eq!(stats.count_op("machine:read"), 0, "no read per machine");

    // Nothing changed since: a tick wakes nobody. A machine a pass took out is not read.
    let taken = observer.take(&held[0].system_id).unwrap();
    assert_eq!(taken.machine.status_name, "Deployed");
    let report = observer.tick(&client).await.unwrap();
    assert_eq!((report.read, report.woken), (2, 0));
    assert!(rx.try_recv().is_err());

    // A machine released behind our back changes too.
    client
        .release(&held[2].system_id, &ReleaseParams::default())
        .await
        .unwrap();
    let report = observer.tick(&client).await.unwrap();
    assert_eq!(report.woken, 1);
    assert_eq!(rx.try_recv().unwrap(), "mm-2");
    assert_eq!(sim.requests().count_op("machines:read"), 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_machine_in_transit_for_too_long_is_let_go_and_its_object_woken() {
    let (sim, client) = common::sim_and_client(1, 0).await;
    let m = client.allocate(&AllocateParams::default()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer = MachineObserver::new(tx).with_max_transit(std::time::Duration::ZERO);
    observer.watch("mm-0", observe(&m), Transit::Deploying, None);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let report = observer.tick(&client).await.unwrap();
    assert_eq!((report.read, report.woken), (1, 1));
    assert_eq!(rx.try_recv().unwrap(), "mm-0");
    assert!(
        observer.is_empty(),
        "its pass reads MAAS itself from now on"
    );
    sim.shutdown().await.unwrap();
}
