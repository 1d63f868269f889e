//! What a stuck object costs MAAS, through the real API server: a MaasMachine waiting for a
//! machine that MAAS does not have while its Cluster changes all the time, a MaasCluster whose
//! API key MAAS refuses (a permanent 401), and a MaasCluster whose MAAS is down (every
//! connection dropped). Each is watched for a minute from its first refusal; the MAAS calls per
//! object per minute are printed, and bounded.

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::scenario;
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use maas_sim::{FaultConfig, FaultRule, SimConfig, SimHandle, Simulator};
use serde_json::json;

const NS: &str = "storms";
const LIMIT: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(500);
/// How long each stuck object is watched.
const WATCH: Duration = Duration::from_secs(60);
/// How often the waiting machine's Cluster changes during the watch.
const CHURN: Duration = Duration::from_millis(500);
/// The most allocate calls a machine waiting for capacity may make in the minute.
const MAX_ALLOCATES_PER_MINUTE: u64 = 2;
/// The most MAAS requests a refused or unreachable object may cost in its first minute: three
/// passes (the first, then after 15 s and 30 s more), each with up to four attempts of an
/// idempotent read inside the client. The waits double from there, up to five minutes.
const MAX_FAILING_CALLS_PER_MINUTE: u64 = 12;

fn manifest(refused_url: &str, down_url: &str, down_key: &str) -> String {
    let waiting = cluster_yaml::cluster("waiting", None)
        + &cluster_yaml::worker("waiting", "waiting-0", 4096);
    waiting
        + &format!(
            r##"---
apiVersion: v1
kind: Secret
metadata:
  name: refused-credentials
stringData:
  MAAS_ENDPOINT: "{refused_url}"
  MAAS_API_KEY: "not:our:key"
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: refused
spec:
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasCluster
    name: refused
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasCluster
metadata:
  name: refused
  labels:
    cluster.x-k8s.io/cluster-name: refused
spec:
  dnsDomain: maas
  identityRef:
    name: refused-credentials
---
apiVersion: v1
kind: Secret
metadata:
  name: down-credentials
stringData:
  MAAS_ENDPOINT: "{down_url}"
  MAAS_API_KEY: "{down_key}"
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: down
spec:
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasCluster
    name: down
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasCluster
metadata:
  name: down
  labels:
    cluster.x-k8s.io/cluster-name: down
spec:
  dnsDomain: maas
  identityRef:
    name: down-credentials
"##
        )
}

/// A MAAS whose every answer is lost: the connection closes on each request.
async fn unreachable_maas() -> SimHandle {
    Simulator::start(SimConfig {
        machines: 1,
        gpu_machines: 0,
        faults: FaultConfig {
            rules: vec![FaultRule {
                reset_rate: 1.0,
                ..FaultRule::on("*")
            }],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap()
}

fn maas_requests(sim: &SimHandle) -> u64 {
    sim.requests()
        .log
        .iter()
        .filter(|e| !e.path.starts_with("/_sim"))
        .count() as u64
}

fn allocates(sim: &SimHandle) -> u64 {
    sim.requests().count_op("machines:allocate")
}

/// Waits for the machine's first "no machine matches".
async fn first_refusal(env: &Env) -> Result<(), HarnessError> {
    wait_for("the first capacity refusal", POLL, LIMIT, || async {
        let n = allocates(&env.sim);
        Ok(((n > 0).then_some(()), format!("{n} allocate calls")))
    })
    .await
}

/// Changes the Cluster's annotations every [`CHURN`] for [`WATCH`]: each change is a watch event
/// that wakes the waiting MaasMachine.
async fn churn_cluster(env: &Env) -> Result<u32, HarnessError> {
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &scenario::capi_resource("Cluster", "clusters"),
    );
    let started = tokio::time::Instant::now();
    let mut changes = 0u32;
    while started.elapsed() < WATCH {
        let patch =
            json!({"metadata": {"annotations": {"storms.test/churn": changes.to_string()}}});
        clusters
            .patch("waiting", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        changes += 1;
        tokio::time::sleep(CHURN).await;
    }
    Ok(changes)
}

/// The reason of a MaasCluster's Ready condition.
async fn ready_reason(env: &Env, name: &str) -> Result<Option<String>, HarnessError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    let cluster = api.get(name).await?;
    let conditions = cluster.data["status"]["conditions"].as_array().cloned();
    Ok(conditions.unwrap_or_default().iter().find_map(|c| {
        (c["type"] == "Ready").then(|| c["reason"].as_str().unwrap_or_default().to_string())
    }))
}

fn per_minute(calls: u64) -> f64 {
    calls as f64 * 60.0 / WATCH.as_secs_f64()
}

async fn scenario(env: &Env, refused: &SimHandle, down: &SimHandle) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    let text = manifest(&refused.url(), &down.url(), down.api_key());
    let objects = manifests::parse(&text, std::path::Path::new("storms.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let applied = tokio::time::Instant::now();
    first_refusal(env).await?;
    let allocates_before = allocates(&env.sim);
    let changes = churn_cluster(env).await?;
    let waiting = allocates(&env.sim) - allocates_before;
    // The failing MaasClusters started at the apply: their window runs from there.
    let failing_window = applied.elapsed();
    let (refused_calls, down_calls) = (maas_requests(refused), maas_requests(down));
    let failing_per_minute = |calls: u64| calls as f64 * 60.0 / failing_window.as_secs_f64();
    eprintln!("MAAS calls of stuck objects:");
    eprintln!(
        "  waiting for capacity, {changes} Cluster changes in {} s: {waiting} allocate calls ({:.1}/min)",
        WATCH.as_secs(),
        per_minute(waiting)
    );
    eprintln!(
        "  permanent 401, {} s: {refused_calls} MAAS requests ({:.1}/min)",
        failing_window.as_secs(),
        failing_per_minute(refused_calls)
    );
    eprintln!(
        "  MAAS down, {} s: {down_calls} MAAS requests ({:.1}/min)",
        failing_window.as_secs(),
        failing_per_minute(down_calls)
    );
    assert_eq!(
        ready_reason(env, "refused").await?.as_deref(),
        Some("MaasAuthFailed")
    );
    assert_eq!(
        ready_reason(env, "down").await?.as_deref(),
        Some("MaasUnavailable")
    );
    assert!(
        waiting <= MAX_ALLOCATES_PER_MINUTE,
        "a machine waiting for capacity asked {waiting} times in a minute"
    );
    assert!(
        refused_calls <= MAX_FAILING_CALLS_PER_MINUTE,
        "a refused key cost {refused_calls} requests"
    );
    assert!(
        down_calls <= MAX_FAILING_CALLS_PER_MINUTE,
        "an unreachable MAAS cost {down_calls} requests"
    );
    Ok(())
}

#[tokio::test]
async fn stuck_objects_ask_maas_at_a_bounded_rate() {
    let refused = Simulator::start(SimConfig {
        machines: 1,
        gpu_machines: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let down = unreachable_maas().await;
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 2,
            gpu_machines: 0,
            manager_args: vec!["--orphan-sweep-interval=0".to_string()],
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let result = scenario(&env, &refused, &down).await;
    env.stop().await;
    refused.shutdown().await.unwrap();
    down.shutdown().await.unwrap();
    if let Err(e) = result {
        panic!("{e}");
    }
}
