#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What MAAS receives as user data when the bootstrap secret holds a HyperShift Ignition
//! pointer config (no `format` key), and that a malformed config is never deployed.

use std::sync::Mutex;

use capmaas_controllers::domain::allocation::MachineRequirements;
use capmaas_controllers::domain::ignition::IgnitionPatchOptions;
use capmaas_controllers::domain::ignition::additions::{HOSTNAME_FILE, PROVIDER_ID_DROPIN};
use capmaas_controllers::domain::reasons::WaitReason;
use capmaas_controllers::domain::timing::DeployFailures;
use capmaas_controllers::domain::user_data::UserDataFormat;
use capmaas_controllers::machine::decide::EraseOptions;
use capmaas_controllers::machine::decide::MaasView;
use capmaas_controllers::machine::decide::MachineFacts;
use capmaas_controllers::machine::decide::OwnerMachine;
use capmaas_controllers::machine::steps::PassEnd;
use capmaas_controllers::machine::steps::PassReport;
use capmaas_controllers::machine::steps::UserDataOptions;
use capmaas_controllers::machine::steps::run_machine_pass_with;
use capmaas_controllers::machine::store::BootstrapData;
use capmaas_controllers::machine::store::MachineStore;
use capmaas_controllers::runtime::error::ReconcileError;
use maas_client::{MaasClient, MaasConfig, RetryConfig};
use maas_sim::{SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

const UID: &str = "5d1e0c7a-aaaa-bbbb-cccc-ddddeeeeffff";
const SECRET: &str = "user-data-workers-4f3a9c1d";

fn pointer() -> Value {
    json!({"ignition": {
        "version": "3.2.0",
        "config": {"merge": [{
            "source": "https://ignition.example.test/ignition",
            "httpHeaders": [
                {"name": "Authorization", "value": "Bearer dG9rZW4="},
                {"name": "NodePool", "value": "clusters/workers"},
                {"name": "TargetConfigVersionHash", "value": "4f3a9c1d"}
            ]
        }]},
        "security": {"tls": {"certificateAuthorities": [
            {"source": "data:text/plain;charset=utf-8;base64,Q0E="}
        ]}}
    }})
}

#[derive(Default)]
struct Store {
    system_id: Mutex<Option<String>>,
    attempt: Mutex<bool>,
    value: Vec<u8>,
}

impl MachineStore for Store {
    async fn mark_attempt(&self) -> Result<(), ReconcileError> {
        *self.attempt.lock().unwrap() = true;
        Ok(())
    }
    async fn record_system_id(&self, system_id: &str) -> Result<(), ReconcileError> {
        *self.system_id.lock().unwrap() = Some(system_id.to_string());
        Ok(())
    }
    async fn mark_release_intent(&self, _: Option<DeployFailures>) -> Result<(), ReconcileError> {
        Ok(())
    }
    async fn forget(&self) -> Result<(), ReconcileError> {
        *self.system_id.lock().unwrap() = None;
        Ok(())
    }
    async fn bootstrap_data(&self, secret: &str) -> Result<BootstrapData, ReconcileError> {
        assert_eq!(secret, SECRET);
        // As HyperShift writes it: `value` and `disableTemplating`, no `format`.
        Ok(BootstrapData {
            value: self.value.clone(),
            format: None,
        })
    }
    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        Ok(())
    }
}

fn facts(store: &Store) -> MachineFacts {
    MachineFacts {
        uid: UID.into(),
        namespace: "clusters-hosted".into(),
        name: "workers-4f3a9c1d-x2".into(),
        deleting: false,
        moving: false,
        management: None,
        paused: false,
        owner: Some(OwnerMachine {
            bootstrap_data_secret: Some(SECRET.into()),
            failure_domain: None,
        }),
        cluster_infrastructure_ready: Some(true),
        system_id: store.system_id.lock().unwrap().clone(),
        attempt_marked: *store.attempt.lock().unwrap(),
        release_intent: false,
        failures: DeployFailures::default(),
        requirements: MachineRequirements {
            min_cpu: Some(1),
            min_memory_mib: Some(1024),
            ..Default::default()
        },
        image: "ubuntu/jammy".into(),
        deploy_in_memory: false,
        hwe_kernel: None,
        erase: EraseOptions::default(),
        default_zone: None,
        was_ready: false,
        released_in_state: None,
        capacity_refused_for: None,
        power_ons: None,
        ready_confirmed: false,
        deploying_for: None,
        maas: MaasView::Unread,
        gpu: Default::default(),
        made_by_go_provider: false,
        pass: Default::default(),
        now: jiff::Timestamp::now(),
    }
}

async fn sim() -> (SimHandle, MaasClient) {
    let sim = Simulator::start(SimConfig {
        machines: 2,
        gpu_machines: 0,
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

async fn drive(client: &MaasClient, store: &Store, options: &UserDataOptions) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..6 {
        let report = run_machine_pass_with(client, store, facts(store), options)
            .await
            .unwrap();
        let again = matches!(
            report.end,
            PassEnd::Waiting {
                reason: WaitReason::Deploying | WaitReason::PoweringOn,
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

fn decoded_file(doc: &Value, path: &str) -> String {
    use base64::Engine;
    let f = doc["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} missing"));
    let src = f["contents"]["source"].as_str().unwrap();
    let b64 = src.split_once(";base64,").unwrap().1;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn hypershift_pointer_is_deployed_patched_with_the_pointer_intact() {
    let (sim, client) = sim().await;
    let store = Store {
        value: serde_json::to_vec(&pointer()).unwrap(),
        ..Default::default()
    };
    let options = UserDataOptions {
        format_override: None,
        ignition: IgnitionPatchOptions {
            wipe_partitions: vec![5],
        },
    };
    let reports = drive(&client, &store, &options).await;
    let last = reports.last().unwrap();
    let PassEnd::Ready(ready) = &last.end else {
        panic!("not ready: {reports:?}");
    };
    assert!(
        reports
            .iter()
            .any(|r| r.deployed_format() == Some(UserDataFormat::Ignition)),
        "detected as Ignition by content"
    );

    let state = sim.state();
    let machine = state.machine(&ready.system_id).unwrap();
    let doc: Value = serde_json::from_str(machine.user_data.as_deref().unwrap()).unwrap();
    let want = pointer();
    assert_eq!(doc["ignition"]["version"], "3.2.0");
    assert_eq!(
        doc["ignition"]["config"]["merge"][0]["source"],
        want["ignition"]["config"]["merge"][0]["source"]
    );
    assert_eq!(
        doc["ignition"]["config"]["merge"][0]["httpHeaders"],
        want["ignition"]["config"]["merge"][0]["httpHeaders"]
    );
    assert_eq!(
        doc["ignition"]["security"]["tls"]["certificateAuthorities"][0]["source"],
        want["ignition"]["security"]["tls"]["certificateAuthorities"][0]["source"]
    );
    assert_eq!(
        decoded_file(&doc, HOSTNAME_FILE),
        format!("{}\n", machine.hostname)
    );
    let provider_id = format!("maas:///{}/{}", machine.zone, machine.system_id);
    assert_eq!(ready.provider_id, provider_id, "Node and MaasMachine agree");
    assert_eq!(
        decoded_file(&doc, PROVIDER_ID_DROPIN),
        format!("[Service]\nEnvironment=\"KUBELET_PROVIDERID={provider_id}\"\n")
    );
    assert_eq!(doc["storage"]["disks"][0]["partitions"][0]["number"], 5);
}

#[tokio::test]
async fn malformed_ignition_is_never_deployed() {
    let (sim, client) = sim().await;
    let store = Store {
        value: br#"{"ignition": {"version": "2.2.0"}, "storage": {}}"#.to_vec(),
        ..Default::default()
    };
    let reports = drive(&client, &store, &UserDataOptions::default()).await;
    let last = reports.last().unwrap();
    assert_eq!(
        last.end,
        PassEnd::Waiting {
            reason: WaitReason::InvalidBootstrapData,
            after: Some(capmaas_controllers::domain::timing::INVALID_BOOTSTRAP_RETRY),
        }
    );
    assert_eq!(
        last.bootstrap_problem(),
        Some("Ignition config version 2.2.0 is not supported (3.x only)")
    );
    assert_eq!(last.deployed_format(), None);
    // The refusal becomes the Ready condition's reason and message.
    let status = capmaas_controllers::machine::status::machine_status(
        None,
        last,
        Some(1),
        jiff::Timestamp::now(),
    )
    .unwrap();
    let ready = capmaas_api::find_condition(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("InvalidBootstrapData"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Ignition config version 2.2.0 is not supported (3.x only)")
    );
    assert!(!status.ready);
    let deploys: u64 = sim
        .requests()
        .counts
        .get("machine:deploy")
        .map(|by_code| by_code.values().sum())
        .unwrap_or(0);
    assert_eq!(deploys, 0, "no deploy of broken data");
    let held = store.system_id.lock().unwrap().clone().unwrap();
    assert_eq!(sim.state().machine(&held).unwrap().status, "Allocated");

    // The secret is fixed: the next pass deploys.
    let fixed = Store {
        value: serde_json::to_vec(&pointer()).unwrap(),
        system_id: Mutex::new(Some(held.clone())),
        attempt: Mutex::new(true),
    };
    let reports = drive(&client, &fixed, &UserDataOptions::default()).await;
    assert!(
        matches!(reports.last().unwrap().end, PassEnd::Ready(_)),
        "{reports:?}"
    );
    assert_eq!(sim.state().machine(&held).unwrap().status, "Deployed");
}
