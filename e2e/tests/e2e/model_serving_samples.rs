//! The model-serving samples (config/samples/model-serving) as a user applies them: every overlay,
//! the tiers, the Argo CD app of apps and the workloads rendered by the real kustomize of the
//! tools cache. Each GPU pool overlay must carry its tier's label, taints and autoscaler bounds
//! (the same contract as the gpu flavour: autoscaler_contract.rs), with the cluster's name,
//! namespace and version set in one place; the tiers, the Argo CD Applications and the workloads
//! must point at those pools. Then every rendered object whose kind the harness API server serves
//! (ours, Cluster API core and kubeadm, built-in kinds) passes a server-side dry-run, and the
//! others are exactly Argo CD's Application and KServe's InferenceService.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use capmaas_e2e::harness::crds::{self, FIELD_MANAGER};
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests, tools};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use crate::autoscaler_contract::{
    Expected, Taint, check_annotations, check_references, find, registration_taints,
};
use crate::clusterctl_support::with_contract_labels;
use crate::rbac_support::kustomize_build;

const SAMPLES: &str = "config/samples/model-serving";

/// A GPU pool overlay and what its pool must be.
struct Pool {
    overlay: &'static str,
    tier: &'static str,
    min: i64,
    max: i64,
    tags: &'static [&'static str],
    min_gpus: i64,
}

const POOLS: &[Pool] = &[
    Pool {
        overlay: "shared",
        tier: "shared",
        min: 0,
        max: 4,
        tags: &["gpu"],
        min_gpus: 1,
    },
    Pool {
        overlay: "dedicated-gold",
        tier: "gold",
        min: 1,
        max: 4,
        tags: &["gpu", "tier-gold"],
        min_gpus: 1,
    },
    Pool {
        overlay: "dedicated-platinum",
        tier: "platinum",
        min: 1,
        max: 2,
        tags: &["gpu", "tier-platinum"],
        min_gpus: 2,
    },
];

/// The sample directories besides the overlays.
const OTHERS: &[&str] = &[
    "tiers",
    "argocd",
    "argocd/apps",
    "workloads",
    "workloads/kserve",
];

/// The kinds no harness API server serves: Argo CD's and KServe's.
const ABSENT: &[(&str, &str)] = &[
    ("argoproj.io/v1alpha1", "Application"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
];

const TIER_LABEL: &str = "node.cluster.x-k8s.io/tier";

/// The cluster the pools join, as config/samples/model-serving/cluster sets it.
struct Cluster<'a> {
    name: &'a str,
    namespace: &'a str,
    version: &'a str,
}

const DEMO: Cluster = Cluster {
    name: "demo",
    namespace: "demo",
    version: "v1.33.1",
};

/// `kustomize build <samples>/<dir>`, parsed.
fn render(samples: &Path, dir: &str) -> Vec<Value> {
    let path = samples.join(dir);
    manifests::parse(&kustomize_build(&path), &path).unwrap()
}

fn samples() -> PathBuf {
    tools::workspace_root().join(SAMPLES)
}

/// The taints a pool's kubelets register: the GPU taint, and the tier's own on a dedicated pool.
fn pool_taints(pool: &Pool) -> Vec<Taint> {
    let mut taints = vec![("nvidia.com/gpu".into(), String::new(), "NoSchedule".into())];
    if pool.tier != "shared" {
        taints.push((TIER_LABEL.into(), pool.tier.into(), "NoSchedule".into()));
    }
    taints.sort();
    taints
}

/// One overlay's objects: a MaasMachineTemplate, KubeadmConfigTemplate and MachineDeployment of
/// the pool, for `cluster`, with the tier's label, taints and bounds.
fn check_pool(objects: &[Value], pool: &Pool, cluster: &Cluster) {
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "KubeadmConfigTemplate",
            "MaasMachineTemplate",
            "MachineDeployment"
        ],
        "{}",
        pool.overlay
    );
    for object in objects {
        assert_eq!(
            object["metadata"]["namespace"], cluster.namespace,
            "{}",
            pool.overlay
        );
    }
    let name = format!("{}-gpu-{}", cluster.name, pool.tier);
    let md = find(objects, "MachineDeployment", &name);
    let (template, config) = check_references(objects, md);
    assert_eq!(template["metadata"]["name"], name.as_str());
    assert_eq!(config["metadata"]["name"], name.as_str());
    check_tier(md, &config, pool);
    check_cluster_fields(md, &config, cluster);
    let machine = &template["spec"]["template"]["spec"];
    assert_eq!(
        machine["tags"],
        serde_json::json!(pool.tags),
        "{}",
        pool.overlay
    );
    assert_eq!(
        machine["gpu"]["minCount"], pool.min_gpus,
        "{}",
        pool.overlay
    );
}

/// The pool's autoscaler annotations, its registration taints and its one Machine label: the
/// tier's.
fn check_tier(md: &Value, config: &Value, pool: &Pool) {
    let want = Expected {
        min: pool.min,
        max: pool.max,
        tier: pool.tier,
        accelerator: "nvidia",
    };
    check_annotations(md, config, &want);
    assert_eq!(
        registration_taints(config),
        pool_taints(pool),
        "{}",
        pool.overlay
    );
    assert_eq!(
        md["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({TIER_LABEL: pool.tier}),
        "{}: the pool label is the only Machine label",
        pool.overlay
    );
    assert!(
        md["spec"]["replicas"].is_null(),
        "{}: the autoscaler owns replicas",
        pool.overlay
    );
}

/// The cluster's name and version wherever the pool needs them.
fn check_cluster_fields(md: &Value, config: &Value, cluster: &Cluster) {
    assert_eq!(md["spec"]["clusterName"], cluster.name);
    assert_eq!(md["spec"]["template"]["spec"]["clusterName"], cluster.name);
    assert_eq!(md["spec"]["template"]["spec"]["version"], cluster.version);
    let spec = &config["spec"]["template"]["spec"];
    assert_eq!(
        spec["files"][0]["contentFrom"]["secret"]["name"],
        format!("{}-node-prep", cluster.name),
        "the cluster's node preparation Secret"
    );
    assert_eq!(
        spec["preKubeadmCommands"][0],
        format!(
            "/usr/local/sbin/capmaas-node-prep {} '1.7.*'",
            cluster.version
        ),
        "the node preparation runs first, for the Machine's version"
    );
}

#[test]
fn every_overlay_is_the_pool_of_its_tier() {
    if tools::require_tools().is_none() {
        return;
    }
    let overlays: BTreeSet<String> = std::fs::read_dir(samples().join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let tested: BTreeSet<String> = POOLS.iter().map(|p| p.overlay.to_string()).collect();
    assert_eq!(overlays, tested, "every overlay is checked");
    for pool in POOLS {
        let objects = render(&samples(), &format!("overlays/{}", pool.overlay));
        check_pool(&objects, pool, &DEMO);
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replaces `from` by `to` in a file, which must hold `from` once.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{}: {from:?}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn cluster_name_namespace_and_version_are_set_in_one_place() {
    if tools::require_tools().is_none() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("capmaas-e2e-model-serving-")
        .tempdir()
        .unwrap();
    let copy = work.path().join("model-serving");
    copy_tree(&samples(), &copy);
    let cluster = Cluster {
        name: "gpu-east",
        namespace: "serving-prod",
        version: "v1.34.2",
    };
    edit(
        &copy.join("cluster/cluster.yaml"),
        "name: demo",
        "name: gpu-east",
    );
    edit(
        &copy.join("cluster/cluster.yaml"),
        "v1.33.1",
        cluster.version,
    );
    edit(
        &copy.join("cluster/kustomization.yaml"),
        "namespace: demo",
        "namespace: serving-prod",
    );
    for pool in POOLS {
        let dir = copy.join("overlays").join(pool.overlay);
        let text = kustomize_build(&dir);
        assert!(
            !text.contains("demo"),
            "{}: nothing left of the sample cluster",
            pool.overlay
        );
        check_pool(&manifests::parse(&text, &dir).unwrap(), pool, &cluster);
    }
}

/// Whether a toleration (as in a Pod spec) tolerates a taint.
fn tolerates(toleration: &Value, (key, value, effect): &Taint) -> bool {
    let field = |f: &str| toleration[f].as_str().unwrap_or_default();
    let effect_ok = field("effect").is_empty() || field("effect") == effect;
    match field("operator") {
        "Exists" => effect_ok && (field("key").is_empty() || field("key") == key),
        "" | "Equal" => effect_ok && field("key") == key && field("value") == value,
        _ => false,
    }
}

/// Whether every taint of a pool is tolerated by one of `tolerations`.
fn tolerates_pool(tolerations: &Value, pool: &Pool) -> bool {
    let list = tolerations.as_array().cloned().unwrap_or_default();
    pool_taints(pool)
        .iter()
        .all(|taint| list.iter().any(|t| tolerates(t, taint)))
}

/// The tiers of the `tiers` ConfigMap, by name; each one's pool selector and tolerations fit
/// the overlay of that tier and no other dedicated pool.
fn check_tiers(samples: &Path) -> BTreeMap<String, Value> {
    let objects = render(samples, "tiers");
    let config_map = find(&objects, "ConfigMap", "tiers");
    let list: Vec<Value> =
        serde_saphyr::from_str(config_map["data"]["tiers"].as_str().unwrap()).unwrap();
    let tiers: BTreeMap<String, Value> = list
        .into_iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t))
        .collect();
    let names: BTreeSet<&str> = tiers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        POOLS.iter().map(|p| p.tier).collect(),
        "one tier per pool"
    );
    for pool in POOLS {
        let tier = &tiers[pool.tier];
        assert_eq!(
            tier["pool"]["nodeSelector"],
            serde_json::json!({TIER_LABEL: pool.tier}),
            "{}",
            pool.tier
        );
        let tolerations = &tier["pool"]["tolerations"];
        assert!(
            tolerates_pool(tolerations, pool),
            "{}: tolerates its pool",
            pool.tier
        );
        for other in POOLS
            .iter()
            .filter(|p| p.tier != pool.tier && p.tier != "shared")
        {
            assert!(
                !tolerates_pool(tolerations, other),
                "{} on {}",
                pool.tier,
                other.tier
            );
        }
        assert!(
            !tier["groups"].as_array().unwrap().is_empty(),
            "{}",
            pool.tier
        );
        for limit in ["requestsPerMinute", "tokensPerMinute"] {
            assert!(
                tier["rateLimit"][limit].as_u64().unwrap() > 0,
                "{}",
                pool.tier
            );
        }
    }
    tiers
}

/// The app of apps: the root Application syncs argocd/apps, which holds one child Application per
/// overlay; every Application reads the one repository.
fn check_argocd(samples: &Path) {
    let root = render(samples, "argocd");
    assert_eq!(root.len(), 1, "one root Application");
    assert_eq!(root[0]["kind"], "Application");
    assert_eq!(
        root[0]["spec"]["source"]["path"],
        format!("{SAMPLES}/argocd/apps")
    );
    let children = render(samples, "argocd/apps");
    let paths: BTreeSet<String> = children
        .iter()
        .map(|a| a["spec"]["source"]["path"].as_str().unwrap().to_string())
        .collect();
    let overlays: BTreeSet<String> = POOLS
        .iter()
        .map(|p| format!("{SAMPLES}/overlays/{}", p.overlay))
        .collect();
    assert_eq!(paths, overlays, "one child Application per overlay");
    for app in root.iter().chain(&children) {
        let name = app["metadata"]["name"].as_str().unwrap();
        assert_eq!(app["kind"], "Application", "{name}");
        assert_eq!(app["metadata"]["namespace"], "argocd", "{name}");
        let source = &app["spec"]["source"];
        assert_eq!(
            source,
            &serde_json::json!({
                "repoURL": root[0]["spec"]["source"]["repoURL"],
                "targetRevision": root[0]["spec"]["source"]["targetRevision"],
                "path": source["path"],
            }),
            "{name}: the one repository"
        );
        assert!(
            source["repoURL"].as_str().unwrap().starts_with("https://"),
            "{name}"
        );
        let path = tools::workspace_root().join(source["path"].as_str().unwrap());
        assert!(
            path.join("kustomization.yaml").is_file(),
            "{name}: {}",
            path.display()
        );
    }
    for app in &children {
        let ignored = &app["spec"]["ignoreDifferences"][0];
        assert_eq!(ignored["kind"], "MachineDeployment");
        assert_eq!(
            ignored["jsonPointers"],
            serde_json::json!(["/spec/replicas"])
        );
    }
}

/// The inference sample (a Deployment, and the same as a KServe InferenceService) runs on the
/// gold tier's pool with one GPU.
fn check_workloads(samples: &Path, tiers: &BTreeMap<String, Value>) {
    let gold = &tiers["gold"]["pool"];
    let objects = render(samples, "workloads");
    let deployment = find(&objects, "Deployment", "llm-gold");
    let pod = &deployment["spec"]["template"]["spec"];
    let isvc_objects = render(samples, "workloads/kserve");
    assert_eq!(isvc_objects.len(), 1);
    let predictor = &find(&isvc_objects, "InferenceService", "llm-gold")["spec"]["predictor"];
    let containers = [&pod["containers"][0], &predictor["model"]];
    for (spec, container) in [pod, predictor].into_iter().zip(containers) {
        assert_eq!(spec["nodeSelector"], gold["nodeSelector"]);
        assert_eq!(spec["tolerations"], gold["tolerations"]);
        let gpus = &container["resources"]["limits"]["nvidia.com/gpu"];
        assert!(gpus == 1 || gpus == "1", "one GPU, not {gpus}");
    }
    let service = find(&objects, "Service", "llm-gold");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn tiers_argocd_and_workloads_point_at_the_pools() {
    if tools::require_tools().is_none() {
        return;
    }
    let samples = samples();
    let tiers = check_tiers(&samples);
    check_argocd(&samples);
    check_workloads(&samples, &tiers);
}

/// The kubeadm providers' CRDs, as `clusterctl init` installs them (no managers: nothing here
/// reconciles).
async fn install_kubeadm_crds(env: &Env) {
    let manifests_dir = tools::capi_manifests_dir(&tools::bin_dir().unwrap());
    let mut kubeadm = crds::read_dir(&manifests_dir.join("bootstrap-kubeadm/crd")).unwrap();
    kubeadm.extend(crds::read_dir(&manifests_dir.join("controlplane-kubeadm/crd")).unwrap());
    let kubeadm: Vec<_> = kubeadm.into_iter().map(with_contract_labels).collect();
    crds::install(&env.client, &kubeadm).await.unwrap();
}

/// The resource serving an object's kind, or `None` when the API server serves none.
async fn served(client: &kube::Client, object: &Value) -> Option<(ApiResource, ApiCapabilities)> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => Some(found),
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(kube::Error::Discovery(_)) => None,
        Err(e) => panic!("discovering {gvk:?}: {e}"),
    }
}

/// A server-side dry-run with strict field validation: an unknown field fails too. Returns the
/// object as the API server would store it (defaults and webhooks applied).
async fn dry_run(
    client: &kube::Client,
    object: &Value,
    resource: &ApiResource,
    scope: &Scope,
) -> Value {
    let name = object["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match scope {
        Scope::Cluster => Api::all_with(client.clone(), resource),
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"].as_str().unwrap();
            Api::namespaced_with(client.clone(), ns, resource)
        }
    };
    let mut params = PatchParams::apply(FIELD_MANAGER)
        .force()
        .validation_strict();
    params.dry_run = true;
    let stored = api
        .patch(name, &params, &Patch::Apply(object))
        .await
        .unwrap_or_else(|e| panic!("dry-run of {} {name}: {e}", object["kind"]));
    serde_json::to_value(stored).unwrap()
}

/// Dry-runs every served object of `objects`; returns the (apiVersion, kind) of the others.
async fn dry_run_all(env: &Env, objects: &[Value]) -> BTreeSet<(String, String)> {
    let namespaces: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    for ns in namespaces {
        env.namespace(ns).await.unwrap();
    }
    let mut absent = BTreeSet::new();
    let mut checked = 0;
    for object in objects {
        let kind = object["kind"].as_str().unwrap();
        let Some((resource, caps)) = served(&env.client, object).await else {
            absent.insert((
                object["apiVersion"].as_str().unwrap().to_string(),
                kind.to_string(),
            ));
            continue;
        };
        let stored = dry_run(&env.client, object, &resource, &caps.scope).await;
        if kind == "MachineDeployment" {
            // Cluster API starts an autoscaled pool at its min-size.
            let min = &object["metadata"]["annotations"][crate::autoscaler_contract::MIN_SIZE];
            assert_eq!(
                stored["spec"]["replicas"].to_string(),
                min.as_str().unwrap(),
                "{}",
                object["metadata"]["name"]
            );
        }
        checked += 1;
    }
    eprintln!("{checked} objects dry-run, not served: {absent:?}");
    absent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_passes_a_server_side_dry_run() {
    // The kubeadm CRDs are cluster-wide; nothing here needs our manager or MAAS machines.
    let Some(env) = TestEnv::own(
        "model-serving",
        EnvOptions {
            machines: 1,
            gpu_machines: 0,
            start_manager: false,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    install_kubeadm_crds(&env).await;
    let samples = samples();
    let mut objects = Vec::new();
    for pool in POOLS {
        objects.extend(render(&samples, &format!("overlays/{}", pool.overlay)));
    }
    for dir in OTHERS {
        objects.extend(render(&samples, dir));
    }
    let absent = dry_run_all(&env, &objects).await;
    let expected: BTreeSet<(String, String)> = ABSENT
        .iter()
        .map(|(v, k)| (v.to_string(), k.to_string()))
        .collect();
    assert_eq!(
        absent, expected,
        "only Argo CD's and KServe's kinds are not served"
    );
    env.stop().await;
}
