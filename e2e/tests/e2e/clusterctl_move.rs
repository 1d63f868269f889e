//! `clusterctl move` of a running cluster to a second management cluster keeps the MAAS machines
//! as they are: no allocate, deploy or release in MAAS, the same system ids behind the Machines
//! on the target, and neither manager (both still running, with a short orphan sweep and grace)
//! releases anything once the objects are gone from the source; the target adopts the machines,
//! and deleting the Cluster there gives every one of them back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::clusterctl_support;
use crate::rbac_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::scenario::capi_resource;
use capmaas_e2e::harness::{
    CapiCore, ControlPlane, ControlPlaneOptions, Env, EnvOptions, Manager, ManagerOptions, TestEnv,
    crds, manifests, tools,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams};

use clusterctl_support::{
    CAPI_VERSION, Clusterctl, capi_repositories, cert_manager_api, file_url, write_config,
};
use rbac_support::{release, workspace_version};

const NS: &str = "move-demo";
const LIMIT: Duration = Duration::from_secs(300);
/// The sweep's grace on both managers: long enough for the target to adopt the machines after
/// the source's objects are gone, short enough to be waited out within the test.
const GRACE: Duration = Duration::from_secs(40);

fn ops(env: &Env, op: &str) -> u64 {
    env.sim
        .requests()
        .counts
        .get(op)
        .map(|codes| codes.values().sum())
        .unwrap_or(0)
}

/// The MAAS DNS records of the cluster's endpoint.
fn dns_records(env: &Env) -> usize {
    env.sim
        .state()
        .dnsresources
        .iter()
        .filter(|d| d.fqdn.starts_with("demo-"))
        .count()
}

/// (system id, status) of every machine MAAS says someone owns.
fn owned(env: &Env) -> BTreeSet<(String, String)> {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| (m.system_id.clone(), m.status.clone()))
        .collect()
}

async fn provider_ids(client: &kube::Client) -> BTreeSet<String> {
    observe::machine_rows(client, NS)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.provider_id)
        .collect()
}

fn init(clusterctl: &Clusterctl, provider: &str, env: &Env) {
    let sim_url = env.sim.url();
    let sim_key = env.sim.api_key().to_string();
    clusterctl.run(
        &[
            "init",
            "--core",
            &format!("cluster-api:{CAPI_VERSION}"),
            "--bootstrap",
            &format!("kubeadm:{CAPI_VERSION}"),
            "--control-plane",
            &format!("kubeadm:{CAPI_VERSION}"),
            "--infrastructure",
            provider,
        ],
        &[("MAAS_ENDPOINT", &sim_url), ("MAAS_API_KEY", &sim_key)],
    );
}

/// The uid of the MaasMachine CRD: the management cluster identity the manager writes.
async fn crd_uid(client: &kube::Client) -> String {
    Api::<CustomResourceDefinition>::all(client.clone())
        .get("maasmachines.infrastructure.cluster.x-k8s.io")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

/// Deletes the Cluster and waits until no Machine, MaasMachine or Cluster is left.
/// The cluster's credentials Secret: its name does not start with the cluster's, so only the
/// label the provider gives it makes `clusterctl move` carry it.
const IDENTITY: &str = "site-credentials";

fn identity_secret(env: &Env) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": IDENTITY},
        "stringData": {"MAAS_ENDPOINT": env.sim.url(), "MAAS_API_KEY": env.sim.api_key()}
    })
}

/// The identity Secret is on the target, guarded there, and gone from the source.
async fn identity_moved(env: &Env, target: &kube::Client) {
    let on_target = Api::<Secret>::namespaced(target.clone(), NS)
        .get(IDENTITY)
        .await
        .unwrap();
    assert!(
        on_target
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("clusterctl.cluster.x-k8s.io/move")
    );
    let source = Api::<Secret>::namespaced(env.client.clone(), NS);
    wait_for(
        "the identity Secret to leave the source",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let left = source.get_opt(IDENTITY).await?;
            Ok((
                left.is_none().then_some(()),
                format!("on the source: {}", left.is_some()),
            ))
        },
    )
    .await
    .unwrap();
}

async fn delete_cluster(client: &kube::Client) {
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &capi_resource("Cluster", "clusters"));
    clusters
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    let machines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &observe::machines_resource());
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &observe::maas_machines_resource());
    let lp = ListParams::default();
    wait_for(
        "the Cluster and its Machines to go",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let left = machines.list(&lp).await?.items.len()
                + maas_machines.list(&lp).await?.items.len()
                + clusters.list(&lp).await?.items.len();
            Ok(((left == 0).then_some(()), format!("{left} objects left")))
        },
    )
    .await
    .unwrap();
}

async fn scenario(env: &Env, work: &Path) {
    let provider = format!("maas:v{}", workspace_version());
    let release_dir = release(
        &work.join("release"),
        "registry.example/capmaas-manager:test",
    );
    let bin = tools::bin_dir().unwrap();
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();

    // Source: the harness cluster, initialised by clusterctl, our manager with a short sweep.
    let mut providers = vec![(
        "maas".to_string(),
        "InfrastructureProvider".to_string(),
        file_url(&release_dir.join("infrastructure-components.yaml")),
    )];
    providers.extend(capi_repositories(&env.client, &work.join("repo-source")).await);
    let source_config = work.join("clusterctl-source.yaml");
    write_config(&source_config, &providers);
    let source = Clusterctl {
        bin: bin.join("clusterctl"),
        home: home.clone(),
        config: source_config,
        kubeconfig: env.kubeconfig.clone(),
    };
    cert_manager_api(&env.client).await;
    init(&source, &provider, env);
    let sweep = [
        "--orphan-sweep-interval=1s".to_string(),
        format!("--orphan-sweep-grace={}s", GRACE.as_secs()),
    ];
    let source_manager = env.start_manager("source-manager", &sweep).await.unwrap();

    env.namespace(NS).await.unwrap();
    env.workload_kubeconfig_secret(NS, "demo").await.unwrap();
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let mut objects =
        manifests::parse(&std::fs::read_to_string(&sample).unwrap(), &sample).unwrap();
    objects.push(identity_secret(env));
    for object in objects.iter_mut().filter(|o| o["kind"] == "MaasCluster") {
        object["spec"]["identityRef"] = serde_json::json!({"name": IDENTITY});
    }
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();
    observe::wait_machines_running(&env.client, NS, 6, LIMIT)
        .await
        .unwrap();
    let before_ids = provider_ids(&env.client).await;
    let before_owned = owned(env);
    assert_eq!(before_ids.len(), 6);
    assert_eq!(before_owned.len(), 6);

    // Target: a second API server with CAPI core, initialised the same way.
    let target_dir = work.join("target");
    std::fs::create_dir_all(&target_dir).unwrap();
    let target = ControlPlane::start(ControlPlaneOptions {
        bin_dir: bin.clone(),
        run_dir: target_dir.clone(),
        controller_manager: true,
    })
    .await
    .unwrap();
    let target_client = target.client();
    let ours = crds::read_dir(&tools::workspace_root().join("config/crd/bases")).unwrap();
    crds::install(&target_client, &ours).await.unwrap();
    let target_capi = CapiCore::start(
        &target_client,
        &bin,
        &tools::capi_manifests_dir(&bin),
        target.kubeconfig(),
        &target_dir,
    )
    .await
    .unwrap();
    let mut target_providers = providers[..1].to_vec();
    target_providers.extend(capi_repositories(&target_client, &work.join("repo-target")).await);
    let target_config = work.join("clusterctl-target.yaml");
    write_config(&target_config, &target_providers);
    let target_cctl = Clusterctl {
        bin: bin.join("clusterctl"),
        home: home.clone(),
        config: target_config,
        kubeconfig: target.kubeconfig().to_path_buf(),
    };
    cert_manager_api(&target_client).await;
    init(&target_cctl, &provider, env);
    let target_manager = Manager::start(&ManagerOptions {
        kubeconfig: target.kubeconfig().to_path_buf(),
        maas_endpoint: env.sim.url(),
        maas_api_key: env.sim.api_key().to_string(),
        extra_args: sweep.to_vec(),
        run_dir: target_dir.clone(),
        name: "target-manager".into(),
    })
    .await
    .unwrap();

    // Move. MAAS must see no allocation, deployment or release from here on.
    let allocs = ops(env, "machines:allocate");
    let deploys = ops(env, "machine:deploy");
    let releases = ops(env, "machine:release");
    let target_kubeconfig = target.kubeconfig().display().to_string();
    let out = source.run(
        &["move", "-n", NS, "--to-kubeconfig", &target_kubeconfig],
        &[],
    );
    eprintln!("{out}");

    observe::wait_machines_running(&target_client, NS, 6, LIMIT)
        .await
        .unwrap();
    assert_eq!(provider_ids(&target_client).await, before_ids);
    assert!(
        provider_ids(&env.client).await.is_empty(),
        "nothing left on the source"
    );

    // Both managers sweep every second; past the grace period (which starts at the latest when
    // the objects left the source), MAAS is unchanged: the source sees machines now naming the
    // target, the target sees machines its live MaasMachines record.
    let lists = ops(env, "machines:read");
    tokio::time::sleep(GRACE + Duration::from_secs(5)).await;
    wait_for(
        "both managers to sweep a few more times",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let now = ops(env, "machines:read");
            Ok((
                (now >= lists + 6).then_some(()),
                format!("{} lists", now - lists),
            ))
        },
    )
    .await
    .unwrap();
    assert_eq!(owned(env), before_owned, "MAAS machines unchanged");
    assert_eq!(ops(env, "machines:allocate"), allocs, "no re-allocation");
    assert_eq!(ops(env, "machine:deploy"), deploys, "no re-deployment");
    assert_eq!(ops(env, "machine:release"), releases, "nothing released");
    // The target adopted them: owner data names its MaasMachines and its management identity.
    let target_uids: BTreeSet<String> = Api::<DynamicObject>::namespaced_with(
        target_client.clone(),
        NS,
        &observe::maas_machines_resource(),
    )
    .list(&ListParams::default())
    .await
    .unwrap()
    .items
    .into_iter()
    .filter_map(|m| m.metadata.uid)
    .collect();
    let target_identity = crd_uid(&target_client).await;
    assert_ne!(target_identity, crd_uid(&env.client).await);
    let adopted: BTreeSet<(String, String)> = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .map(|m| {
            let get = |k: &str| m.owner_data.get(k).cloned().unwrap_or_default();
            (get("capmaas-uid"), get("capmaas-management"))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = target_uids
        .iter()
        .map(|u| (u.clone(), target_identity.clone()))
        .collect();
    assert_eq!(adopted.len(), 6);
    assert_eq!(dns_records(env), 1, "the endpoint's DNS record stays");
    assert_eq!(adopted, expected, "owner data rewritten by the target");
    identity_moved(env, &target_client).await;

    // Deleting the Cluster on the target releases every machine.
    delete_cluster(&target_client).await;
    wait_for(
        "every MAAS machine to be Ready with no owner and the DNS record gone",
        Duration::from_millis(500),
        LIMIT,
        || async {
            let busy = env
                .sim
                .state()
                .machines
                .iter()
                .filter(|m| m.owner.is_some() || m.status != "Ready")
                .count();
            let dns = dns_records(env);
            Ok((
                (busy == 0 && dns == 0).then_some(()),
                format!("{busy} machines busy, {dns} DNS records"),
            ))
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ops(env, "machine:release"),
        releases + 6,
        "one release per machine, from the target"
    );
    assert_eq!(ops(env, "machines:allocate"), allocs, "no allocation");

    target_manager.stop().await;
    source_manager.stop().await;
    target_capi.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_keeps_maas_machines_unchanged() {
    // clusterctl init and move work cluster-wide, and a second control plane comes along.
    let Some(env) = TestEnv::own(
        "move",
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
