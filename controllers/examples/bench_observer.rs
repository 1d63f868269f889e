#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! MAAS reads per deploying machine, for 1, 10 and 100 machines deploying at once: each machine
//! polled on its own (one `GET machines/{id}/` per machine per poll, on the provider's poll
//! rhythm), against the observer (one batched `GET machines/?id=..` per tick for all of them).
//! Counts come from the simulator's request log; it prints a table, it asserts nothing.
//!
//! `cargo run -p capmaas-controllers --example bench_observer -- [deploy-seconds]`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use capmaas_controllers::domain::observe::observe;
use capmaas_controllers::domain::timing::deploy_poll_delay;
use capmaas_controllers::maas::observer::{MachineObserver, Transit};
use maas_client::{
    AllocateParams, DeployParams, MaasApi, MaasClient, MaasConfig, MachineStatus, RetryConfig,
};
use maas_sim::{SimConfig, SimHandle, Simulator};
use tokio::sync::mpsc;

/// A simulator with `n` machines all deploying, and a client for it.
async fn deploying(
    n: usize,
    deploy_seconds: f64,
) -> (SimHandle, MaasClient, Vec<maas_client::Machine>) {
    let sim = Simulator::start(SimConfig {
        machines: n,
        gpu_machines: 0,
        deploy_seconds,
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let m = client.allocate(&AllocateParams::default()).await.unwrap();
        let deploying = client
            .deploy(&m.system_id, &DeployParams::default())
            .await
            .unwrap();
        ids.push(deploying);
    }
    sim.reset_requests();
    (sim, client, ids)
}

/// Every machine read on its own until it is Deployed, each on the per-machine poll rhythm.
async fn per_machine(client: &MaasClient, machines: &[maas_client::Machine]) {
    let started = Instant::now();
    let polls = machines.iter().map(|m| async move {
        let id = &m.system_id;
        loop {
            tokio::time::sleep(deploy_poll_delay(Some(started.elapsed()))).await;
            let m = client.read_machine(id).await.unwrap();
            if m.status == MachineStatus::Deployed {
                return;
            }
        }
    });
    futures::future::join_all(polls).await;
}

/// The observer watches every machine; a woken machine is looked at as a pass would (taken out,
/// put back while still deploying) until all are Deployed.
async fn observed(client: &MaasClient, machines: &[maas_client::Machine]) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer = MachineObserver::new(tx);
    // As the passes that started the deployments hand them over: with MAAS's deploy answer.
    for m in machines {
        observer.watch(m.system_id.clone(), observe(m), Transit::Deploying, None);
    }
    let mut pending: HashSet<String> = machines.iter().map(|m| m.system_id.clone()).collect();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = observer.run(client.clone(), async {
        let _ = stop_rx.await;
    });
    let drive = async {
        while let Some(id) = rx.recv().await {
            let Some(seen) = observer.take(&id) else {
                continue;
            };
            if seen.machine.status_code == MachineStatus::Deployed.code() {
                pending.remove(&id);
                if pending.is_empty() {
                    break;
                }
            } else {
                observer.watch(id, seen.machine.clone(), seen.transit, Some(&seen));
            }
        }
        let _ = stop_tx.send(());
    };
    tokio::join!(run, drive);
}

fn reads(sim: &SimHandle) -> (u64, u64) {
    let stats = sim.requests();
    (
        stats.count_op("machine:read"),
        stats.count_op("machines:read"),
    )
}

#[tokio::main]
async fn main() {
    let deploy_seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    println!(
        "deploy time {deploy_seconds} s; MAAS reads from the start of deployment to all Deployed"
    );
    println!(
        "{:>9} | {:>24} | {:>24} | {:>8}",
        "deploying", "per machine: reads (/m)", "observer: reads (/m)", "wall s"
    );
    for n in [1usize, 10, 100] {
        let ((sim_a, client_a, ids_a), (sim_b, client_b, ids_b)) =
            tokio::join!(deploying(n, deploy_seconds), deploying(n, deploy_seconds));
        let started = Instant::now();
        tokio::join!(per_machine(&client_a, &ids_a), observed(&client_b, &ids_b));
        let wall = started.elapsed();
        let (one_a, list_a) = reads(&sim_a);
        let (one_b, list_b) = reads(&sim_b);
        let (total_a, total_b) = (one_a + list_a, one_b + list_b);
        println!(
            "{n:>9} | {:>14} ({:>7.2}) | {:>14} ({:>7.2}) | {:>8.1}",
            total_a,
            total_a as f64 / n as f64,
            total_b,
            total_b as f64 / n as f64,
            wall.as_secs_f64()
        );
        sim_a.shutdown().await.unwrap();
        sim_b.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
