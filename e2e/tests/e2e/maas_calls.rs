//! What one machine costs MAAS through the real API: a single control-plane Machine is created,
//! reaches Running, is deleted and released, and the simulator's request log is counted. The
//! provider's promise is a handful of calls per lifecycle and none in the steady state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, manifests};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use maas_sim::requests::RequestEntry;

const NS: &str = "maas-calls";
const CLUSTER: &str = "one";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(500);
/// The most MAAS calls one machine may cost from creation to release.
const MAX_CALLS_PER_LIFECYCLE: usize = 7;
/// How long the test watches a Running machine for steady-state calls.
const STEADY_WATCH: Duration = Duration::from_secs(10);
/// How long the workload cluster stays unreachable after the machine is deployed: more than two
/// Node retries of the machine controller (20 s apart).
const NODE_UNREACHABLE: Duration = Duration::from_secs(45);

const MANIFEST: &str = r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: one
spec:
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasCluster
    name: one
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasCluster
metadata:
  name: one
  labels:
    cluster.x-k8s.io/cluster-name: one
spec:
  dnsDomain: maas
  controlPlaneEndpoint:
    host: one.example.test
    port: 6443
---
apiVersion: v1
kind: Secret
metadata:
  name: one-bootstrap
  labels:
    cluster.x-k8s.io/cluster-name: one
type: cluster.x-k8s.io/secret
stringData:
  format: cloud-config
  value: |
    #cloud-config
    runcmd:
      - [sh, -c, "echo joining"]
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasMachine
metadata:
  name: one-cp-0
  labels:
    cluster.x-k8s.io/cluster-name: one
    cluster.x-k8s.io/control-plane: ""
spec:
  image: ubuntu/jammy
  minCPU: 2
  minMemory: 4096
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata:
  name: one-cp-0
  labels:
    cluster.x-k8s.io/cluster-name: one
    cluster.x-k8s.io/control-plane: ""
spec:
  clusterName: one
  bootstrap:
    dataSecretName: one-bootstrap
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasMachine
    name: one-cp-0
"#;

/// Requests that concern machines (allocate, reads, deploy, release, devices), not zones, DNS
/// or the version probe.
fn machine_calls(log: &[RequestEntry]) -> Vec<&RequestEntry> {
    log.iter()
        .filter(|e| e.path.contains("/machines/") || e.path.contains("/nodes/"))
        .collect()
}

fn per_op(calls: &[&RequestEntry]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(format!("{} {}", c.op, c.code)).or_default() += 1;
    }
    out
}

fn print_counts(title: &str, calls: &[&RequestEntry]) {
    eprintln!("{title}: {} MAAS machine calls", calls.len());
    let order: Vec<&str> = calls.iter().map(|c| c.op.as_str()).collect();
    eprintln!("  in order: {}", order.join(", "));
    for (op, n) in per_op(calls) {
        eprintln!("  {n:>3}  {op}");
    }
}

async fn scenario(env: &Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    let objects = manifests::parse(MANIFEST, std::path::Path::new("maas_calls.yaml"))?;
    env.sim.reset_requests();
    manifests::apply_all(&env.client, NS, &objects).await?;
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());

    // Deployed, but the workload cluster is not reachable yet (no kubeconfig Secret): the
    // provider keeps retrying the Node, and those retries must not read MAAS.
    wait_for("the MaasMachine to be ready", POLL, LIMIT, || async {
        let mm = maas_machines.get_opt("one-cp-0").await?;
        let ready = mm
            .as_ref()
            .and_then(|m| m.data["status"]["ready"].as_bool())
            == Some(true);
        Ok((ready.then_some(()), format!("ready: {ready}")))
    })
    .await?;
    let deployed = env.sim.requests().log.len();
    tokio::time::sleep(NODE_UNREACHABLE).await;
    let waiting = env.sim.requests().log;
    let node_retry_calls = machine_calls(&waiting[deployed..]);
    print_counts("ready, Node unreachable", &node_retry_calls);
    assert!(
        node_retry_calls.is_empty(),
        "the Node retry read MAAS: {:?}",
        per_op(&node_retry_calls)
    );
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;

    let rows = observe::wait_machines_running(&env.client, NS, 1, LIMIT).await?;
    eprintln!("{}", observe::render_table(&rows));
    let to_running = env.sim.requests().log;
    print_counts("create -> Running", &machine_calls(&to_running));

    // Steady state: a Running machine costs MAAS nothing, even while the Node patch is retried.
    tokio::time::sleep(STEADY_WATCH).await;
    let steady = env.sim.requests().log;
    let steady_calls = machine_calls(&steady[to_running.len()..]);
    print_counts("steady state", &steady_calls);
    assert!(
        steady_calls.is_empty(),
        "a Running machine was read from MAAS: {:?}",
        per_op(&steady_calls)
    );

    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
            "clusters",
        ),
    );
    clusters.delete(CLUSTER, &DeleteParams::default()).await?;
    wait_for("the MaasMachine to go", POLL, LIMIT, || async {
        let left = maas_machines
            .list(&ListParams::default())
            .await?
            .items
            .len();
        Ok(((left == 0).then_some(()), format!("{left} left")))
    })
    .await?;
    wait_for("the MAAS machine to be released", POLL, LIMIT, || async {
        let busy = env
            .sim
            .state()
            .machines
            .iter()
            .filter(|m| m.owner.is_some() || m.status != "Ready")
            .count();
        Ok(((busy == 0).then_some(()), format!("{busy} busy")))
    })
    .await?;

    let all = env.sim.requests().log;
    let calls = machine_calls(&all);
    print_counts("whole lifecycle", &calls);
    let allocations = calls
        .iter()
        .filter(|c| c.op == "machines:allocate" && c.code == 200)
        .count();
    assert_eq!(allocations, 1, "one allocation for one machine");
    assert!(
        calls.len() <= MAX_CALLS_PER_LIFECYCLE,
        "{} MAAS calls for one machine's life, at most {MAX_CALLS_PER_LIFECYCLE} expected: {:?}",
        calls.len(),
        per_op(&calls)
    );
    Ok(())
}

#[tokio::test]
async fn one_machine_lifecycle_costs_few_maas_calls() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 2,
            gpu_machines: 0,
            deploy_seconds: 2.0,
            // The orphan sweep lists machines on its own clock; it is not part of a lifecycle.
            manager_args: vec!["--orphan-sweep-interval=0".to_string()],
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    if let Err(e) = scenario(&env).await {
        panic!("{e}");
    }
    env.stop().await;
}
