#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The orphan sweep against the MAAS simulator: only machines of this management cluster whose
//! MaasMachine is gone are released.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use capmaas_controllers::domain::allocation::agent_name;
use capmaas_controllers::domain::maas_machine::owner_data_for;
use capmaas_controllers::runtime::error::ReconcileError;
use capmaas_controllers::sweep::{LiveMachines, LiveSet, Sweeper};
use maas_client::{AllocateParams, MaasApi};

const MGMT: &str = "mgmt-source";

struct Live(LiveSet);

impl LiveMachines for Live {
    async fn live(&self) -> Result<LiveSet, ReconcileError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn releases_only_machines_whose_owner_is_gone() {
    let (sim, client) = common::sim_and_client(8, 0).await;
    let mut ids = Vec::new();
    for (uid, ns, mgmt) in [
        ("u-live", "ns", Some(MGMT)),
        ("u-gone", "ns", Some(MGMT)),
        ("u-elsewhere", "other", Some(MGMT)),
        ("u-other-mgmt", "ns", Some("mgmt-target")),
        ("u-no-mgmt", "ns", None),
        ("u-recorded", "ns", Some(MGMT)),
    ] {
        let m = client
            .allocate(&AllocateParams {
                agent_name: Some(agent_name(uid)),
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .set_owner_data(&m.system_id, &owner_data_for(uid, ns, "mm", mgmt))
            .await
            .unwrap();
        ids.push(m.system_id);
    }
    // Allocated by someone else, no owner data: never touched.
    let foreign = client
        .allocate(&AllocateParams::default())
        .await
        .unwrap()
        .system_id;

    let live = Live(LiveSet {
        uids: BTreeSet::from(["u-live".to_string()]),
        system_ids: BTreeSet::from([ids[5].clone()]),
    });
    let grace = Duration::from_secs(300);
    let mut sweeper = Sweeper::new(Some("ns".into()), Some(MGMT.into()), grace);
    let t0 = Instant::now();
    assert!(
        sweeper
            .sweep_once(&client, &live, t0)
            .await
            .unwrap()
            .is_empty(),
        "nothing is released before the grace period"
    );
    let released = sweeper
        .sweep_once(&client, &live, t0 + grace)
        .await
        .unwrap();
    assert_eq!(released, [ids[1].clone()]);
    let state = sim.state();
    let owned = |id: &str| state.machine(id).unwrap().owner.is_some();
    assert!(owned(&ids[0]), "live owner kept");
    assert!(!owned(&ids[1]), "orphan released");
    assert!(owned(&ids[2]), "other namespace out of scope");
    assert!(owned(&ids[3]), "another management cluster's machine kept");
    assert!(owned(&ids[4]), "machine naming no management cluster kept");
    assert!(
        owned(&ids[5]),
        "machine recorded by a live MaasMachine kept"
    );
    assert!(owned(&foreign), "foreign machine kept");

    // Without a known identity the sweep does not even list.
    let lists = sim
        .requests()
        .counts
        .get("machines:read")
        .map(|c| c.values().sum::<u64>());
    let mut blind = Sweeper::new(None, None, Duration::ZERO);
    assert!(
        blind
            .sweep_once(&client, &live, t0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sim.requests()
            .counts
            .get("machines:read")
            .map(|c| c.values().sum::<u64>()),
        lists
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_orphan_is_released_as_its_owner_asked_with_one_list_per_sweep() {
    use capmaas_controllers::domain::maas_machine::{EraseOptions, OWNER_KEY_RELEASE};
    use maas_client::{MaasClient, MaasConfig, RetryConfig};
    use maas_sim::{SimConfig, Simulator};
    let sim = Simulator::start(SimConfig {
        machines: 2,
        gpu_machines: 0,
        erase_seconds: Some(600.0),
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    let m = client
        .allocate(&AllocateParams {
            agent_name: Some(agent_name("u-gone")),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut data = owner_data_for("u-gone", "ns", "mm", Some(MGMT));
    let secure = EraseOptions {
        erase: true,
        secure_erase: true,
        ..Default::default()
    };
    data.insert(OWNER_KEY_RELEASE.into(), secure.owner_data_value().unwrap());
    client.set_owner_data(&m.system_id, &data).await.unwrap();
    sim.reset_requests();

    let live = Live(LiveSet::default());
    let mut sweeper = Sweeper::new(Some("ns".into()), Some(MGMT.into()), Duration::ZERO);
    let released = sweeper
        .sweep_once(&client, &live, Instant::now())
        .await
        .unwrap();
    assert_eq!(released, std::slice::from_ref(&m.system_id));
    let state = sim.state();
    let machine = state.machine(&m.system_id).unwrap();
    assert_eq!(
        machine.status, "Disk erasing",
        "released with the owner's erase"
    );
    let requests = sim.requests();
    let read = client.read_machine(&m.system_id).await.unwrap();
    assert_eq!(read.status_message.as_deref(), Some("Secure erasing disks"));
    assert_eq!(requests.count_op("machines:read"), 1, "one list per sweep");
    assert_eq!(requests.count_op("machine:release"), 1);
    assert_eq!(requests.log.len(), 2, "nothing else: {:?}", requests.log);
    sim.shutdown().await.unwrap();
}
