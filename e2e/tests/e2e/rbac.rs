//! The RBAC we ship is enough and no more is needed: our manager runs with ServiceAccount tokens
//! (never admin) through the quickstart cluster to Running, once with the all-namespace
//! ClusterRole of config/default and once under `--namespace` with only the namespaced Role of
//! config/rbac/namespaced (plus its cluster-wide CRD read).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::rbac_support;

use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::crds::FIELD_MANAGER;
use capmaas_e2e::harness::{
    Env, EnvOptions, Manager, ManagerOptions, TestEnv, manifests, observe, tools,
};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use rbac_support::{kustomize_build, service_account_token, token_kubeconfig};

const LIMIT: Duration = Duration::from_secs(300);

/// Applies the quickstart sample into `namespace` and waits for its 6 Machines to run.
async fn quickstart_runs(env: &Env, namespace: &str) {
    env.namespace(namespace).await.unwrap();
    env.workload_kubeconfig_secret(namespace, "demo")
        .await
        .unwrap();
    let sample = tools::workspace_root().join("config/samples/quickstart-cluster.yaml");
    let objects = manifests::parse(&std::fs::read_to_string(&sample).unwrap(), &sample).unwrap();
    manifests::apply_all(&env.client, namespace, &objects)
        .await
        .unwrap();
    let rows = observe::wait_machines_running(&env.client, namespace, 6, LIMIT)
        .await
        .unwrap();
    eprintln!("{}", observe::render_table(&rows));
    assert!(rows.iter().all(|r| {
        r.provider_id
            .as_deref()
            .is_some_and(|p| p.starts_with("maas:///"))
    }));
}

fn assert_never_forbidden(manager: &Manager) {
    let log = std::fs::read_to_string(manager.log()).unwrap();
    let forbidden: Vec<&str> = log.lines().filter(|l| l.contains("forbidden")).collect();
    assert!(
        forbidden.is_empty(),
        "calls outside the RBAC: {forbidden:#?}"
    );
}

/// The rendered objects with the kustomize placeholder namespace replaced.
fn rendered_in(dir: &str, namespace: &str) -> Vec<Value> {
    let text = kustomize_build(&tools::workspace_root().join(dir));
    let mut objects = manifests::parse(&text, Path::new(dir)).unwrap();
    for o in &mut objects {
        if o["metadata"]["namespace"] == "system" {
            o["metadata"]["namespace"] = namespace.into();
        }
        for s in o
            .get_mut("subjects")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            s["namespace"] = namespace.into();
        }
    }
    objects
}

async fn apply_rbac(env: &Env, objects: &[Value]) {
    let rbac: Vec<Value> = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "Role"
                        | "RoleBinding"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                )
            )
        })
        .cloned()
        .collect();
    assert!(rbac.len() >= 4);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for o in &rbac {
        let name = o["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = match o["metadata"]["namespace"].as_str() {
            Some(ns) => manifests::api_for(&env.client, ns, o),
            None => Api::all_with(env.client.clone(), &manifests::resource_of(o)),
        };
        api.patch(name, &params, &Patch::Apply(o)).await.unwrap();
    }
}

async fn token_manager(env: &Env, namespace: &str, name: &str, args: &[String]) -> Manager {
    let token = service_account_token(&env.client, namespace, "capmaas-manager").await;
    let kubeconfig = env.run_dir().join(format!("{name}.kubeconfig"));
    std::fs::write(&kubeconfig, token_kubeconfig(&env.kubeconfig, &token)).unwrap();
    Manager::start(&ManagerOptions {
        kubeconfig,
        maas_endpoint: env.sim.url(),
        maas_api_key: env.sim.api_key().to_string(),
        extra_args: args.to_vec(),
        run_dir: env.run_dir().to_path_buf(),
        name: name.to_string(),
    })
    .await
    .unwrap()
}

async fn scenario(env: &Env) {
    // All-namespace mode: config/default's ClusterRole and leader-election Role.
    let system = "capmaas-system";
    env.namespace(system).await.unwrap();
    let default = rendered_in("config/default", system);
    apply_rbac(env, &default).await;
    let manager = token_manager(
        env,
        system,
        "manager-clusterrole",
        &[
            "--leader-elect".to_string(),
            format!("--leader-election-namespace={system}"),
        ],
    )
    .await;
    quickstart_runs(env, "rbac-cluster").await;
    assert_never_forbidden(&manager);
    manager.stop().await;

    // Namespaced mode: only the Role in the watched namespace (and the CRD read).
    let watched = "rbac-namespaced";
    env.namespace(watched).await.unwrap();
    let namespaced = rendered_in("config/rbac/namespaced", watched);
    apply_rbac(env, &namespaced).await;
    let manager = token_manager(
        env,
        watched,
        "manager-namespaced",
        &[
            format!("--namespace={watched}"),
            "--leader-elect".to_string(),
        ],
    )
    .await;
    quickstart_runs(env, watched).await;
    assert_never_forbidden(&manager);
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rbac_is_enough_in_both_modes() {
    // Its managers watch every namespace, and kustomize comes from the tools.
    let Some(env) = TestEnv::own(
        "rbac",
        EnvOptions {
            machines: 14,
            gpu_machines: 0,
            start_manager: false,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    scenario(&env).await;
    env.stop().await;
}
