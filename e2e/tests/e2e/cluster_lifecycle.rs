//! The quickstart cluster end to end, driven by the real Cluster API core: every Machine reaches
//! Running, the MAAS DNS record follows the control plane, the MachineDeployment scales up and
//! down, and deleting the Cluster leaves no MAAS machine behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::scenario::quickstart_lifecycle;
use capmaas_e2e::harness::{EnvOptions, TestEnv};

const NS: &str = "lifecycle";

#[tokio::test]
async fn quickstart_cluster_runs_scales_and_deletes_without_leaks() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 10,
            gpu_machines: 2,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    if let Err(e) = quickstart_lifecycle(&env, NS).await {
        panic!("{e}");
    }
    env.stop().await;
}
