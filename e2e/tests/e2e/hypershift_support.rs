//! The surroundings HyperShift gives our provider in a hosted control plane namespace: its own
//! copy of the provider CRDs (the Go provider's base shape, contract v1beta1 only), a
//! HostedControlPlane as the Cluster's control plane, the namespaced Role, and the provider
//! Deployment's args and env.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use capmaas_api::crdgen::{Profile, crds};
use capmaas_e2e::harness::crds::install;
use capmaas_e2e::harness::manager::manager_binary;
use capmaas_e2e::harness::process::{Component, free_port};
use capmaas_e2e::harness::{Env, manifests, tools};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
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

/// The namespaced RBAC of `config/rbac/namespaced` (what HyperShift grants the provider: a Role in
/// the namespace plus a cluster-wide read of CRDs), placed in `namespace`, and a kubeconfig with
/// only the ServiceAccount's rights.
pub async fn namespaced_identity(env: &Env, namespace: &str) -> PathBuf {
    let dir = tools::workspace_root().join("config/rbac");
    let files = [
        "service_account.yaml",
        "namespaced/role.yaml",
        "namespaced/role_binding.yaml",
        "namespaced/crd_reader_role.yaml",
        "namespaced/crd_reader_role_binding.yaml",
    ];
    let mut objects = Vec::new();
    for f in files {
        let path = dir.join(f);
        let text = std::fs::read_to_string(&path).unwrap();
        objects.extend(manifests::parse(&text, &path).unwrap());
    }
    for o in &mut objects {
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        if !kind.starts_with("Cluster") {
            o["metadata"]["namespace"] = json!(namespace);
        }
        if let Some(subjects) = o.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = json!(namespace);
            }
        }
        if kind == "ClusterRoleBinding" {
            // One binding per namespace, as each hosted control plane gets its own.
            let name = format!("{}-{namespace}", o["metadata"]["name"].as_str().unwrap());
            o["metadata"]["name"] = json!(name);
        }
    }
    let params = PatchParams::apply("capi-provider-rbac").force();
    for o in &objects {
        let name = o["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = if o["kind"].as_str().unwrap().starts_with("Cluster") {
            Api::all_with(env.client.clone(), &manifests::resource_of(o))
        } else {
            manifests::api_for(&env.client, namespace, o)
        };
        api.patch(name, &params, &Patch::Apply(o)).await.unwrap();
    }

    let sa: Api<ServiceAccount> = Api::namespaced(env.client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = sa
        .create_token_request("manager", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let path = env
        .run_dir()
        .join(format!("capi-provider-{namespace}.kubeconfig"));
    let config = crate::rbac_support::token_kubeconfig(&env.kubeconfig, &token);
    std::fs::write(&path, config).unwrap();
    path
}

/// The provider as HyperShift's `capi-provider` Deployment runs it: its four args, its env
/// (`MAAS_ENDPOINT`, `MAAS_API_KEY`, `MAAS_ZONE`) and the ServiceAccount's kubeconfig. The bind
/// addresses are free loopback ports, since several tests share the machine.
pub struct Provider {
    /// The process.
    pub process: Component,
}

impl Provider {
    /// Starts it and waits for `/healthz`.
    pub async fn start(env: &Env, namespace: &str, kubeconfig: &Path, zone: &str) -> Self {
        let health = free_port().unwrap();
        let metrics = free_port().unwrap();
        let args = vec![
            format!("--namespace={namespace}"),
            "--leader-elect=true".to_string(),
            "--sync-period=15m".to_string(),
            "--v=2".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--health-probe-bind-address=127.0.0.1:{health}"),
            format!("--metrics-bind-address=127.0.0.1:{metrics}"),
        ];
        let envs = vec![
            ("MAAS_ENDPOINT".to_string(), env.sim.url()),
            ("MAAS_API_KEY".to_string(), env.sim.api_key().to_string()),
            ("MAAS_ZONE".to_string(), zone.to_string()),
        ];
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
                return Self { process };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("provider never became healthy:\n{}", process.tail(60));
    }
}
