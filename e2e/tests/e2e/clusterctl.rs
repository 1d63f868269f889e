//! The provider as users install it, with the real clusterctl against the harness API server:
//! `make release` output read as a clusterctl repository (`generate provider --describe`),
//! `clusterctl init` installing it, every flavour rendered by `generate cluster` and accepted by a
//! server-side dry-run, and our manager run exactly as the installed Deployment says (its args,
//! its credentials Secret, its ServiceAccount's ClusterRole; no admin rights) provisioning the
//! quickstart cluster to Running.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::clusterctl_support;
use crate::rbac_support;

use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::crds::FIELD_MANAGER;
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests, observe, tools};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use clusterctl_support::{
    CAPI_VERSION, Clusterctl, capi_repositories, cert_manager_api, file_url, write_config,
};
use rbac_support::{release, start_manager_as_deployment, workspace_version};

const PROVIDER_NS: &str = "capmaas-system";
const RUN_NS: &str = "clusterctl-run";
const LIMIT: Duration = Duration::from_secs(300);
const FLAVOURS: &[&str] = &["", "gpu", "ignition", "kube-vip"];

fn doc_kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

/// Server-side dry-run of every object: the API server validates each against the installed
/// CRDs (and CAPI's webhooks) without storing anything.
async fn dry_run_apply(env: &Env, namespace: &str, objects: &[Value]) {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = true;
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap();
        manifests::api_for(&env.client, namespace, object)
            .patch(name, &params, &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("dry-run of {} {name}: {e}", doc_kind(object)));
    }
}

async fn scenario(env: &Env, work: &Path) {
    let version = workspace_version();
    let provider = format!("maas:v{version}");
    let image = format!("registry.example/capmaas-manager:v{version}");
    let release_dir = release(&work.join("release"), &image);
    let components = release_dir.join("infrastructure-components.yaml");
    for file in [
        "metadata.yaml",
        "infrastructure-components.yaml",
        "cluster-template.yaml",
        "cluster-template-gpu.yaml",
        "cluster-template-ignition.yaml",
        "cluster-template-kube-vip.yaml",
    ] {
        assert!(release_dir.join(file).is_file(), "release has {file}");
    }

    let mut providers = vec![(
        "maas".to_string(),
        "InfrastructureProvider".to_string(),
        file_url(&components),
    )];
    providers.extend(capi_repositories(&env.client, &work.join("capi-repo")).await);
    let config = work.join("clusterctl.yaml");
    write_config(&config, &providers);
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let clusterctl = Clusterctl {
        bin: tools::bin_dir().unwrap().join("clusterctl"),
        home,
        config,
        kubeconfig: env.kubeconfig.clone(),
    };

    // The repository describes itself: variables and image.
    let describe = clusterctl.run(
        &[
            "generate",
            "provider",
            "--infrastructure",
            &provider,
            "--describe",
        ],
        &[],
    );
    eprintln!("{describe}");
    for expected in [
        "MAAS_ENDPOINT",
        "MAAS_API_KEY",
        PROVIDER_NS,
        image.as_str(),
        &format!("v{version}"),
    ] {
        assert!(describe.contains(expected), "describe shows {expected}");
    }

    // clusterctl init installs it (credentials from the simulator).
    cert_manager_api(&env.client).await;
    let sim_url = env.sim.url();
    let sim_key = env.sim.api_key().to_string();
    let init = clusterctl.run(
        &[
            "init",
            "--core",
            &format!("cluster-api:{CAPI_VERSION}"),
            "--bootstrap",
            &format!("kubeadm:{CAPI_VERSION}"),
            "--control-plane",
            &format!("kubeadm:{CAPI_VERSION}"),
            "--infrastructure",
            &provider,
        ],
        &[("MAAS_ENDPOINT", &sim_url), ("MAAS_API_KEY", &sim_key)],
    );
    eprintln!("{init}");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), PROVIDER_NS);
    let deployment = deployments.get("capmaas-controller-manager").await.unwrap();
    let spec = rbac_support::manager_container(&deployment);
    assert_eq!(spec.command, vec!["/capmaas-manager".to_string()]);
    assert_eq!(
        deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref(),
        Some(image.as_str())
    );
    let secret = Api::<Secret>::namespaced(env.client.clone(), PROVIDER_NS)
        .get("capmaas-manager-bootstrap-credentials")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["MAAS_ENDPOINT"].0, sim_url.as_bytes());
    assert_eq!(data["MAAS_API_KEY"].0, sim_key.as_bytes());
    let inventory = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("clusterctl.cluster.x-k8s.io", "v1alpha3", "Provider"),
        "providers",
    );
    let installed: Vec<String> =
        Api::<DynamicObject>::namespaced_with(env.client.clone(), PROVIDER_NS, &inventory)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
    assert_eq!(installed, vec!["infrastructure-maas".to_string()]);

    // Every flavour renders with the documented variables and passes a server-side dry-run.
    for flavour in FLAVOURS {
        let ns = format!(
            "flavour-{}",
            if flavour.is_empty() {
                "default"
            } else {
                flavour
            }
        );
        env.namespace(&ns).await.unwrap();
        let mut args = vec![
            "generate",
            "cluster",
            "demo",
            "--infrastructure",
            &provider,
            "--target-namespace",
            &ns,
            "--kubernetes-version",
            "v1.33.1",
            "--control-plane-machine-count",
            "3",
            "--worker-machine-count",
            "2",
        ];
        if !flavour.is_empty() {
            args.extend(["--flavor", flavour]);
        }
        let rendered = clusterctl.run(
            &args,
            &[
                ("MAAS_DNS_DOMAIN", "maas"),
                ("WORKER_MACHINE_TAGS", "[ssd,rack-a]"),
                // The Go provider's spellings: one tag and a pool per machine kind.
                ("CONTROL_PLANE_MACHINE_TAG", "cp"),
                ("CONTROL_PLANE_MACHINE_RESOURCEPOOL", "pool-cp"),
                ("WORKER_MACHINE_RESOURCEPOOL", "pool-w"),
                ("CONTROL_PLANE_ENDPOINT_IP", "10.20.0.100"),
            ],
        );
        assert!(!rendered.contains("${"), "no variable left unrendered");
        let objects = manifests::parse(&rendered, Path::new("generated")).unwrap();
        let kinds: Vec<&str> = objects.iter().map(doc_kind).collect();
        for kind in [
            "Cluster",
            "MaasCluster",
            "KubeadmControlPlane",
            "MachineDeployment",
        ] {
            assert!(kinds.contains(&kind), "{flavour:?} renders a {kind}");
        }
        let templates: Vec<&Value> = objects
            .iter()
            .filter(|o| doc_kind(o) == "MaasMachineTemplate")
            .collect();
        let worker = templates
            .iter()
            .find(|t| t["metadata"]["name"] == "demo-md-0")
            .unwrap();
        assert_eq!(
            worker["spec"]["template"]["spec"]["tags"],
            serde_json::json!(["ssd", "rack-a"])
        );
        assert_eq!(worker["spec"]["template"]["spec"]["resourcePool"], "pool-w");
        let control_plane = templates
            .iter()
            .find(|t| t["metadata"]["name"] == "demo-control-plane")
            .unwrap();
        let cp_spec = &control_plane["spec"]["template"]["spec"];
        assert_eq!(cp_spec["tags"], serde_json::json!(["cp"]));
        assert_eq!(cp_spec["resourcePool"], "pool-cp");
        match *flavour {
            "gpu" => {
                let gpu = templates
                    .iter()
                    .find(|t| t["metadata"]["name"] == "demo-gpu-0")
                    .unwrap();
                assert_eq!(gpu["spec"]["template"]["spec"]["gpu"]["vendor"], "nvidia");
                let config = objects
                    .iter()
                    .find(|o| {
                        doc_kind(o) == "KubeadmConfigTemplate"
                            && o["metadata"]["name"] == "demo-gpu-0"
                    })
                    .unwrap();
                let registration =
                    &config["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"];
                assert_eq!(
                    registration["taints"],
                    serde_json::json!([{"key": "nvidia.com/gpu", "effect": "NoSchedule"}])
                );
                let node_labels = registration["kubeletExtraArgs"][0]["value"]
                    .as_str()
                    .unwrap();
                assert!(
                    node_labels
                        .split(',')
                        .any(|l| l == "nvidia.com/gpu.present=true"),
                    "{node_labels}"
                );
            }
            "kube-vip" => {
                let cluster = objects.iter().find(|o| doc_kind(o) == "Cluster").unwrap();
                assert_eq!(
                    cluster["spec"]["controlPlaneEndpoint"],
                    serde_json::json!({"host": "10.20.0.100", "port": 6443})
                );
                let kcp = objects
                    .iter()
                    .find(|o| doc_kind(o) == "KubeadmControlPlane")
                    .unwrap();
                let files = kcp["spec"]["kubeadmConfigSpec"]["files"]
                    .as_array()
                    .unwrap();
                let manifest = files
                    .iter()
                    .find(|f| f["path"] == "/etc/kubernetes/manifests/kube-vip.yaml")
                    .unwrap();
                let pod: Value =
                    serde_saphyr::from_str(manifest["content"].as_str().unwrap()).unwrap();
                assert_eq!(pod["kind"], "Pod");
                let env_of = |name: &str| {
                    pod["spec"]["containers"][0]["env"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|e| e["name"] == name)
                        .map(|e| e["value"].clone())
                };
                assert_eq!(env_of("address"), Some(serde_json::json!("10.20.0.100")));
                assert_eq!(env_of("cp_enable"), Some(serde_json::json!("true")));
            }
            "ignition" => {
                let kcp = objects
                    .iter()
                    .find(|o| doc_kind(o) == "KubeadmControlPlane")
                    .unwrap();
                assert_eq!(kcp["spec"]["kubeadmConfigSpec"]["format"], "ignition");
            }
            _ => {
                let cp = templates
                    .iter()
                    .find(|t| t["metadata"]["name"] == "demo-control-plane")
                    .unwrap();
                assert_eq!(cp["spec"]["template"]["spec"]["image"], "ubuntu/jammy");
            }
        }
        dry_run_apply(env, &ns, &objects).await;
    }

    // The installed Deployment, run as it is (args, Secret, ServiceAccount token bound to the
    // installed ClusterRole), provisions the quickstart cluster.
    let (manager, _) = start_manager_as_deployment(
        env,
        PROVIDER_NS,
        "capmaas-controller-manager",
        &[format!("--leader-election-namespace={PROVIDER_NS}")],
    )
    .await;
    env.namespace(RUN_NS).await.unwrap();
    env.workload_kubeconfig_secret(RUN_NS, "demo")
        .await
        .unwrap();
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let objects = manifests::parse(&std::fs::read_to_string(&sample).unwrap(), &sample).unwrap();
    manifests::apply_all(&env.client, RUN_NS, &objects)
        .await
        .unwrap();
    let rows = observe::wait_machines_running(&env.client, RUN_NS, 6, LIMIT)
        .await
        .unwrap();
    eprintln!("{}", observe::render_table(&rows));
    let log = std::fs::read_to_string(manager.log()).unwrap();
    let forbidden: Vec<&str> = log.lines().filter(|l| l.contains("forbidden")).collect();
    assert!(
        forbidden.is_empty(),
        "calls outside the installed ClusterRole: {forbidden:#?}"
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterctl_installs_and_renders_the_release() {
    // clusterctl init installs providers and CRDs cluster-wide.
    let Some(env) = TestEnv::own(
        "clusterctl",
        EnvOptions {
            machines: 8,
            gpu_machines: 0,
            start_manager: false,
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
