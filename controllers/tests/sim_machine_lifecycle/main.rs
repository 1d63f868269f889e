#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The MAAS side of a MaasMachine's life, driven by the decisions and the executor against the
//! MAAS simulator over HTTP. The Kubernetes side is an in-memory store with the same durability
//! rules (each write is visible to the next pass, and a crash loses nothing written).

#[path = "../common/mod.rs"]
mod common;
mod nothing_lost;

use std::sync::Mutex;
use std::time::Duration;

use capmaas_controllers::domain::allocation::MachineRequirements;
use capmaas_controllers::domain::reasons::FailReason;
use capmaas_controllers::domain::reasons::WaitReason;
use capmaas_controllers::domain::timing::DeployFailures;
use capmaas_controllers::machine::decide::EraseOptions;
use capmaas_controllers::machine::decide::MaasView;
use capmaas_controllers::machine::decide::MachineFacts;
use capmaas_controllers::machine::decide::OwnerMachine;
use capmaas_controllers::machine::source::gpu::GpuFacts;
use capmaas_controllers::machine::steps::PassEnd;
use capmaas_controllers::machine::steps::PassReport;
use capmaas_controllers::machine::steps::run_machine_pass;
use capmaas_controllers::machine::store::BootstrapData;
use capmaas_controllers::machine::store::MachineStore;
use capmaas_controllers::runtime::error::ReconcileError;
use jiff::{SignedDuration, Timestamp};
use maas_client::{MaasClient, MaasConfig, RetryConfig};
use maas_sim::{FaultConfig, FaultRule, SimConfig, SimHandle, Simulator};

const UID: &str = "0b7c9f4e-1111-2222-3333-444455556666";
/// The management cluster identity the passes write into owner data.
const MANAGEMENT: &str = "mgmt-4d1e";
const CLOUD_CONFIG: &[u8] = b"#cloud-config\nruncmd: [echo joined]\n";

/// What the MaasMachine object holds between passes.
#[derive(Debug, Default, Clone)]
struct Object {
    attempt_marked: bool,
    system_id: Option<String>,
    release_intent: bool,
    failures: DeployFailures,
    finalizer: bool,
    deleting: bool,
    gpu_rejected: Vec<String>,
    /// The manager's memory that the machine was seen ready and ours lately (as the reconciler
    /// keeps it: set by a pass that ends ready, cleared by any other).
    ready_confirmed: bool,
    /// `spec.architecture` and `spec.hweKernel`.
    architecture: Option<String>,
    hwe_kernel: Option<String>,
}

#[derive(Default)]
struct MemStore {
    obj: Mutex<Object>,
    /// Simulates the manager dying right after allocate: the next `record_system_id` fails.
    crash_before_record: Mutex<bool>,
    /// The hold on the leader Lease has ended.
    lease_ended: Mutex<bool>,
}

impl MemStore {
    fn get(&self) -> Object {
        self.obj.lock().unwrap().clone()
    }
}

impl MachineStore for MemStore {
    fn may_act(&self) -> bool {
        !*self.lease_ended.lock().unwrap()
    }
    async fn mark_attempt(&self) -> Result<(), ReconcileError> {
        self.obj.lock().unwrap().attempt_marked = true;
        Ok(())
    }
    async fn record_system_id(&self, system_id: &str) -> Result<(), ReconcileError> {
        if std::mem::take(&mut *self.crash_before_record.lock().unwrap()) {
            return Err(ReconcileError::Invalid("killed".into()));
        }
        self.obj.lock().unwrap().system_id = Some(system_id.to_string());
        Ok(())
    }
    async fn mark_release_intent(
        &self,
        failures: Option<DeployFailures>,
    ) -> Result<(), ReconcileError> {
        let mut o = self.obj.lock().unwrap();
        o.release_intent = true;
        if let Some(f) = failures {
            o.failures = f;
        }
        Ok(())
    }
    async fn forget(&self) -> Result<(), ReconcileError> {
        let mut o = self.obj.lock().unwrap();
        o.system_id = None;
        o.attempt_marked = false;
        o.release_intent = false;
        Ok(())
    }
    async fn bootstrap_data(&self, secret: &str) -> Result<BootstrapData, ReconcileError> {
        assert_eq!(secret, "mm-0-bootstrap");
        Ok(BootstrapData {
            value: CLOUD_CONFIG.to_vec(),
            format: None,
        })
    }
    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        self.obj.lock().unwrap().finalizer = false;
        Ok(())
    }
    async fn set_gpu_rejected(
        &self,
        rejected: &[String],
        clear_system_id: bool,
    ) -> Result<(), ReconcileError> {
        let mut o = self.obj.lock().unwrap();
        o.gpu_rejected = rejected.to_vec();
        if clear_system_id {
            o.system_id = None;
        }
        Ok(())
    }
}

fn facts(o: &Object, now: Timestamp) -> MachineFacts {
    MachineFacts {
        uid: UID.into(),
        namespace: "ns".into(),
        name: "mm-0".into(),
        deleting: o.deleting,
        moving: false,
        management: Some(MANAGEMENT.into()),
        paused: false,
        owner: Some(OwnerMachine {
            bootstrap_data_secret: Some("mm-0-bootstrap".into()),
            failure_domain: Some("az1".into()),
        }),
        cluster_infrastructure_ready: Some(true),
        system_id: o.system_id.clone(),
        attempt_marked: o.attempt_marked,
        release_intent: o.release_intent,
        failures: o.failures,
        requirements: MachineRequirements {
            min_cpu: Some(1),
            min_memory_mib: Some(1024),
            architecture: o.architecture.clone(),
            ..Default::default()
        },
        image: "ubuntu/jammy".into(),
        deploy_in_memory: false,
        hwe_kernel: o.hwe_kernel.clone(),
        erase: EraseOptions::default(),
        default_zone: None,
        was_ready: false,
        released_in_state: None,
        capacity_refused_for: None,
        power_ons: None,
        ready_confirmed: o.ready_confirmed,
        deploying_for: None,
        maas: MaasView::Unread,
        gpu: GpuFacts {
            rejected: o.gpu_rejected.clone(),
            candidates: None,
        },
        made_by_go_provider: false,
        pass: Default::default(),
        now,
    }
}

async fn sim(faults: FaultConfig) -> (SimHandle, MaasClient) {
    let sim = Simulator::start(SimConfig {
        machines: 3,
        gpu_machines: 0,
        deploy_seconds: 0.0,
        faults,
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    (sim, client)
}

/// Runs passes (as the controller would on requeue) until one ends other than by waiting on
/// MAAS progress; returns every pass's report.
async fn drive(client: &MaasClient, store: &MemStore, now: Timestamp) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..6 {
        let report = run_machine_pass(client, store, facts(&store.get(), now), None)
            .await
            .unwrap();
        store.obj.lock().unwrap().ready_confirmed = matches!(report.end, PassEnd::Ready(_));
        let again = matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::Deploying | WaitReason::Releasing | WaitReason::PoweringOn,
                ..
            }
        );
        reports.push(report);
        if !again {
            break;
        }
    }
    reports
}

fn maas_calls(sim: &SimHandle) -> u64 {
    sim.requests()
        .log
        .iter()
        .filter(|e| !e.path.starts_with("/_sim"))
        .count() as u64
}

fn now() -> Timestamp {
    Timestamp::now()
}

#[tokio::test]
async fn the_architecture_is_an_allocate_constraint_and_the_kernel_a_deploy_parameter() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore {
        obj: Mutex::new(Object {
            finalizer: true,
            architecture: Some("arm64".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let reports = drive(&client, &store, now()).await;
    assert!(
        matches!(
            reports.last().unwrap().end,
            PassEnd::Waiting {
                reason: WaitReason::NoMachineAvailable,
                ..
            }
        ),
        "the simulator's machines are amd64: {reports:#?}"
    );
    let store = MemStore {
        obj: Mutex::new(Object {
            finalizer: true,
            architecture: Some("amd64".into()),
            hwe_kernel: Some("hwe-22.04".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let reports = drive(&client, &store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let id = store.get().system_id.unwrap();
    let machine = maas_client::MaasApi::read_machine(&client, &id)
        .await
        .unwrap();
    assert_eq!(machine.hwe_kernel.as_deref(), Some("hwe-22.04"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn full_lifecycle_takes_at_most_six_maas_calls() {
    let (sim, client) = sim(FaultConfig::default()).await;
    sim.reset_requests();
    let store = MemStore {
        obj: Mutex::new(Object {
            finalizer: true,
            ..Default::default()
        }),
        ..Default::default()
    };

    let reports = drive(&client, &store, now()).await;
    let PassEnd::Ready(ready) = &reports.last().unwrap().end else {
        panic!("not ready: {reports:#?}")
    };
    let id = store.get().system_id.unwrap();
    assert_eq!(ready.provider_id, format!("maas:///az1/{id}"));
    assert!(!ready.addresses.is_empty(), "addresses reported");
    let view = sim.state();
    let m = view.machine(&id).unwrap();
    assert_eq!(m.status, "Deployed");
    assert_eq!(
        m.agent_name.as_deref(),
        Some(format!("capmaas:{UID}").as_str())
    );
    assert_eq!(
        m.owner_data.get("capmaas-uid").map(String::as_str),
        Some(UID)
    );
    assert_eq!(
        m.owner_data.get("capmaas-name").map(String::as_str),
        Some("mm-0")
    );
    assert_eq!(
        m.owner_data.get("capmaas-management").map(String::as_str),
        Some(MANAGEMENT),
        "the management identity is written with the other keys"
    );
    assert_eq!(m.distro_series, "jammy");
    assert_eq!(
        m.user_data.as_deref().map(str::as_bytes),
        Some(CLOUD_CONFIG)
    );

    store.obj.lock().unwrap().deleting = true;
    let reports = drive(&client, &store, now()).await;
    assert_eq!(
        reports.last().unwrap().end,
        PassEnd::Finalized,
        "{reports:#?}"
    );
    assert!(!store.get().finalizer);
    let view = sim.state();
    let m = view.machine(&id).unwrap();
    assert_eq!(m.status, "Ready");
    assert_eq!(m.owner, None);

    let stats = sim.requests();
    let calls = maas_calls(&sim);
    let ops: Vec<&str> = stats.log.iter().map(|e| e.op.as_str()).collect();
    assert!(calls <= 6, "{calls} MAAS calls: {ops:?}");
    assert_eq!(stats.count_op("machines:allocate"), 1, "{ops:?}");
    assert_eq!(stats.count_op("machine:deploy"), 1, "{ops:?}");
    assert_eq!(stats.count_op("machine:release"), 1, "{ops:?}");
    println!("MAAS calls for one lifecycle: {calls}: {ops:?}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_kill_right_after_allocate_adopts_instead_of_leaking() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    *store.crash_before_record.lock().unwrap() = true;

    let first = run_machine_pass(&client, &store, facts(&store.get(), now()), None).await;
    assert!(first.is_err(), "the simulated kill interrupts the pass");
    assert!(store.get().attempt_marked);
    assert_eq!(store.get().system_id, None);
    let held: Vec<_> = sim
        .state()
        .machines
        .into_iter()
        .filter(|m| m.owner.is_some())
        .collect();
    assert_eq!(held.len(), 1, "MAAS allocated one machine before the kill");

    // The restarted manager: same object, nothing else remembered.
    let reports = drive(&client, &store, now()).await;
    assert!(
        reports[0]
            .step_names()
            .starts_with(&["AdoptLookup", "RecordSystemId"]),
        "{:?}",
        reports[0].step_names()
    );
    assert!(
        matches!(reports.last().unwrap().end, PassEnd::Ready(_)),
        "{reports:#?}"
    );
    assert_eq!(
        store.get().system_id.as_deref(),
        Some(held[0].system_id.as_str())
    );

    let stats = sim.requests();
    assert_eq!(
        stats.count_op("machines:allocate"),
        1,
        "no second allocation"
    );
    let owned = sim
        .state()
        .machines
        .into_iter()
        .filter(|m| m.owner.is_some())
        .count();
    assert_eq!(owned, 1, "no leaked machine");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_deployment_is_released_and_retried_after_a_delay() {
    let (sim, client) = sim(FaultConfig {
        fail_next_deploys: 1,
        ..Default::default()
    })
    .await;
    let store = MemStore::default();
    let t0 = now();

    let reports = drive(&client, &store, t0).await;
    let last = reports.last().unwrap();
    assert_eq!(
        last.end,
        PassEnd::Waiting {
            reason: WaitReason::WaitingToRetry,
            after: Some(Duration::from_secs(30))
        },
        "{reports:#?}"
    );
    assert!(
        last.step_names()
            .ends_with(&["MarkReleaseIntent", "Release", "Forget", "Wait"]),
        "{:?}",
        last.step_names()
    );
    assert_eq!(store.get().failures.count, 1);
    assert_eq!(store.get().system_id, None);
    let failed_owned = sim
        .state()
        .machines
        .into_iter()
        .filter(|m| m.owner.is_some())
        .count();
    assert_eq!(failed_owned, 0, "the failed machine went back to MAAS");

    // Still inside the delay: no MAAS call at all.
    let before = maas_calls(&sim);
    let early = drive(&client, &store, t0 + SignedDuration::from_secs(10)).await;
    assert!(matches!(
        early[0].end,
        PassEnd::Waiting {
            reason: WaitReason::WaitingToRetry,
            ..
        }
    ));
    assert_eq!(maas_calls(&sim), before);

    let reports = drive(&client, &store, t0 + SignedDuration::from_secs(31)).await;
    assert!(
        matches!(reports.last().unwrap().end, PassEnd::Ready(_)),
        "{reports:#?}"
    );
    let stats = sim.requests();
    assert_eq!(stats.count_op("machines:allocate"), 2);
    assert_eq!(stats.count_op("machine:deploy"), 2);
    assert_eq!(stats.count_op("machine:release"), 1);
    let deployed = sim
        .state()
        .machines
        .into_iter()
        .filter(|m| m.status == "Deployed")
        .count();
    assert_eq!(deployed, 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn repeated_failures_stop_at_the_budget() {
    let (sim, client) = sim(FaultConfig {
        fail_next_deploys: 10,
        ..Default::default()
    })
    .await;
    let store = MemStore::default();
    let mut t = now();
    let mut end = None;
    for _ in 0..10 {
        let reports = drive(&client, &store, t).await;
        end = Some(reports.last().unwrap().end.clone());
        if matches!(end, Some(PassEnd::Failed { .. })) {
            break;
        }
        t += SignedDuration::from_secs(3600);
    }
    let Some(PassEnd::Failed { reason, .. }) = end else {
        panic!("no terminal failure: {end:?}")
    };
    assert_eq!(reason, FailReason::DeployFailuresExhausted);
    let stats = sim.requests();
    assert_eq!(
        stats.count_op("machine:deploy"),
        3,
        "bounded deploy attempts"
    );
    assert_eq!(
        stats.count_op("machine:release"),
        2,
        "the last failed machine is kept for inspection"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_matching_machine_waits_without_an_error() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let mut f = facts(&store.get(), now());
    // Satisfiable in form, met by no machine: MAAS answers 409, the path this test is named for.
    f.requirements.min_cpu = Some(4096);
    let report = run_machine_pass(&client, &store, f, None).await.unwrap();
    assert!(
        matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::NoMachineAvailable,
                ..
            }
        ),
        "{report:?}"
    );
    assert_eq!(sim.requests().count("machines:allocate", 409), 1);
    assert_eq!(held_machines(&sim), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_tag_is_a_rejection_not_a_wait() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let mut f = facts(&store.get(), now());
    f.requirements.tags = vec!["no-such-tag-anywhere".into()];
    let err = run_machine_pass(&client, &store, f, None)
        .await
        .unwrap_err();
    // MAAS answers a tag it does not know with 400: our request is wrong, waiting will not help.
    assert_eq!(err.label(), "MaasRejected", "{err}");
    assert_eq!(sim.requests().count("machines:allocate", 400), 1);
    assert_eq!(held_machines(&sim), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_gpu_request_gets_a_gpu_machine() {
    use capmaas_controllers::domain::allocation::GpuRequest;
    use maas_client::MaasApi;
    let (sim, client) = common::sim_and_client(3, 1).await;
    let store = MemStore::default();
    let mut f = facts(&store.get(), now());
    f.owner = Some(OwnerMachine {
        bootstrap_data_secret: Some("mm-0-bootstrap".into()),
        failure_domain: None,
    });
    f.requirements.gpu = Some(GpuRequest {
        vendor: Some("nvidia".into()),
        product: None,
        min_count: Some(1),
    });
    let report = run_machine_pass(&client, &store, f, None).await.unwrap();
    assert!(
        report.step_names().contains(&"Allocate"),
        "{:?}",
        report.step_names()
    );
    let id = store.get().system_id.unwrap();
    let gpus = client.node_devices(&id, Some("gpu")).await.unwrap();
    assert!(!gpus.is_empty(), "the allocated machine carries a GPU");
    assert!(
        gpus.iter()
            .all(|g| g.vendor_id.eq_ignore_ascii_case("10de")),
        "{gpus:?}"
    );
    sim.shutdown().await.unwrap();
}

/// Three NVIDIA machines with 1, 2 and 4 GPUs (cheapest first) and one without.
const GPU_INVENTORY: &str = r#"
machines:
  - {hostname: plain, system_id: plain1, cpu: 4, memory: 8192}
  - hostname: gpu-one
    system_id: gpuone
    cpu: 8
    memory: 16384
    gpus:
      - {product_id: "1eb8", product_name: "TU104GL [Tesla T4]"}
  - hostname: gpu-two
    system_id: gputwo
    cpu: 16
    memory: 32768
    gpus:
      - {product_id: "1eb8", product_name: "TU104GL [Tesla T4]"}
      - {product_id: "1eb8", product_name: "TU104GL [Tesla T4]"}
  - hostname: gpu-four
    system_id: gpufor
    cpu: 32
    memory: 65536
    gpus:
      - {product_id: "20b0", product_name: "GA100 [A100 SXM4 40GB]"}
      - {product_id: "20b0", product_name: "GA100 [A100 SXM4 40GB]"}
      - {product_id: "20b0", product_name: "GA100 [A100 SXM4 40GB]"}
      - {product_id: "20b0", product_name: "GA100 [A100 SXM4 40GB]"}
"#;

async fn gpu_sim() -> (SimHandle, MaasClient) {
    let sim = Simulator::start(SimConfig {
        inventory: Some(maas_sim::Inventory::from_yaml(GPU_INVENTORY).unwrap()),
        deploy_seconds: 0.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    (sim, client)
}

fn gpu_facts(store: &MemStore, min_count: u32) -> MachineFacts {
    let mut f = facts(&store.get(), now());
    f.owner = Some(OwnerMachine {
        bootstrap_data_secret: Some("mm-0-bootstrap".into()),
        failure_domain: None,
    });
    f.requirements.gpu = Some(capmaas_controllers::domain::allocation::GpuRequest {
        vendor: Some("nvidia".into()),
        product: None,
        min_count: Some(min_count),
    });
    f
}

/// Machines someone holds in MAAS.
fn held(sim: &SimHandle) -> Vec<String> {
    sim.state()
        .machines
        .into_iter()
        .filter(|m| m.owner.is_some() || m.status != "Ready")
        .map(|m| m.system_id)
        .collect()
}

#[tokio::test]
async fn machines_with_too_few_gpus_are_set_aside_until_one_has_enough() {
    let (sim, client) = gpu_sim().await;
    let store = MemStore::default();
    let report = run_machine_pass(&client, &store, gpu_facts(&store, 4), None)
        .await
        .unwrap();
    assert_eq!(
        report
            .step_names()
            .iter()
            .filter(|s| **s == "RejectForGpus")
            .count(),
        2,
        "{:?}",
        report.step_names()
    );
    assert_eq!(
        report
            .step_names()
            .iter()
            .filter(|s| **s == "ReleaseRejected")
            .count(),
        2,
        "{:?}",
        report.step_names()
    );
    assert!(
        report.step_names().contains(&"Deploy"),
        "{:?}",
        report.step_names()
    );
    let o = store.get();
    assert_eq!(o.system_id.as_deref(), Some("gpufor"));
    assert!(o.gpu_rejected.is_empty(), "{:?}", o.gpu_rejected);
    assert_eq!(
        held(&sim),
        ["gpufor"],
        "only the machine with enough GPUs stays"
    );
    let requests = sim.requests();
    assert_eq!(requests.count("machines:allocate", 200), 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_machine_with_enough_gpus_gives_everything_back_and_waits() {
    let (sim, client) = gpu_sim().await;
    let store = MemStore::default();
    let report = run_machine_pass(&client, &store, gpu_facts(&store, 8), None)
        .await
        .unwrap();
    assert!(
        matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::NoMachineAvailable,
                after: Some(_),
            }
        ),
        "a capacity wait, not a failure Cluster API would replace at once: {:?} after {:?}",
        report.end,
        report.step_names()
    );
    assert_eq!(
        report.capacity(),
        capmaas_controllers::machine::steps::CapacityAnswer::Refused,
        "remembered as a refusal: the next passes wait out the retry delay"
    );
    let o = store.get();
    assert_eq!(o.system_id, None);
    assert!(o.gpu_rejected.is_empty(), "{:?}", o.gpu_rejected);
    assert!(
        held(&sim).is_empty(),
        "nothing stays allocated: {:?}",
        held(&sim)
    );
    assert!(
        sim.requests().count("machines:allocate", 200) <= 3,
        "bounded by the rejection budget"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn gpu_candidates_from_the_inventory_are_allocated_by_system_id() {
    let (sim, client) = gpu_sim().await;
    let inventory = capmaas_controllers::maas::inventory::EndpointInventory::default();
    let store = MemStore::default();
    let mut f = gpu_facts(&store, 4);
    capmaas_controllers::machine::capacity_note::read_gpu_candidates(
        &mut f,
        Some(&client),
        Some(&inventory),
    )
    .await;
    assert_eq!(
        f.gpu.candidates.as_deref(),
        Some(&["gpufor".to_string()][..])
    );
    sim.reset_requests();
    let report = run_machine_pass(&client, &store, f, None).await.unwrap();
    assert!(
        !report.step_names().contains(&"RejectForGpus"),
        "no machine with too few GPUs is allocated: {:?}",
        report.step_names()
    );
    assert!(
        report.step_names().contains(&"Deploy"),
        "{:?}",
        report.step_names()
    );
    assert_eq!(store.get().system_id.as_deref(), Some("gpufor"));
    assert_eq!(sim.requests().count("machines:allocate", 200), 1);

    // The inventory (read seconds ago) still offers the machine just taken: MAAS refuses it by
    // system id, nothing else is tried, and the pass waits for capacity.
    let other = MemStore::default();
    let mut f = gpu_facts(&other, 4);
    capmaas_controllers::machine::capacity_note::read_gpu_candidates(
        &mut f,
        Some(&client),
        Some(&inventory),
    )
    .await;
    sim.reset_requests();
    let report = run_machine_pass(&client, &other, f, None).await.unwrap();
    assert!(
        matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::NoMachineAvailable,
                ..
            }
        ),
        "{:?}",
        report.step_names()
    );
    assert_eq!(sim.requests().count("machines:allocate", 409), 1);
    assert_eq!(sim.requests().count("machines:allocate", 200), 0);
    assert_eq!(
        report.capacity(),
        capmaas_controllers::machine::steps::CapacityAnswer::Refused
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn set_aside_machines_survive_a_restart_and_are_never_adopted() {
    use capmaas_controllers::domain::allocation::agent_name;
    use capmaas_controllers::domain::maas_machine::owner_data_for;
    use maas_client::{AllocateParams, MaasApi};
    let (sim, client) = gpu_sim().await;
    // What a killed manager left: gpuone allocated under our agent name and set aside, the
    // attempt marked, no system id recorded.
    client
        .allocate(&AllocateParams {
            system_id: Some("gpuone".into()),
            agent_name: Some(agent_name(UID)),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .set_owner_data(
            "gpuone",
            &owner_data_for(UID, "ns", "mm-0", Some(MANAGEMENT)),
        )
        .await
        .unwrap();
    let store = MemStore::default();
    {
        let mut o = store.obj.lock().unwrap();
        o.attempt_marked = true;
        o.gpu_rejected = vec!["gpuone".into()];
    }
    let report = run_machine_pass(&client, &store, gpu_facts(&store, 2), None)
        .await
        .unwrap();
    assert_eq!(
        report.step_names().first(),
        Some(&"AdoptLookup"),
        "{:?}",
        report.step_names()
    );
    assert!(
        report.step_names().contains(&"ReleaseRejected"),
        "{:?}",
        report.step_names()
    );
    let o = store.get();
    assert_eq!(
        o.system_id.as_deref(),
        Some("gputwo"),
        "not the set-aside gpuone"
    );
    assert!(o.gpu_rejected.is_empty());
    assert_eq!(held(&sim), ["gputwo"]);
    sim.shutdown().await.unwrap();
}

/// MAAS applies the next call of `op`, then the connection closes without the answer.
fn answer_lost(op: &str) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            lose_next: 1,
            ..FaultRule::on(op)
        }],
        ..Default::default()
    }
}

fn held_machines(sim: &SimHandle) -> usize {
    sim.state()
        .machines
        .into_iter()
        .filter(|m| m.owner.is_some())
        .count()
}

/// The client the manager uses: it retries what MAAS provably did not act on, and nothing else.
fn retrying_client(sim: &SimHandle) -> MaasClient {
    MaasClient::new(MaasConfig::new(sim.url(), sim.api_key())).unwrap()
}

/// Runs a pass whose `op` call MAAS applies but whose answer is lost: the pass fails with an
/// unknown outcome, and the call went out exactly once.
async fn pass_loses_the_answer_of(
    sim: &SimHandle,
    client: &MaasClient,
    store: &MemStore,
    op: &str,
) {
    let before = sim.requests().count_op(op);
    let pass = run_machine_pass(client, store, facts(&store.get(), now()), None).await;
    assert!(
        matches!(
            pass,
            Err(ReconcileError::Maas(
                maas_client::MaasError::OutcomeUnknown { .. }
            ))
        ),
        "{pass:?}"
    );
    assert_eq!(
        sim.requests().count_op(op) - before,
        1,
        "a {op} whose outcome is unknown is not resent"
    );
}

#[tokio::test]
async fn an_allocate_whose_answer_was_lost_is_adopted_never_resent() {
    let (sim, _) = sim(answer_lost("machines:allocate")).await;
    let client = retrying_client(&sim);
    let store = MemStore::default();
    pass_loses_the_answer_of(&sim, &client, &store, "machines:allocate").await;
    assert_eq!(held_machines(&sim), 1, "MAAS did allocate");

    // The next pass looks before it acts: it finds the machine under our agent name.
    let reports = drive(&client, &store, now()).await;
    assert!(
        reports[0]
            .step_names()
            .starts_with(&["AdoptLookup", "RecordSystemId"]),
        "{:?}",
        reports[0].step_names()
    );
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    assert_eq!(sim.requests().count_op("machines:allocate"), 1);
    assert_eq!(held_machines(&sim), 1, "no second machine, no leak");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deploy_whose_answer_was_lost_is_looked_at_never_resent() {
    let (sim, _) = sim(answer_lost("machine:deploy")).await;
    let client = retrying_client(&sim);
    let store = MemStore::default();
    pass_loses_the_answer_of(&sim, &client, &store, "machine:deploy").await;

    let reports = drive(&client, &store, now()).await;
    assert_eq!(
        reports[0].step_names().first(),
        Some(&"Read"),
        "the next pass reads the machine first: {:?}",
        reports[0].step_names()
    );
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    assert_eq!(
        sim.requests().count_op("machine:deploy"),
        1,
        "MAAS applied the first deploy: none is sent again"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_release_whose_answer_was_lost_is_looked_at_never_resent() {
    let (sim, _) = sim(FaultConfig::default()).await;
    let client = retrying_client(&sim);
    let store = MemStore::default();
    let reports = drive(&client, &store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let id = store.get().system_id.unwrap();

    sim.set_faults(answer_lost("machine:release"));
    store.obj.lock().unwrap().deleting = true;
    pass_loses_the_answer_of(&sim, &client, &store, "machine:release").await;
    assert!(
        store.get().release_intent,
        "the intent was written before the release"
    );

    let reports = drive(&client, &store, now()).await;
    assert_eq!(
        reports[0].step_names().first(),
        Some(&"Read"),
        "the next pass reads the machine first: {:?}",
        reports[0].step_names()
    );
    assert_eq!(reports.last().unwrap().end, PassEnd::Finalized);
    assert_eq!(
        sim.requests().count_op("machine:release"),
        1,
        "none sent again"
    );
    let view = sim.state();
    let m = view.machine(&id).unwrap();
    assert_eq!((m.status.as_str(), m.owner.as_deref()), ("Ready", None));
    sim.shutdown().await.unwrap();
}
