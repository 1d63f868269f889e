//! The quickstart lifecycle against an existing management cluster that already runs Cluster API
//! core, the way `E2E_KUBECONFIG` points the tests at one: here the test starts that cluster
//! itself, then the harness adds only our CRDs, the simulator and our manager.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::scenario::quickstart_lifecycle;
use capmaas_e2e::harness::{
    CapiCore, ControlPlane, ControlPlaneOptions, Env, EnvOptions, TestRun, tools,
};

const NS: &str = "existing";

#[tokio::test]
async fn quickstart_lifecycle_on_an_existing_cluster() {
    let Some((run, bin_dir)) = TestRun::own("existing").await else {
        return;
    };
    let cluster_dir = run.dir().join("cluster");
    std::fs::create_dir_all(&cluster_dir).unwrap();
    let cp = ControlPlane::start(ControlPlaneOptions {
        bin_dir: bin_dir.clone(),
        run_dir: cluster_dir.clone(),
        controller_manager: true,
    })
    .await
    .expect("control plane starts");
    let capi = CapiCore::start(
        &cp.client(),
        &bin_dir,
        &tools::capi_manifests_dir(&bin_dir),
        cp.kubeconfig(),
        &cluster_dir,
    )
    .await
    .expect("Cluster API core starts");

    let env = Env::start(EnvOptions {
        machines: 10,
        gpu_machines: 2,
        existing_kubeconfig: Some(cp.kubeconfig().to_path_buf()),
        run_dir: Some(run.dir().join("provider")),
        ..Default::default()
    })
    .await
    .expect("the provider starts against the existing cluster");
    // Only the provider's own processes belong to the environment.
    assert_eq!(env.log_files().len(), 1, "only our manager's log");

    if let Err(e) = quickstart_lifecycle(&env, NS).await {
        panic!("{e}");
    }
    env.stop().await;
    capi.stop().await;
    cp.stop().await;
}
