//! A HyperShift NodePool on MAAS, end to end against the real Cluster API core at the release
//! each fork line vendors (1.10 on 4.20, 1.9 on 4.21; v1beta1 only; from the `capi-1.10` and
//! `capi-1.9` tools sets): exactly the objects the HyperShift MAAS fork creates in a hosted
//! control plane namespace, under the CRDs each line has (4.20's installer ships the Go
//! provider's base shape, contract v1beta1 only, so the API server prunes every field we add;
//! 4.21's ships none, so ours), with our manager run as HyperShift's `capi-provider` Deployment
//! runs it, under the fork's own Role and nothing cluster-wide, on both credential styles:
//! - the 4.19/4.20 lines: `--namespace`, leader election, env `MAAS_ENDPOINT`, `MAAS_API_KEY`
//!   and `MAAS_ZONE`;
//! - the 4.21 line: no `--namespace` and no MAAS env; the manager watches its own namespace and
//!   reads the `<hosted>-maas-credentials` Secret (`endpoint`, `api-key`, `zone`, plus the
//!   `ca.crt` of a MAAS behind a private CA, reached through a TLS front). Before that, under a
//!   Role with no watch, `/readyz` fails naming the watch and `/healthz` says so.
//!
//! Shows: 2 Machines Running on machines of the configured zone; the user data MAAS received is
//! the Ignition pointer config, intact, plus the host name and kubelet provider-id files;
//! `status.ready` on the pruned MaasMachines; core Events (the Role has no `events.k8s.io`), the
//! orphan sweep on and no ERROR log line; a new template (new name, new image, new secret)
//! rolls both machines with never fewer than 2 Running, through a kill -9 of the manager in the
//! middle; the old MAAS machines are released; on the 4.21 line, a GPU NodePool selected by tag
//! reports its GPUs from MAAS and runs on a GPU machine (`hypershift_gpu`); and deleting the
//! Cluster leaves nothing behind.
//!
//! Stand-ins for what a real HyperShift install has: a HostedControlPlane CRD and object
//! (initialized, externally managed), and node pressure conditions on the simulator's Nodes
//! (Cluster API counts a Machine available, which the rollout waits for, only with them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::hypershift_gpu;
use crate::hypershift_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capmaas_e2e::harness::observe::{self, machine_rows, wait_for};
use capmaas_e2e::harness::scenario::system_id_of;
use capmaas_e2e::harness::tls_front::TlsFront;
use capmaas_e2e::harness::tools::CapiRelease;
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use hypershift_support::{
    ForkLine, Provider, fork_role_rules, hosted_credentials_secret,
    install_hosted_control_plane_crd, install_hypershift_crds, lease_only_rules, log_lines_at,
    probe, role_identity,
};

const NS: &str = "clusters-hosted";
const CLUSTER: &str = "hosted";
const NODEPOOL: &str = "workers";
const ZONE: &str = "az2";
const HASH_1: &str = "6b4f9d2a";
const HASH_2: &str = "91c7e3f0";
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(300);
const TOKEN: &str = "Bearer aG9zdGVkLXRva2VuLWZvci13b3JrZXJz";
const IGNITION_URL: &str = "https://ignition-server-clusters-hosted.apps.example.test/ignition";
const CA_URL: &str = "data:text/plain;charset=utf-8;base64,LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t";

/// The Ignition 3.2.0 pointer config HyperShift's ignition server hands out for a NodePool.
fn pointer_config(hash: &str) -> Value {
    json!({"ignition": {
        "version": "3.2.0",
        "config": {"merge": [{
            "source": IGNITION_URL,
            "httpHeaders": [
                {"name": "Authorization", "value": TOKEN},
                {"name": "NodePool", "value": format!("clusters/{NODEPOOL}")},
                {"name": "TargetConfigVersionHash", "value": hash}
            ]
        }]},
        "security": {"tls": {"certificateAuthorities": [{"source": CA_URL}]}},
        "timeouts": {}
    }})
}

fn template_name(hash: &str) -> String {
    format!("{NODEPOOL}-{hash}")
}

fn secret_name(hash: &str) -> String {
    format!("user-data-{NODEPOOL}-{hash}")
}

/// What the fork writes per NodePool version: the template and the user-data secret (keys
/// `value` and `disableTemplating`, no `format`).
fn nodepool_version(hash: &str, image: &str) -> Vec<Value> {
    let value = serde_json::to_vec(&pointer_config(hash)).unwrap();
    vec![
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "MaasMachineTemplate",
            "metadata": {
                "name": template_name(hash),
                "annotations": {"hypershift.openshift.io/nodePool": format!("clusters/{NODEPOOL}")}
            },
            "spec": {"template": {"spec": {"image": image, "minCPU": 1, "minMemory": 1024}}}
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name(hash)},
            "data": {
                "value": STANDARD.encode(value),
                "disableTemplating": STANDARD.encode("true")
            }
        }),
    ]
}

fn objects() -> Vec<Value> {
    let endpoint = json!({"host": "api.hosted.example.test", "port": 6443});
    let mut objects = vec![
        json!({
            "apiVersion": "hypershift.openshift.io/v1beta1",
            "kind": "HostedControlPlane",
            "metadata": {"name": CLUSTER},
            "spec": {}
        }),
        json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "MaasCluster",
            "metadata": {
                "name": CLUSTER,
                "annotations": {"spectrocloud.com/custom-dns-provided": ""},
                "labels": {"hypershift.openshift.io/cluster": CLUSTER}
            },
            "spec": {"dnsDomain": "maas.local", "controlPlaneEndpoint": endpoint}
        }),
        json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "Cluster",
            "metadata": {"name": CLUSTER},
            "spec": {
                "controlPlaneEndpoint": endpoint,
                "controlPlaneRef": {
                    "apiVersion": "hypershift.openshift.io/v1beta1",
                    "kind": "HostedControlPlane",
                    "name": CLUSTER,
                    "namespace": NS
                },
                "infrastructureRef": {
                    "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                    "kind": "MaasCluster",
                    "name": CLUSTER,
                    "namespace": NS
                }
            }
        }),
    ];
    objects.extend(nodepool_version(HASH_1, "ubuntu/focal"));
    let labels = json!({
        "cluster.x-k8s.io/cluster-name": CLUSTER,
        "hypershift.openshift.io/nodePool": NODEPOOL
    });
    objects.push(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "metadata": {
            "name": NODEPOOL,
            "labels": {"cluster.x-k8s.io/cluster-name": CLUSTER},
            "annotations": {"hypershift.openshift.io/nodePool": format!("clusters/{NODEPOOL}")}
        },
        "spec": {
            "clusterName": CLUSTER,
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "clusterName": CLUSTER,
                    "bootstrap": {"dataSecretName": secret_name(HASH_1)},
                    "infrastructureRef": {
                        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                        "kind": "MaasMachineTemplate",
                        "name": template_name(HASH_1),
                        "namespace": NS
                    }
                }
            }
        }
    }));
    objects
}

fn infra(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", kind),
        plural,
    )
}

/// The HostedControlPlane reports an initialized, ready, externally managed control plane.
async fn mark_control_plane_initialized(env: &Env) {
    let hcp: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("hypershift.openshift.io", "v1beta1", "HostedControlPlane"),
            "hostedcontrolplanes",
        ),
    );
    hcp.patch_status(
        CLUSTER,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "initialized": true,
            "ready": true,
            "externalManagedControlPlane": true
        }})),
    )
    .await
    .unwrap();
}

fn decoded_file(doc: &Value, path: &str) -> Option<String> {
    let f = doc["storage"]["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == path)?;
    let b64 = f["contents"]["source"].as_str()?.split_once(";base64,")?.1;
    String::from_utf8(STANDARD.decode(b64).ok()?).ok()
}

/// Checks what MAAS received as user data for each machine: the pointer config of `hash`,
/// intact, plus the host name and provider-id files of that machine.
fn check_user_data(env: &Env, system_ids: &BTreeSet<String>, hash: &str) {
    let state = env.sim.state();
    let want = pointer_config(hash);
    for id in system_ids {
        let m = state.machine(id).unwrap();
        assert_eq!(m.zone, ZONE, "{id} allocated in MAAS_ZONE");
        let doc: Value = serde_json::from_str(m.user_data.as_deref().unwrap()).unwrap();
        assert_eq!(doc["ignition"]["version"], "3.2.0");
        let merge = &doc["ignition"]["config"]["merge"][0];
        assert_eq!(merge["source"], IGNITION_URL, "{id}");
        assert_eq!(
            merge["httpHeaders"], want["ignition"]["config"]["merge"][0]["httpHeaders"],
            "{id}: headers (Bearer token, NodePool, TargetConfigVersionHash) intact"
        );
        assert_eq!(
            doc["ignition"]["security"]["tls"]["certificateAuthorities"][0]["source"], CA_URL,
            "{id}: CA intact"
        );
        assert_eq!(
            decoded_file(&doc, "/etc/hostname"),
            Some(format!("{}\n", m.hostname)),
            "{id}"
        );
        assert_eq!(
            decoded_file(
                &doc,
                "/etc/systemd/system/kubelet.service.d/20-maas-providerid.conf"
            ),
            Some(format!(
                "[Service]\nEnvironment=\"KUBELET_PROVIDERID=maas:///{ZONE}/{id}\"\n"
            )),
            "{id}"
        );
        assert!(
            doc["storage"].get("disks").is_none(),
            "no wipe unless asked"
        );
    }
}

async fn running_system_ids(env: &Env) -> BTreeSet<String> {
    machine_rows(&env.client, NS)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.phase == "Running")
        .filter_map(|r| r.provider_id)
        .filter_map(|p| system_id_of(&p).map(str::to_string))
        .collect()
}

fn owned_by_us(env: &Env) -> BTreeSet<String> {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| m.system_id.clone())
        .collect()
}

/// The 4.20 line's installer ships its own copy of the Go provider's CRDs (contract v1beta1
/// only), which replaces ours. The 4.19 and 4.21 installers ship none, so ours are what a user
/// installs there, and the 4.21 scenario keeps them.
async fn install_fork_crds(env: &Env) {
    install_hypershift_crds(env).await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let labels = crds
        .get("maasmachines.infrastructure.cluster.x-k8s.io")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels.get("cluster.x-k8s.io/v1beta1").map(String::as_str),
        Some("v1beta1")
    );
    assert!(
        !labels.contains_key("cluster.x-k8s.io/v1beta2"),
        "{labels:?}"
    );
}

/// Under a Role that grants no watch, the provider leads but reconciles nothing, and its probes
/// say so: `/readyz` fails naming the watch, `/healthz` stays OK with the same words.
async fn no_watch_is_not_ready(env: &Env) {
    let kubeconfig = role_identity(env, NS, "lease-only", lease_only_rules()).await;
    let mut provider =
        Provider::start_as(env, ForkLine::SecretCredentials, NS, &kubeconfig, ZONE).await;
    let (status, body) = wait_for("/readyz to name the failing watch", POLL, LIMIT, || async {
        let (status, body) = probe(&provider.readyz).await;
        let said = status == 503 && body.contains("watch failing");
        Ok((
            said.then(|| (status, body.clone())),
            format!("{status} {body}"),
        ))
    })
    .await
    .unwrap();
    assert!(
        body.contains("maasmachine watch failing"),
        "{status} {body}"
    );
    let (status, health) = probe(&provider.healthz).await;
    assert_eq!(status, 200, "{health}");
    assert!(
        health.contains("not ready: ") && health.contains("watch failing"),
        "{health}"
    );
    let warned = log_lines_at(&provider, "WARN");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("watching this manager's own namespace only")),
        "{}",
        provider.process.tail(40)
    );
    provider.process.stop().await;
}

/// What the provider must show under the fork's Role: core Events on the MaasMachines (the
/// Role has no `events.k8s.io`), the orphan sweep on, and no ERROR line in its log.
async fn check_role_behaviour(env: &Env, provider: &Provider) {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), NS);
    let about_machines = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("MaasMachine"))
        .count();
    assert!(about_machines > 0, "no core Event about a MaasMachine");
    let log = std::fs::read_to_string(provider.process.log()).unwrap();
    assert!(
        log.contains("orphan sweep on"),
        "{}",
        provider.process.tail(60)
    );
    assert!(
        log.contains("writing core v1 Events"),
        "{}",
        provider.process.tail(60)
    );
    let errors = log_lines_at(provider, "ERROR");
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
}

async fn scenario(env: &Env, line: ForkLine) {
    let (front, kubeconfig) = prepare(env, line).await;
    let mut provider = Provider::start_as(env, line, NS, &kubeconfig, ZONE).await;
    let first_machines = first_nodepool_version(env, line, &front).await;
    let first_uids = check_statuses(env, line).await;
    let rollout = Rollout {
        line,
        kubeconfig: &kubeconfig,
        first_machines,
        first_uids: first_uids.clone(),
    };
    let second = roll(env, &rollout, &mut provider).await;
    old_machines_released(env, &first_uids, &second).await;
    // The 4.21 credentials Secret is kept until the machines are released, then let go.
    let hosted = line == ForkLine::SecretCredentials;
    if hosted {
        hypershift_gpu::gpu_nodepool(env, CLUSTER, NS, &secret_name(HASH_2)).await;
    }
    if hosted {
        assert!(
            credentials_finalized(env).await,
            "the credentials Secret is guarded"
        );
    }
    delete_hosted_cluster(env).await;
    if hosted {
        wait_for("the credentials Secret let go", POLL, LIMIT, || async {
            let on = credentials_finalized(env).await;
            Ok(((!on).then_some(()), format!("finalizer on: {on}")))
        })
        .await
        .unwrap();
    }
    provider.process.stop().await;
}

/// The fork's surroundings for `line`: Cluster API v1beta1 only, the line's CRDs, the namespace, a TLS
/// front for MAAS (the 4.21 line's credentials Secret trusts its CA) and the provider's
/// kubeconfig under the fork's Role. Returns the front and the kubeconfig.
async fn prepare(env: &Env, line: ForkLine) -> (TlsFront, std::path::PathBuf) {
    // Cluster API 1.9 or 1.10, as the fork vendors it: v1beta1 only.
    let group = kube::discovery::group(&env.client, "cluster.x-k8s.io")
        .await
        .unwrap();
    assert_eq!(group.versions().collect::<Vec<_>>(), ["v1beta1"]);
    if line == ForkLine::EnvCredentials {
        install_fork_crds(env).await;
    }
    install_hosted_control_plane_crd(env).await;

    env.namespace(NS).await.unwrap();
    env.workload_kubeconfig_secret(NS, CLUSTER).await.unwrap();
    // The 4.21 line's MAAS sits behind a private CA, trusted through the credentials Secret.
    let front = TlsFront::start(env.sim.addr()).await.unwrap();
    if line == ForkLine::SecretCredentials {
        no_watch_is_not_ready(env).await;
        hosted_credentials_secret(env, NS, CLUSTER, ZONE, (&front.url(), &front.ca_pem)).await;
    }
    let kubeconfig = role_identity(env, NS, "capi-provider", fork_role_rules()).await;
    (front, kubeconfig)
}

/// The first NodePool version: 2 Machines Running on machines of the zone, with the first user
/// data and image. Returns the Machines' names.
async fn first_nodepool_version(env: &Env, line: ForkLine, front: &TlsFront) -> BTreeSet<String> {
    manifests::apply_all(&env.client, NS, &objects())
        .await
        .unwrap();
    mark_control_plane_initialized(env).await;

    // 2 Machines Running on MAAS machines of MAAS_ZONE.
    observe::wait_machines_running(&env.client, NS, 2, LIMIT)
        .await
        .unwrap();
    let first = running_system_ids(env).await;
    assert_eq!(first.len(), 2, "{first:?}");
    let first_machines: BTreeSet<String> = machine_rows(&env.client, NS)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    check_user_data(env, &first, HASH_1);
    if line == ForkLine::SecretCredentials {
        assert!(
            front.handshakes() > 0,
            "MAAS was not reached through its private CA"
        );
    }
    for id in &first {
        assert_eq!(env.sim.state().machine(id).unwrap().distro_series, "focal");
    }

    first_machines
}

/// The MaasMachines and the MaasCluster ready, pruned under the fork's CRDs only, and no MAAS
/// DNS record (custom DNS). Returns the MaasMachines' uids.
async fn check_statuses(env: &Env, line: ForkLine) -> BTreeSet<String> {
    // Status under the pruned CRDs: ready set, our extensions gone.
    let maas_machines: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &infra("MaasMachine", "maasmachines"),
    );
    let listed = maas_machines.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    let first_uids: BTreeSet<String> = listed
        .items
        .iter()
        .filter_map(|m| m.metadata.uid.clone())
        .collect();
    for mm in &listed.items {
        assert_eq!(mm.data["status"]["ready"], true, "{:?}", mm.data["status"]);
        // Only the 4.20 line's CRDs are narrower than ours.
        let pruned = mm.data["status"].get("initialization").is_none()
            && mm.data["status"].get("hardware").is_none();
        assert_eq!(
            pruned,
            line == ForkLine::EnvCredentials,
            "fields outside the base shape are pruned under the fork's CRDs only: {:?}",
            mm.data["status"]
        );
    }
    let maas_clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &infra("MaasCluster", "maasclusters"),
    );
    let mc = maas_clusters.get(CLUSTER).await.unwrap();
    assert_eq!(mc.data["status"]["ready"], true);
    assert!(
        env.sim.state().dnsresources.is_empty(),
        "custom DNS: no MAAS DNS record"
    );

    first_uids
}

/// What a rollout starts from.
struct Rollout<'a> {
    line: ForkLine,
    kubeconfig: &'a std::path::Path,
    first_machines: BTreeSet<String>,
    first_uids: BTreeSet<String>,
}

/// The fewest Running Machines seen over the rollout's polls, and how many polls.
#[derive(Default)]
struct Sampled {
    fewest_running: AtomicUsize,
    samples: AtomicUsize,
}

impl Sampled {
    fn saw(&self, running: usize) {
        self.fewest_running.fetch_min(running, Ordering::Relaxed);
        self.samples.fetch_add(1, Ordering::Relaxed);
    }
}

/// A changed NodePool rolled through a kill -9 of the provider: never fewer than 2 Running, both
/// Machines replaced, the new user data and image. Returns the new MAAS machines.
async fn roll(env: &Env, from: &Rollout<'_>, provider: &mut Provider) -> BTreeSet<String> {
    new_nodepool_version(env).await;
    let sampled = Sampled {
        fewest_running: AtomicUsize::new(usize::MAX),
        ..Default::default()
    };
    // A crash mid-rollout: once MAAS holds a machine for a new MaasMachine, kill -9 the
    // provider and start it again; nothing may leak and the rollout must carry on.
    new_machine_held(env, &from.first_uids, &sampled).await;
    check_role_behaviour(env, provider).await;
    provider.process.kill().await;
    *provider = Provider::start_as(env, from.line, NS, from.kubeconfig, ZONE).await;
    let second = both_replaced(env, &from.first_machines, &sampled).await;
    assert!(
        sampled.samples.load(Ordering::Relaxed) >= 3,
        "the rollout was sampled {} times",
        sampled.samples.load(Ordering::Relaxed)
    );
    assert_eq!(
        sampled.fewest_running.load(Ordering::Relaxed),
        2,
        "never fewer than 2 Running Machines during the rollout"
    );
    check_user_data(env, &second, HASH_2);
    for id in &second {
        assert_eq!(env.sim.state().machine(id).unwrap().distro_series, "jammy");
    }
    second
}

/// The fork's objects for a changed NodePool, and the MachineDeployment pointed at them.
async fn new_nodepool_version(env: &Env) {
    // A changed NodePool: new template name, new image, new user-data secret.
    manifests::apply_all(&env.client, NS, &nodepool_version(HASH_2, "ubuntu/jammy"))
        .await
        .unwrap();
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta1", "MachineDeployment"),
            "machinedeployments",
        ),
    );
    deployments
        .patch(
            NODEPOOL,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {
                "bootstrap": {"dataSecretName": secret_name(HASH_2)},
                "infrastructureRef": {"name": template_name(HASH_2)}
            }}}})),
        )
        .await
        .unwrap();
}

/// Waits until MAAS holds a machine for a MaasMachine not among `first_uids`.
async fn new_machine_held(env: &Env, first_uids: &BTreeSet<String>, sampled: &Sampled) {
    wait_for(
        "a machine allocated for the new template",
        POLL,
        LIMIT,
        || {
            let first_uids = first_uids.clone();
            async move {
                let rows = machine_rows(&env.client, NS).await?;
                sampled.saw(rows.iter().filter(|r| r.phase == "Running").count());
                let new_held = env
                    .sim
                    .state()
                    .machines
                    .iter()
                    .filter(|m| {
                        m.owner_data
                            .get("capmaas-uid")
                            .is_some_and(|u| !first_uids.contains(u))
                    })
                    .count();
                Ok(((new_held > 0).then_some(()), format!("{new_held} held")))
            }
        },
    )
    .await
    .unwrap();
}

/// Waits until both Machines are new ones and Running; returns their MAAS machines.
async fn both_replaced(
    env: &Env,
    first_machines: &BTreeSet<String>,
    sampled: &Sampled,
) -> BTreeSet<String> {
    wait_for("the rollout to replace both machines", POLL, LIMIT, || {
        let first_machines = first_machines.clone();
        async move {
            let rows = machine_rows(&env.client, NS).await?;
            let running: Vec<_> = rows.iter().filter(|r| r.phase == "Running").collect();
            sampled.saw(running.len());
            let new = running
                .iter()
                .filter(|r| !first_machines.contains(&r.name))
                .count();
            let progress = format!(
                "{} Machines, {} Running, {new} of them new",
                rows.len(),
                running.len(),
            );
            let done = (rows.len() == 2 && running.len() == 2 && new == 2).then(|| {
                running
                    .iter()
                    .filter_map(|r| r.provider_id.as_deref())
                    .filter_map(|p| system_id_of(p).map(str::to_string))
                    .collect::<BTreeSet<String>>()
            });
            Ok((done, progress))
        }
    })
    .await
    .unwrap()
}

/// The old MAAS machines went back to MAAS, and MAAS holds exactly the new ones.
async fn old_machines_released(
    env: &Env,
    first_uids: &BTreeSet<String>,
    second: &BTreeSet<String>,
) {
    // The old MAAS machines went back to MAAS (one may already serve a new Machine): no MAAS
    // machine is held for an old MaasMachine, and MAAS holds exactly the new Machines' machines.
    wait_for("the old MAAS machines to be released", POLL, LIMIT, || {
        let first_uids = first_uids.clone();
        async move {
            let state = env.sim.state();
            let held: Vec<_> = state
                .machines
                .iter()
                .filter(|m| {
                    m.owner_data
                        .get("capmaas-uid")
                        .is_some_and(|u| first_uids.contains(u))
                })
                .map(|m| m.system_id.clone())
                .collect();
            Ok((
                held.is_empty().then_some(()),
                format!("still held for old MaasMachines: {held:?}"),
            ))
        }
    })
    .await
    .unwrap();
    let releases: u64 = env
        .sim
        .requests()
        .counts
        .iter()
        .filter(|(op, _)| op.ends_with(":release"))
        .flat_map(|(_, by_code)| by_code.iter())
        .filter(|(code, _)| code.starts_with('2'))
        .map(|(_, n)| *n)
        .sum();
    assert!(releases >= 2, "{releases} releases for the 2 old machines");
    assert_eq!(
        &owned_by_us(env),
        second,
        "MAAS holds exactly the new machines"
    );
}

/// Whether the 4.21 credentials Secret carries the identity finalizer.
async fn credentials_finalized(env: &Env) -> bool {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), NS);
    secrets
        .get(&format!("{CLUSTER}-maas-credentials"))
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default()
        .iter()
        .any(|f| f == capmaas_api::finalizers::MAAS_IDENTITY)
}

/// Deleting the hosted cluster leaves nothing behind.
async fn delete_hosted_cluster(env: &Env) {
    let maas_machines: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &infra("MaasMachine", "maasmachines"),
    );
    let maas_clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &infra("MaasCluster", "maasclusters"),
    );
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta1", "Cluster"),
            "clusters",
        ),
    );
    clusters
        .delete(CLUSTER, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "the Cluster and its machines to go",
        POLL,
        LIMIT,
        || async {
            let lp = ListParams::default();
            let objects = maas_machines.list(&lp).await?.items.len()
                + maas_clusters.list(&lp).await?.items.len()
                + clusters.list(&lp).await?.items.len();
            let held = owned_by_us(env).len();
            Ok((
                (objects == 0 && held == 0).then_some(()),
                format!("{objects} objects, {held} MAAS machines held"),
            ))
        },
    )
    .await
    .unwrap();
}

async fn run(name: &str, line: ForkLine, capi_release: CapiRelease) {
    // HyperShift's base-shape CRDs replace ours for the whole cluster.
    let Some(env) = TestEnv::own(
        name,
        EnvOptions {
            machines: 10,
            // The 4.21 line also runs a GPU NodePool: one GPU machine in its zone, one outside.
            gpu_machines: if line == ForkLine::SecretCredentials {
                2
            } else {
                0
            },
            start_manager: false,
            capi_release,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    scenario(&env, line).await;
    env.stop().await;
}

/// The 4.19/4.20 lines: `--namespace`, MAAS env vars, the fork's Role, on 4.20's Cluster API
/// (1.10).
#[tokio::test]
async fn hypershift_nodepool_boots_with_ignition_and_rolls_without_capacity_loss() {
    run("hypershift", ForkLine::EnvCredentials, CapiRelease::V1_10).await;
}

/// The 4.21 line: no `--namespace`, no MAAS env, the `<hosted>-maas-credentials` Secret, the
/// fork's Role, on its Cluster API (1.9); and under a Role without watches, probes that say so.
#[tokio::test]
async fn hypershift_4_21_finds_its_namespace_and_credentials_secret() {
    run(
        "hypershift-4-21",
        ForkLine::SecretCredentials,
        CapiRelease::V1_9,
    )
    .await;
}
