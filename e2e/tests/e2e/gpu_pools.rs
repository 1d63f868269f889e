//! A GPU pool from the `gpu` flavour, rendered by the real clusterctl and provisioned by the real
//! kubeadm providers, scaled as cluster-autoscaler's clusterapi provider would (it is not served
//! by the Go module proxy, so the test sets the MachineDeployment's replicas itself): 0 -> 2 -> 4
//! -> 0. The template reports the capacity of the smallest matching machine MAAS has; only
//! machines with at least `minCount` GPUs are allocated; each Node registers the GPUs, labels
//! and taint of its bootstrap data; the real kube-scheduler binds GPU pods only to the pool's
//! Nodes; a scale-up beyond MAAS's machines says which constraint no machine meets; scaling to
//! 0 frees every GPU machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::clusterctl_support::Clusterctl;
use crate::kubeadm_support;
use crate::rbac_support::workspace_version;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::scenario::{capi_resource, owned_system_ids};
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use maas_sim::inventory::{GpuSpec, Inventory, MachineSpec};
use serde_json::{Value, json};

const NS: &str = "gpu-pools";
const CLUSTER: &str = "serving";
const GPU_POOL: &str = "serving-gpu-0";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(500);

/// Three CPU machines for the control plane and the CPU workers, and four GPU machines with 1,
/// 2, 4 and 8 NVIDIA GPUs: a pool asking for two GPUs may use only the last three.
fn inventory() -> Inventory {
    let cpu = |i: usize| MachineSpec {
        hostname: format!("cpu-{i}"),
        system_id: Some(format!("cpu{i:03}")),
        cpu: 8,
        memory: 16 * 1024,
        storage: vec![480],
        zone: "az1".into(),
        pool: "general".into(),
        tags: vec!["virtual".into()],
        architecture: "amd64/generic".into(),
        gpus: Vec::new(),
    };
    let gpu = |name: &str, count: u32, product: (&str, &str), cpus: u32| MachineSpec {
        hostname: name.into(),
        system_id: Some(format!("{}{count:02}", &name[..3])),
        cpu: cpus,
        memory: 256 * 1024,
        storage: vec![960, 3840],
        zone: "az1".into(),
        pool: "gpu".into(),
        tags: vec!["gpu".into(), "nvidia".into()],
        architecture: "amd64/generic".into(),
        gpus: (0..count)
            .map(|g| GpuSpec {
                vendor_id: "10de".into(),
                vendor_name: "NVIDIA Corporation".into(),
                product_id: product.0.into(),
                product_name: product.1.into(),
                pci_address: Some(format!("0000:{:02x}:00.0", 0x17 + g * 0x10)),
                numa_node: g / 4,
            })
            .collect(),
    };
    Inventory {
        zones: vec!["az1".into()],
        pools: vec!["general".into(), "gpu".into()],
        machines: vec![
            cpu(1),
            cpu(2),
            cpu(3),
            gpu("gpu-l40s", 1, ("26b9", "AD102GL [L40S]"), 32),
            gpu("gpu-a100", 2, ("20b5", "GA100 [A100 PCIe 80GB]"), 48),
            gpu("gpu-h100", 4, ("2330", "GH100 [H100 SXM5 80GB]"), 64),
            gpu("gpu-b200", 8, ("2901", "GB200 [B200]"), 96),
        ],
        ..Default::default()
    }
}

/// The machines that may back a pool of at least two GPUs.
fn eligible() -> BTreeSet<String> {
    ["gpu02", "gpu04", "gpu08"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn render(env: &Env, work: &Path, kubernetes: &str) -> String {
    let (clusterctl, _) =
        Clusterctl::for_release(env, work, "registry.example/capmaas-manager:test");
    clusterctl.run(
        &[
            "generate",
            "cluster",
            CLUSTER,
            "--infrastructure",
            &format!("maas:v{}", workspace_version()),
            "--flavor",
            "gpu",
            "--target-namespace",
            NS,
            "--kubernetes-version",
            kubernetes,
            "--control-plane-machine-count",
            "1",
            "--worker-machine-count",
            "1",
        ],
        &[
            ("MAAS_DNS_DOMAIN", "maas"),
            ("CONTROL_PLANE_MACHINE_MINCPU", "1"),
            ("CONTROL_PLANE_MACHINE_MINMEMORY", "1024"),
            ("CONTROL_PLANE_MACHINE_RESOURCEPOOL", "general"),
            ("WORKER_MACHINE_MINCPU", "1"),
            ("WORKER_MACHINE_MINMEMORY", "1024"),
            ("WORKER_MACHINE_RESOURCEPOOL", "general"),
            ("GPU_MACHINE_COUNT", "0"),
            ("GPU_MACHINE_MINCPU", "16"),
            ("GPU_MACHINE_MINMEMORY", "65536"),
            ("GPU_MACHINE_TAGS", "[gpu]"),
            ("GPU_MIN_COUNT", "2"),
        ],
    )
}

fn dynamic(env: &Env, kind: &str, plural: &str, group: &str) -> Api<DynamicObject> {
    let resource = if group == "capi" {
        capi_resource(kind, plural)
    } else {
        kube::api::ApiResource {
            group: "infrastructure.cluster.x-k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "infrastructure.cluster.x-k8s.io/v1beta1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    };
    Api::namespaced_with(env.client.clone(), NS, &resource)
}

/// The GPU template's status once it reports MAAS's machines, printed as `kubectl get maasmt`
/// shows its columns.
async fn template_status(env: &Env, available: i64) -> Value {
    let templates = dynamic(env, "MaasMachineTemplate", "maasmachinetemplates", "infra");
    let status = wait_for(
        &format!("the GPU template to count {available} available machines"),
        POLL,
        Duration::from_secs(150),
        || async {
            let t = templates.get(GPU_POOL).await?;
            let status = t.data["status"].clone();
            let now = status["availableMachines"].as_i64();
            let done = (now == Some(available)).then(|| status.clone());
            Ok((done, format!("availableMachines {now:?}: {status}")))
        },
    )
    .await
    .unwrap();
    eprintln!(
        "NAME {GPU_POOL} AVAILABLE {} GPUS {} CPU {} MEMORY {}\n  status: {status}",
        status["availableMachines"],
        status["availableGPUs"],
        status["capacity"]["cpu"],
        status["capacity"]["memory"]
    );
    status
}

async fn scale_gpu_pool(env: &Env, replicas: u32) {
    dynamic(env, "MachineDeployment", "machinedeployments", "capi")
        .patch(
            GPU_POOL,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

/// The GPU pool's MaasMachines (named after their MachineSet's Machines, so after the pool).
async fn pool_objects(env: &Env) -> Vec<DynamicObject> {
    dynamic(env, "MaasMachine", "maasmachines", "infra")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|m| {
            m.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("{GPU_POOL}-")))
        })
        .collect()
}

/// The GPU pool's MaasMachines that have a machine, by system id.
async fn pool_machines(env: &Env) -> BTreeMap<String, Value> {
    pool_objects(env)
        .await
        .into_iter()
        .filter_map(|m| Some((m.data["spec"]["systemID"].as_str()?.to_string(), m.data)))
        .collect()
}

async fn wait_pool_ready(env: &Env, count: usize) -> BTreeMap<String, Value> {
    wait_for(
        &format!("{count} GPU MaasMachines ready"),
        POLL,
        LIMIT,
        || async {
            let machines = pool_machines(env).await;
            let ready: BTreeMap<String, Value> = machines
                .into_iter()
                .filter(|(_, m)| m["status"]["ready"] == true)
                .collect();
            let n = ready.len();
            Ok(((n == count).then_some(ready), format!("{n} ready")))
        },
    )
    .await
    .unwrap()
}

/// Template capacity from MAAS, then 0 -> 2: only machines with two GPUs or more, each listing
/// its GPUs.
async fn scale_up(env: &Env) -> BTreeMap<String, Value> {
    let status = template_status(env, 3).await;
    assert_eq!(
        status["capacity"]["nvidia.com/gpu"], "2",
        "the smallest eligible: 2 GPUs"
    );
    assert_eq!(status["capacity"]["cpu"], "48");
    assert_eq!(status["capacity"]["memory"], "262144Mi");
    assert_eq!(status["capacity"]["ephemeral-storage"], "4800G");
    assert_eq!(status["availableGPUs"], 14);
    assert_eq!(status["nodeInfo"]["architecture"], "amd64");
    assert_eq!(status["conditions"][0]["reason"], "MachinesMatch");

    scale_gpu_pool(env, 2).await;
    let ready = wait_pool_ready(env, 2).await;
    let ids: BTreeSet<String> = ready.keys().cloned().collect();
    assert!(
        ids.is_subset(&eligible()),
        "only machines with 2+ GPUs: {ids:?}"
    );
    let acquired: BTreeSet<String> = env
        .sim
        .ledger()
        .into_iter()
        .filter(|e| matches!(e.event, maas_sim::ledger::LedgerEvent::Acquired { .. }))
        .map(|e| e.system_id)
        .collect();
    assert!(
        !acquired.contains("gpu01"),
        "the one-GPU machine was never allocated, not even to be set aside: {acquired:?}"
    );
    for (id, m) in &ready {
        let gpus = m["status"]["hardware"]["gpus"].as_array().unwrap();
        assert!(gpus.len() >= 2, "{id}: {gpus:?}");
        for g in gpus {
            assert_eq!(g["vendorId"], "10de", "{id}: {g}");
            for field in ["productName", "pciAddress"] {
                assert!(
                    g[field].as_str().is_some_and(|v| !v.is_empty()),
                    "{id}: {g}"
                );
            }
            assert!(g["numaNode"].as_i64().is_some(), "{id}: {g}");
        }
        eprintln!("{id}: {} GPUs: {}", gpus.len(), gpus[0]["productName"]);
    }
    ready
}

/// The Nodes of the pool, once Cluster API synced the tier label onto them.
async fn gpu_nodes(env: &Env, hostnames: &BTreeSet<String>) -> Vec<Node> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    wait_for("the tier label on the GPU Nodes", POLL, LIMIT, || async {
        let listed = nodes.list(&ListParams::default()).await?.items;
        let pool: Vec<Node> = listed
            .into_iter()
            .filter(|n| hostnames.contains(n.metadata.name.as_deref().unwrap_or_default()))
            .collect();
        let tiered = pool
            .iter()
            .filter(|n| label(n, "node.cluster.x-k8s.io/tier") == Some("shared"))
            .count();
        let done = (tiered == hostnames.len()).then(|| pool.clone());
        Ok((done, format!("{tiered} of {} labelled", hostnames.len())))
    })
    .await
    .unwrap()
}

fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// What each GPU Node registered with: its GPUs, the registration labels and the taint.
fn check_registration(nodes: &[Node], ready: &BTreeMap<String, Value>) {
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (_, machine) = ready
            .iter()
            .find(|(_, m)| m["status"]["hostname"] == name.as_str())
            .unwrap();
        let gpus = machine["status"]["hardware"]["gpus"]
            .as_array()
            .unwrap()
            .len();
        let status = node.status.clone().unwrap_or_default();
        let capacity = status.capacity.unwrap_or_default();
        assert_eq!(
            capacity.get("nvidia.com/gpu").map(|q| q.0.clone()),
            Some(gpus.to_string()),
            "{name}: the Node advertises the machine's GPUs"
        );
        assert_eq!(
            label(node, "nvidia.com/gpu.present"),
            Some("true"),
            "{name}"
        );
        assert!(label(node, "cluster-api/accelerator").is_some(), "{name}");
        let taints = node
            .spec
            .clone()
            .unwrap_or_default()
            .taints
            .unwrap_or_default();
        assert!(
            taints
                .iter()
                .any(|t| t.key == "nvidia.com/gpu" && t.effect == "NoSchedule"),
            "{name}: {taints:?}"
        );
    }
}

fn gpu_pod(name: &str, tolerate: bool) -> Pod {
    let tolerations = if tolerate {
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "automountServiceAccountToken": false,
            "nodeSelector": {"node.cluster.x-k8s.io/tier": "shared", "nvidia.com/gpu.present": "true"},
            "tolerations": tolerations,
            "containers": [{
                "name": "inference",
                "image": "registry.example/inference:1",
                "resources": {"limits": {"nvidia.com/gpu": "1"}}
            }]
        }
    }))
    .unwrap()
}

/// Two GPU pods land on the pool's Nodes; one without the toleration is bound nowhere.
async fn schedule(env: &Env, pool_hosts: &BTreeSet<String>) {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NS);
    for (name, tolerate) in [("llm-0", true), ("llm-1", true), ("untolerated", false)] {
        pods.create(&PostParams::default(), &gpu_pod(name, tolerate))
            .await
            .unwrap();
    }
    let bound = wait_for("the GPU pods to be bound", POLL, LIMIT, || async {
        let mut bound = BTreeMap::new();
        for name in ["llm-0", "llm-1"] {
            let pod = pods.get(name).await?;
            if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                bound.insert(name.to_string(), node);
            }
        }
        let n = bound.len();
        Ok(((n == 2).then_some(bound), format!("{n} bound")))
    })
    .await
    .unwrap();
    for (pod, node) in &bound {
        eprintln!("pod {pod} bound by kube-scheduler to {node}");
        assert!(
            pool_hosts.contains(node),
            "{pod} on {node}, outside the GPU pool"
        );
    }
    let why = wait_for(
        "kube-scheduler to refuse the pod without the toleration",
        POLL,
        LIMIT,
        || async {
            let pod = pods.get("untolerated").await?;
            let node = pod.spec.and_then(|s| s.node_name);
            let refused = pod
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable"))
                .and_then(|c| c.message);
            assert_eq!(
                node, None,
                "the taint keeps a pod without the toleration off the GPU Nodes"
            );
            Ok((refused, "not yet refused".to_string()))
        },
    )
    .await
    .unwrap();
    eprintln!("pod untolerated: {why}");
    assert!(why.contains("untolerated taint"), "{why}");
    // No kubelet runs to confirm a graceful deletion, and Cluster API drains a Node before its
    // machine goes: remove the pods at once.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for name in ["llm-0", "llm-1", "untolerated"] {
        pods.delete(name, &now).await.unwrap();
    }
}

/// 2 -> 4 with one eligible machine left: the third is allocated, the fourth waits and says
/// which constraint no Ready machine meets; the template shows none available.
async fn beyond_capacity(env: &Env) {
    scale_gpu_pool(env, 4).await;
    wait_pool_ready(env, 3).await;
    let message = wait_for(
        "the waiting MaasMachine to say why",
        POLL,
        LIMIT,
        || async {
            let items = pool_objects(env).await;
            let waiting = items.iter().find_map(|m| {
                let conditions = m.data["status"]["conditions"].as_array()?;
                let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
                (ready["reason"] == "NoMachineAvailable")
                    .then(|| ready["message"].as_str().map(str::to_string))
                    .flatten()
                    .filter(|m| !m.is_empty())
            });
            Ok((waiting, format!("{} MaasMachines", items.len())))
        },
    )
    .await
    .unwrap();
    eprintln!("the fourth GPU MaasMachine: {message}");
    assert!(message.contains("GPUs 0"), "{message}");
    assert!(message.ends_with("no machine meets GPUs"), "{message}");
    let status = template_status(env, 0).await;
    assert_eq!(status["conditions"][0]["reason"], "NoMachineMatches");
}

/// 4 -> 0: every GPU machine back in MAAS's pool.
async fn scale_to_zero(env: &Env) {
    scale_gpu_pool(env, 0).await;
    wait_for("the GPU machines to be free", POLL, LIMIT, || async {
        let held: BTreeSet<String> = owned_system_ids(&env.sim)
            .into_iter()
            .filter(|id| id.starts_with("gpu"))
            .collect();
        let left = pool_objects(env).await.len();
        Ok((
            (held.is_empty() && left == 0).then_some(()),
            format!("{held:?} held, {left} MaasMachines left"),
        ))
    })
    .await
    .unwrap();
}

async fn scenario(env: &Env, work: &Path) {
    let _kubeadm = kubeadm_support::start(env, "").await;
    let kubernetes = kubeadm_support::kubeadm_version();
    let rendered = render(env, work, &kubernetes);
    env.namespace(NS).await.unwrap();
    env.workload_kubeconfig_secret(NS, CLUSTER).await.unwrap();
    let objects = manifests::parse(&rendered, Path::new("generated")).unwrap();
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();
    kubeadm_support::wait_first_control_plane(env, NS, &kubernetes, LIMIT).await;
    observe::wait_machines_running(&env.client, NS, 2, LIMIT)
        .await
        .unwrap();

    let ready = scale_up(env).await;
    let hosts: BTreeSet<String> = ready
        .values()
        .filter_map(|m| m["status"]["hostname"].as_str().map(str::to_string))
        .collect();
    let nodes = gpu_nodes(env, &hosts).await;
    check_registration(&nodes, &ready);
    schedule(env, &hosts).await;
    beyond_capacity(env).await;
    scale_to_zero(env).await;
    let held = owned_system_ids(&env.sim);
    assert!(
        held.iter().all(|id| id.starts_with("cpu")),
        "only the control plane and the CPU worker hold machines: {held:?}"
    );
    check_allocations(env);
}

/// The allocate calls of the whole scenario: one per machine taken (the control plane, the CPU
/// worker, three GPU machines) and a few refusals (two MaasMachines choosing the same candidate,
/// the fourth GPU MaasMachine's first try), never an allocation storm while one waits.
fn check_allocations(env: &Env) {
    let requests = env.sim.requests();
    let taken = requests.count("machines:allocate", 200);
    let refused = requests.count("machines:allocate", 409);
    let by_op: BTreeMap<&str, usize> = requests.log.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.op.as_str()).or_default() += 1;
        m
    });
    eprintln!("MAAS calls of the scenario: {by_op:?}");
    assert_eq!(taken, 5, "one allocation per machine taken");
    assert!(refused <= 6, "{refused} refused allocations: a storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_pool_scales_from_zero_and_pods_land_on_its_nodes() {
    // The kubeadm providers and kube-scheduler are cluster-wide.
    let Some(env) = TestEnv::own(
        "gpu-pools",
        EnvOptions {
            sim_inventory: Some(inventory()),
            scheduler: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let work = env.run_dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    scenario(&env, &work).await;
    env.stop().await;
}
