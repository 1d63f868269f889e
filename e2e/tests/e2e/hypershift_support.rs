//! The surroundings HyperShift gives our provider in a hosted control plane namespace: its own
//! copy of the provider CRDs (the Go provider's base shape, contract v1beta1 only), a
//! HostedControlPlane as the Cluster's control plane, the fork's Role for the provider, and the
//! provider Deployment's args and env on each line of the fork.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use capmaas_api::crdgen::{Profile, crds};
use capmaas_e2e::harness::crds::install;
use capmaas_e2e::harness::manager::manager_binary;
use capmaas_e2e::harness::process::{Component, free_port};
use capmaas_e2e::harness::{Env, manifests};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// Replaces our full CRDs by the base shape HyperShift installs (same names, so the API server
/// prunes every field outside it from then on).
pub async fn install_hypershift_crds(env: &Env) {
    install(&env.client, &crds(Profile::Hypershift))
        .await
        .unwrap();
}

/// A stand-in for HyperShift's HostedControlPlane CRD: enough schema for Cluster API to read
/// `status.initialized`/`status.ready` under the v1beta1 contract.
pub async fn install_hosted_control_plane_crd(env: &Env) {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "hostedcontrolplanes.hypershift.openshift.io",
            "labels": {"cluster.x-k8s.io/v1beta1": "v1beta1"}
        },
        "spec": {
            "group": "hypershift.openshift.io",
            "names": {"kind": "HostedControlPlane", "listKind": "HostedControlPlaneList",
                      "plural": "hostedcontrolplanes", "singular": "hostedcontrolplane"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1beta1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true
                }}
            }]
        }
    }))
    .unwrap();
    install(&env.client, &[crd]).await.unwrap();
}

/// The rules of the Role HyperShift's MAAS fork grants its `capi-provider` (the same on its
/// 4.19, 4.20 and 4.21 lines), and no ClusterRole: core events, secrets and configmaps; the
/// Cluster API groups; HyperShift's group; leases.
pub fn fork_role_rules() -> Value {
    let all = json!(["*"]);
    json!([
        {"apiGroups": [""], "resources": ["events", "secrets", "configmaps"], "verbs": all},
        {"apiGroups": [
            "bootstrap.cluster.x-k8s.io", "controlplane.cluster.x-k8s.io",
            "infrastructure.cluster.x-k8s.io", "machines.cluster.x-k8s.io",
            "exp.infrastructure.cluster.x-k8s.io", "addons.cluster.x-k8s.io",
            "exp.cluster.x-k8s.io", "cluster.x-k8s.io"
         ], "resources": all, "verbs": all},
        {"apiGroups": ["hypershift.openshift.io"], "resources": all, "verbs": all},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": all}
    ])
}

/// Only the right to hold a Lease: leader election works, no watch does.
pub fn lease_only_rules() -> Value {
    json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}])
}

/// The ServiceAccount `sa` in `namespace` bound to a Role with `rules` (nothing cluster-wide),
/// and a kubeconfig with only its rights whose context names `namespace`, as the in-cluster
/// configuration of a pod in that namespace does.
pub async fn role_identity(env: &Env, namespace: &str, sa: &str, rules: Value) -> PathBuf {
    let objects = [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": sa}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": sa},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]}),
    ];
    manifests::apply_all(&env.client, namespace, &objects)
        .await
        .unwrap();
    let token = crate::rbac_support::service_account_token(&env.client, namespace, sa).await;
    let text = crate::rbac_support::token_kubeconfig(&env.kubeconfig, &token);
    let mut config: Value = serde_saphyr::from_str(&text).unwrap();
    for context in config["contexts"].as_array_mut().unwrap() {
        context["context"]["namespace"] = json!(namespace);
    }
    let path = env.run_dir().join(format!("{sa}-{namespace}.kubeconfig"));
    std::fs::write(&path, serde_saphyr::to_string(&config).unwrap()).unwrap();
    path
}

/// Which line of the fork deploys the provider, and so how it passes credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkLine {
    /// 4.19 and 4.20: `--namespace=$(NAMESPACE)`, env `MAAS_ENDPOINT`, `MAAS_API_KEY` and
    /// `MAAS_ZONE`.
    EnvCredentials,
    /// 4.21: neither `--namespace` nor MAAS env; the Secret `<hosted cluster>-maas-credentials`
    /// (keys `endpoint`, `api-key`, `zone`) in the namespace.
    SecretCredentials,
}

/// The Secret the 4.21 line writes for hosted cluster `cluster` in `namespace`, for a MAAS at
/// `endpoint` whose TLS certificate `ca_pem` signed (the `ca.crt` key, which a user adds to the
/// Secret).
pub async fn hosted_credentials_secret(
    env: &Env,
    namespace: &str,
    cluster: &str,
    zone: &str,
    (endpoint, ca_pem): (&str, &str),
) {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": format!("{cluster}-maas-credentials"),
            "labels": {"hypershift.openshift.io/cluster": cluster, "platform": "maas"}
        },
        "type": "Opaque",
        "stringData": {
            "endpoint": endpoint, "api-key": env.sim.api_key(), "zone": zone, "ca.crt": ca_pem
        }
    });
    manifests::apply_all(&env.client, namespace, &[secret])
        .await
        .unwrap();
}

/// The provider as HyperShift's `capi-provider` Deployment runs it: the args and env of a fork
/// line and the ServiceAccount's kubeconfig. The bind addresses are free loopback ports, since
/// several tests share the machine.
pub struct Provider {
    /// The process.
    pub process: Component,
    /// Its `/readyz`.
    pub readyz: String,
    /// Its `/healthz`.
    pub healthz: String,
}

impl Provider {
    /// Starts it as the 4.20 line does and waits for `/healthz`.
    pub async fn start(env: &Env, namespace: &str, kubeconfig: &Path, zone: &str) -> Self {
        Self::start_as(env, ForkLine::EnvCredentials, namespace, kubeconfig, zone).await
    }

    /// Starts it as `line` does and waits for `/healthz`.
    pub async fn start_as(
        env: &Env,
        line: ForkLine,
        namespace: &str,
        kubeconfig: &Path,
        zone: &str,
    ) -> Self {
        let health = free_port().unwrap();
        let metrics = free_port().unwrap();
        let mut args = vec![
            "--v=2".to_string(),
            "--leader-elect=true".to_string(),
            "--sync-period=15m".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--health-probe-bind-address=127.0.0.1:{health}"),
            format!("--metrics-bind-address=127.0.0.1:{metrics}"),
        ];
        let mut envs = Vec::new();
        if line == ForkLine::EnvCredentials {
            args.push(format!("--namespace={namespace}"));
            envs = vec![
                ("MAAS_ENDPOINT".to_string(), env.sim.url()),
                ("MAAS_API_KEY".to_string(), env.sim.api_key().to_string()),
                ("MAAS_ZONE".to_string(), zone.to_string()),
            ];
        }
        let mut process = Component::spawn(
            &format!("capi-provider-{namespace}"),
            &manager_binary().unwrap(),
            &args,
            &envs,
            env.run_dir(),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{health}/healthz");
        let http = reqwest::Client::new();
        for _ in 0..600 {
            process.check_running().unwrap();
            if matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) {
                let readyz = format!("http://127.0.0.1:{health}/readyz");
                return Self {
                    process,
                    readyz,
                    healthz: url,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("provider never became healthy:\n{}", process.tail(60));
    }
}

/// The status and body of a GET.
pub async fn probe(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The lines of a provider's log at `level` (`ERROR`, `WARN`).
pub fn log_lines_at(provider: &Provider, level: &str) -> Vec<String> {
    let text = std::fs::read_to_string(provider.process.log()).unwrap_or_default();
    text.lines()
        .filter(|l| l.split_whitespace().take(3).any(|w| w == level))
        .map(str::to_string)
        .collect()
}
