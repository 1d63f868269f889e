//! The gate of MAAS steps against a real Lease on the real API server: it stays open across the
//! lease manager's renewals for as long as this replica holds the Lease, and closes (firing the
//! shutdown) once the Lease has passed out of its hands.

use std::time::Duration;

use capmaas_controllers::runtime::leader::{self, LEASE_DURATION_SECONDS};
use capmaas_controllers::runtime::shutdown::Shutdown;
use capmaas_e2e::harness::{EnvOptions, TestEnv};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const NS: &str = "leader-gate";
const LEASE: &str = "gate-test";
/// Three renewals' worth.
const WATCH: Duration = Duration::from_secs(3 * LEASE_DURATION_SECONDS);
const SAMPLE: Duration = Duration::from_millis(100);

#[tokio::test]
async fn the_gate_stays_open_across_renewals_and_closes_when_the_lease_passes() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            start_manager: false,
            machines: 1,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.namespace(NS).await.unwrap();
    let shutdown = Shutdown::new();
    let held = leader::acquire(env.client.clone(), NS, LEASE, "replica-a", &shutdown)
        .await
        .unwrap();
    let gate = held.gate(env.client.clone(), &shutdown);

    let started = tokio::time::Instant::now();
    let mut closed_samples = 0u32;
    while started.elapsed() < WATCH {
        if !gate.may_act() {
            closed_samples += 1;
        }
        tokio::time::sleep(SAMPLE).await;
    }
    assert_eq!(
        closed_samples, 0,
        "the gate closed while the Lease was renewed"
    );
    assert!(!shutdown.is_triggered());

    // Another replica takes the Lease (as after an expiry): the gate closes and the manager stops.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    let renewed = MicroTime(jiff::Timestamp::now());
    let taken = json!({"spec": {"holderIdentity": "replica-b", "renewTime": renewed}});
    leases
        .patch(LEASE, &PatchParams::default(), &Patch::Merge(&taken))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gate.may_act() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(SAMPLE).await;
    }
    assert!(
        !gate.may_act(),
        "the gate is closed once another replica holds the Lease"
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown.wait())
        .await
        .expect("the shutdown fires");
    drop(held);
    env.stop().await;
}
