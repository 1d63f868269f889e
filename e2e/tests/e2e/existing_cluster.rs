//! The quickstart lifecycle against an existing management cluster that already runs Cluster API
//! core, the way `E2E_KUBECONFIG` points the tests at one: here the test starts that cluster
//! itself, then the harness adds only our CRDs, the simulator and our manager.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capmaas_e2e::harness::scenario::quickstart_lifecycle;
use capmaas_e2e::harness::{CapiCore, ControlPlane, ControlPlaneOptions, Env, EnvOptions, tools};

const NS: &str = "existing";

#[tokio::test]
async fn quickstart_lifecycle_on_an_existing_cluster() {
    let run_dir = tempfile::Builder::new()
        .prefix("capmaas-e2e-existing-")
        .tempdir()
        .unwrap();
    let bin_dir = tools::bin_dir().expect("tools are built (make tools)");
    let cluster_dir = run_dir.path().join("cluster");
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
        run_dir: Some(run_dir.path().join("provider")),
        ..Default::default()
    })
    .await
    .expect("the provider starts against the existing cluster");
    // Only the provider's own processes belong to the environment.
    assert_eq!(env.log_files().len(), 1, "only our manager's log");

    let result = quickstart_lifecycle(&env, NS).await;
    if let Err(e) = &result {
        env.print_logs(60);
        for log in cp
            .logs()
            .into_iter()
            .chain([capi.manager.log().to_path_buf()])
        {
            eprintln!(
                "--- {} (last 60 lines) ---\n{}",
                log.display(),
                capmaas_e2e::harness::process::tail(&log, 60)
            );
        }
        panic!("{e}");
    }
    env.stop().await;
    capi.stop().await;
    cp.stop().await;
}
