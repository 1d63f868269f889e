#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The orphan sweep against the MAAS simulator: only machines of ours whose MaasMachine is gone
//! are released.

use std::collections::BTreeSet;

use capmaas_controllers::allocation::agent_name;
use capmaas_controllers::decide::phase::owner_data_for;
use capmaas_controllers::error::ReconcileError;
use capmaas_controllers::sweep::{LiveMachines, sweep_once};
use maas_client::{AllocateParams, MaasApi, MaasClient, MaasConfig, RetryConfig};
use maas_sim::{SimConfig, Simulator};

struct Live(BTreeSet<String>);

impl LiveMachines for Live {
    async fn live_uids(&self) -> Result<BTreeSet<String>, ReconcileError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn releases_only_machines_whose_owner_is_gone() {
    let sim = Simulator::start(SimConfig {
        machines: 4,
        gpu_machines: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    let mut ids = Vec::new();
    for (uid, ns) in [("u-live", "ns"), ("u-gone", "ns"), ("u-elsewhere", "other")] {
        let m = client
            .allocate(&AllocateParams {
                agent_name: Some(agent_name(uid)),
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .set_owner_data(&m.system_id, &owner_data_for(uid, ns, "mm"))
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

    let released = sweep_once(
        &client,
        &Live(BTreeSet::from(["u-live".to_string()])),
        Some("ns"),
    )
    .await
    .unwrap();
    assert_eq!(released, [ids[1].clone()]);
    let state = sim.state();
    let owned = |id: &str| state.machine(id).unwrap().owner.is_some();
    assert!(owned(&ids[0]), "live owner kept");
    assert!(!owned(&ids[1]), "orphan released");
    assert!(owned(&ids[2]), "other namespace out of scope");
    assert!(owned(&foreign), "foreign machine kept");
    sim.shutdown().await.unwrap();
}
