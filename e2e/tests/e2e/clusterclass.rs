//! ClusterClass end to end. `clusterctl generate cluster --flavor topology` renders a Cluster of
//! the class `maas` and adds the class and its templates from the release. Cluster API core with
//! managed topologies on (ClusterTopology) and the real kubeadm providers provision it with our
//! provider to Running, the node preparation patched to the topology's version. A worker-count
//! change scales the MachineDeployment. A variable change (the workers' image) makes the
//! topology controller rotate the MaasMachineTemplate: the release's immutability policy lets
//! its dry-run through while refusing a direct edit, and the workers roll onto the new image.
//! Deleting the Cluster gives every machine back to MAAS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::observe::wait_for;
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests, tools};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::clusterctl_support::Clusterctl;
use crate::kubeadm_support;
use crate::rbac_support::workspace_version;

const NS: &str = "topology";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(500);

fn kind_of(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn api(env: &Env, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let resource = kube::core::ApiResource::from_gvk_with_plural(&gvk, &manifests::plural(kind));
    Api::namespaced_with(env.client.clone(), NS, &resource)
}

/// The release's admission policy, applied as `clusterctl init` would (it is cluster-scoped).
async fn install_admission_policy(env: &Env) {
    let path = tools::workspace_root().join("config/admission/template_immutability.yaml");
    let objects = manifests::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    for object in &objects {
        let resource = manifests::resource_of(object);
        Api::<DynamicObject>::all_with(env.client.clone(), &resource)
            .patch(
                object["metadata"]["name"].as_str().unwrap(),
                &PatchParams::apply("capmaas-e2e").force(),
                &Patch::Apply(object),
            )
            .await
            .unwrap();
    }
}

/// `clusterctl generate cluster demo --flavor topology` against the release, one control-plane
/// machine and one worker, sized for the simulator's machines.
fn generate(env: &Env, work: &Path, kubernetes: &str) -> Vec<Value> {
    let (clusterctl, release_dir) =
        Clusterctl::for_release(env, work, "registry.example/capmaas-manager:test");
    assert!(release_dir.join("clusterclass-maas.yaml").is_file());
    let rendered = clusterctl.run(
        &[
            "generate",
            "cluster",
            "demo",
            "--flavor",
            "topology",
            "--infrastructure",
            &format!("maas:v{}", workspace_version()),
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
            ("WORKER_MACHINE_MINCPU", "1"),
            ("WORKER_MACHINE_MINMEMORY", "1024"),
        ],
    );
    let objects = manifests::parse(&rendered, Path::new("generated")).unwrap();
    let kinds: Vec<&str> = objects.iter().map(kind_of).collect();
    for kind in [
        "Cluster",
        "ClusterClass",
        "MaasClusterTemplate",
        "KubeadmControlPlaneTemplate",
        "Secret",
    ] {
        assert!(
            kinds.contains(&kind),
            "clusterctl added the class's {kind}: {kinds:?}"
        );
    }
    objects
}

/// The worker MachineDeployment's current MaasMachineTemplate name.
async fn worker_template(env: &Env) -> String {
    let mds = api(env, "cluster.x-k8s.io", "v1beta2", "MachineDeployment");
    let list = mds.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    list[0].data["spec"]["template"]["spec"]["infrastructureRef"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits for `workers` Running worker Machines whose MaasMachines ask for `image`, and no other
/// worker Machine left.
async fn wait_workers(env: &Env, workers: usize, image: &str) {
    let machines = api(env, "cluster.x-k8s.io", "v1beta2", "Machine");
    let maas_machines = api(
        env,
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        "MaasMachine",
    );
    wait_for(
        &format!("{workers} workers on {image}"),
        POLL,
        LIMIT,
        || async {
            let lp = ListParams::default().labels("!cluster.x-k8s.io/control-plane");
            let list = machines.list(&lp).await?.items;
            let mut on_image = 0;
            for m in &list {
                let infra = m.data["spec"]["infrastructureRef"]["name"]
                    .as_str()
                    .unwrap_or_default();
                let running = m.data["status"]["phase"] == "Running";
                let mm = maas_machines.get_opt(infra).await?;
                if running && mm.is_some_and(|mm| mm.data["spec"]["image"] == image) {
                    on_image += 1;
                }
            }
            let done = on_image == workers && list.len() == workers;
            Ok((
                done.then_some(()),
                format!(
                    "{} worker Machines, {on_image} running on {image}",
                    list.len()
                ),
            ))
        },
    )
    .await
    .unwrap();
}

async fn patch_topology(env: &Env, topology: Value) {
    api(env, "cluster.x-k8s.io", "v1beta2", "Cluster")
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"topology": topology}})),
        )
        .await
        .unwrap();
}

/// The topology's variables with the workers' image set to `image`.
async fn variables_with_image(env: &Env, image: &str) -> Value {
    let cluster = api(env, "cluster.x-k8s.io", "v1beta2", "Cluster")
        .get("demo")
        .await
        .unwrap();
    let mut variables = cluster.data["spec"]["topology"]["variables"].clone();
    for v in variables.as_array_mut().unwrap() {
        if v["name"] == "workerImage" {
            v["value"] = json!(image);
        }
    }
    variables
}

/// A direct edit of a template is refused by the admission policy.
async fn direct_edit_is_refused(env: &Env, template: &str) {
    let templates = api(
        env,
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        "MaasMachineTemplate",
    );
    let edit = json!({"spec": {"template": {"spec": {"minCPU": 3}}}});
    let refused = templates
        .patch(template, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("spec.template is immutable"),
        "{template}: {refused}"
    );
}

/// The machines MAAS deployed with the node preparation for `version`.
fn prepared_for(env: &Env, version: &str) -> usize {
    let command = format!("capmaas-node-prep {version} '1.7.*'");
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .filter(|m| m.user_data.as_deref().is_some_and(|u| u.contains(&command)))
        .count()
}

/// The class's Cluster comes up: control plane, one worker, the version patched in.
async fn comes_up(env: &Env, work: &Path, kubernetes: &str) {
    let objects = generate(env, work, kubernetes);
    env.namespace(NS).await.unwrap();
    env.workload_kubeconfig_secret(NS, "demo").await.unwrap();
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();
    kubeadm_support::wait_first_control_plane(env, NS, kubernetes, LIMIT).await;
    wait_workers(env, 1, "ubuntu/jammy").await;
    assert_eq!(
        prepared_for(env, kubernetes),
        2,
        "the class patched the topology's version in"
    );
    let maas_cluster = api(
        env,
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        "MaasCluster",
    )
    .list(&ListParams::default())
    .await
    .unwrap()
    .items;
    assert_eq!(maas_cluster[0].data["spec"]["dnsDomain"], "maas");
}

/// The workers' image: a new template, the old one untouched, the workers rolled.
async fn rolls_a_new_image(env: &Env, first_template: &str) {
    direct_edit_is_refused(env, first_template).await;
    let variables = variables_with_image(env, "ubuntu/noble").await;
    patch_topology(env, json!({"variables": variables})).await;
    wait_workers(env, 2, "ubuntu/noble").await;
    let rotated = worker_template(env).await;
    assert_ne!(
        rotated, first_template,
        "the topology controller rotated the template"
    );
    let noble = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some() && m.distro_series == "noble")
        .count();
    assert_eq!(noble, 2, "MAAS deployed the new workers with the new image");
}

fn held(env: &Env) -> usize {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .count()
}

async fn scenario(env: &Env, work: &Path) {
    let _kubeadm = kubeadm_support::start(env, "ClusterTopology=true").await;
    install_admission_policy(env).await;
    let kubernetes = kubeadm_support::kubeadm_version();
    comes_up(env, work, &kubernetes).await;

    // The worker count: one more worker of the same template.
    let first_template = worker_template(env).await;
    patch_topology(
        env,
        json!({"workers": {"machineDeployments": [{"class": "default-worker", "name": "md-0", "replicas": 2}]}}),
    )
    .await;
    wait_workers(env, 2, "ubuntu/jammy").await;
    assert_eq!(
        worker_template(env).await,
        first_template,
        "scaling keeps the template"
    );
    rolls_a_new_image(env, &first_template).await;

    api(env, "cluster.x-k8s.io", "v1beta2", "Cluster")
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("every machine back in MAAS", POLL, LIMIT, || async {
        let held = held(env);
        Ok(((held == 0).then_some(()), format!("{held} machines held")))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_the_class_runs_scales_and_rolls_a_new_template() {
    let Some(env) = TestEnv::own(
        "topology",
        EnvOptions {
            machines: 8,
            gpu_machines: 0,
            cluster_topology: true,
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
