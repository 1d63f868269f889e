//! Shared by the shipping tests: the release repository, ServiceAccount tokens, and running our
//! manager exactly as a rendered Deployment would (its args, its credentials Secret, its
//! ServiceAccount's permissions).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use capmaas_e2e::harness::{Env, Manager, ManagerOptions, tools};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

/// The version `make release` publishes: `[workspace.package] version` of the root Cargo.toml.
pub fn workspace_version() -> String {
    let text = std::fs::read_to_string(tools::workspace_root().join("Cargo.toml")).unwrap();
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
            continue;
        }
        if in_package && let Some(rest) = line.strip_prefix("version") {
            return rest
                .trim_start_matches([' ', '='])
                .trim_matches('"')
                .to_string();
        }
    }
    panic!("no [workspace.package] version in Cargo.toml");
}

/// Runs `hack/release.sh` into `out_root` (not the checkout's `out/`, so parallel runs do not
/// race) and returns the version directory.
pub fn release(out_root: &Path, image: &str) -> PathBuf {
    let bin = tools::bin_dir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(tools::workspace_root().join("hack/release.sh"))
        .env("OUT_DIR", out_root)
        .env("IMAGE", image)
        .env("KUSTOMIZE", bin.join("kustomize"))
        .status()
        .unwrap();
    assert!(status.success(), "hack/release.sh failed");
    out_root
        .join("infrastructure-maas")
        .join(format!("v{}", workspace_version()))
}

/// `kustomize build <dir>` with the cached kustomize.
pub fn kustomize_build(dir: &Path) -> String {
    let bin = tools::bin_dir().unwrap();
    let out = std::process::Command::new(bin.join("kustomize"))
        .arg("build")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kustomize build {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A bearer token of the ServiceAccount from the TokenRequest API (the harness's
/// kube-controller-manager runs no token controller, so Secret-based tokens never fill in).
pub async fn service_account_token(client: &kube::Client, namespace: &str, name: &str) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.unwrap().token
}

/// The admin kubeconfig with its user replaced by a bearer token: same server, same CA, only
/// the ServiceAccount's rights.
pub fn token_kubeconfig(admin: &Path, token: &str) -> String {
    let text = std::fs::read_to_string(admin).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let users = config["users"].as_array_mut().unwrap();
    assert_eq!(users.len(), 1, "one user in the admin kubeconfig");
    users[0]["user"] = serde_json::json!({ "token": token });
    serde_saphyr::to_string(&config).unwrap()
}

/// What the manager container of a Deployment runs with.
#[derive(Debug)]
pub struct ContainerSpec {
    /// The container's command.
    pub command: Vec<String>,
    /// The container's args.
    pub args: Vec<String>,
    /// `(env name, secret name, secret key)` for every env var read from a Secret.
    pub secret_env: Vec<(String, String, String)>,
    /// The ServiceAccount of the pod.
    pub service_account: String,
}

/// Reads the `manager` container of a Deployment.
pub fn manager_container(deployment: &Deployment) -> ContainerSpec {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap();
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "manager")
        .expect("a container named manager");
    let secret_env = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| {
            let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
            Some((e.name.clone(), r.name.clone(), r.key.clone()))
        })
        .collect();
    ContainerSpec {
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        secret_env,
        service_account: pod.service_account_name.clone().unwrap_or_default(),
    }
}

/// Starts our manager as the Deployment in `namespace` would run it: the Deployment's args, the
/// MAAS credentials from the Secret its env names, and the token of its ServiceAccount instead of
/// admin rights. Only what a pod gets from its surroundings is supplied here: the bind
/// addresses (free loopback ports, since several tests share the machine) and the leader-election
/// namespace (in a pod, the manager reads it from the mounted ServiceAccount namespace file); the
/// harness keeps its own log verbosity.
pub async fn start_manager_as_deployment(
    env: &Env,
    namespace: &str,
    deployment_name: &str,
    extra_args: &[String],
) -> (Manager, ContainerSpec) {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), namespace);
    let deployment = deployments.get(deployment_name).await.unwrap();
    let spec = manager_container(&deployment);

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), namespace);
    let mut endpoint = None;
    let mut api_key = None;
    for (name, secret, key) in &spec.secret_env {
        let secret = secrets.get(secret).await.unwrap();
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8(v.0.clone()).unwrap())
            .unwrap_or_else(|| panic!("Secret has no key {key}"));
        match name.as_str() {
            "MAAS_ENDPOINT" => endpoint = Some(value),
            "MAAS_API_KEY" => api_key = Some(value),
            _ => {}
        }
    }

    let token = service_account_token(&env.client, namespace, &spec.service_account).await;
    let kubeconfig = env
        .run_dir()
        .join(format!("{deployment_name}-{namespace}.kubeconfig"));
    std::fs::write(&kubeconfig, token_kubeconfig(&env.kubeconfig, &token)).unwrap();

    let mut args: Vec<String> = spec
        .args
        .iter()
        .filter(|a| !a.contains("bind-address") && !a.starts_with("--v="))
        .cloned()
        .collect();
    args.extend(extra_args.iter().cloned());
    let manager = Manager::start(&ManagerOptions {
        kubeconfig,
        maas_endpoint: endpoint.expect("MAAS_ENDPOINT from the Secret"),
        maas_api_key: api_key.expect("MAAS_API_KEY from the Secret"),
        extra_args: args,
        run_dir: env.run_dir().to_path_buf(),
        name: format!("{deployment_name}-{namespace}"),
    })
    .await
    .unwrap();
    (manager, spec)
}
