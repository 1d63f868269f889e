//! clusterctl driven offline: local repositories for the Cluster API core and kubeadm providers
//! and a stand-in for cert-manager's API, so `clusterctl init` and `move` run against the
//! harness API servers with no network.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use capmaas_e2e::harness::crds;
use capmaas_e2e::harness::{Env, tools};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

/// The Cluster API release the tools cache holds.
pub const CAPI_VERSION: &str = "v1.14.2";

/// Writes the clusterctl config naming every provider repository.
pub fn write_config(path: &Path, providers: &[(String, String, String)]) {
    let entries: Vec<Value> = providers
        .iter()
        .map(|(name, kind, url)| serde_json::json!({"name": name, "type": kind, "url": url}))
        .collect();
    std::fs::write(
        path,
        serde_saphyr::to_string(&serde_json::json!({"providers": entries})).unwrap(),
    )
    .unwrap();
}

/// A clusterctl invocation with its own HOME and config file, never reaching the network.
pub struct Clusterctl {
    /// The clusterctl binary.
    pub bin: PathBuf,
    /// Its HOME (clusterctl keeps state there).
    pub home: PathBuf,
    /// The clusterctl config file.
    pub config: PathBuf,
    /// The management cluster.
    pub kubeconfig: PathBuf,
}

impl Clusterctl {
    /// clusterctl with `make release` output in `work/release` as its only repository (the
    /// manager image named `image`), its own HOME, against `env`'s API server. Returns the
    /// release directory too.
    pub fn for_release(env: &Env, work: &Path, image: &str) -> (Self, PathBuf) {
        let release_dir = crate::rbac_support::release(&work.join("release"), image);
        let config = work.join("clusterctl.yaml");
        write_config(
            &config,
            &[(
                "maas".into(),
                "InfrastructureProvider".into(),
                file_url(&release_dir.join("infrastructure-components.yaml")),
            )],
        );
        let home = work.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let clusterctl = Clusterctl {
            bin: tools::bin_dir().unwrap().join("clusterctl"),
            home,
            config,
            kubeconfig: env.kubeconfig.clone(),
        };
        (clusterctl, release_dir)
    }

    /// Runs clusterctl and returns its stdout; panics with both streams when it fails.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "clusterctl {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }
}

/// The contract labels the kubeadm providers' kustomize adds to their CRDs (the bases in the
/// tools cache lack them): Cluster API resolves referenced kinds through them.
pub fn with_contract_labels(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let labels = crd.metadata.labels.get_or_insert_with(Default::default);
    for version in &crd.spec.versions {
        if version.name.starts_with("v1beta") {
            labels.insert(
                format!("cluster.x-k8s.io/{}", version.name),
                version.name.clone(),
            );
        }
    }
    crd
}

/// A `file://` URL.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn metadata_yaml(minor_line: (u32, u32), contract: &str) -> String {
    format!(
        "apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\nkind: Metadata\nreleaseSeries:\n  - major: {}\n    minor: {}\n    contract: {contract}\n",
        minor_line.0, minor_line.1
    )
}

/// A CRD as a components file carries it: no server-set metadata, no status.
pub fn portable_crd(mut crd: CustomResourceDefinition) -> Value {
    crd.metadata.resource_version = None;
    crd.metadata.uid = None;
    crd.metadata.creation_timestamp = None;
    crd.metadata.managed_fields = None;
    crd.metadata.generation = None;
    crd.status = None;
    let mut value = serde_json::to_value(&crd).unwrap();
    value["apiVersion"] = "apiextensions.k8s.io/v1".into();
    value["kind"] = "CustomResourceDefinition".into();
    value
}

fn namespace_doc(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn write_components(dir: &Path, file: &str, objects: &[Value], contract: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text: Vec<String> = objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap())
        .collect();
    let path = dir.join(file);
    std::fs::write(&path, text.join("---\n")).unwrap();
    std::fs::write(dir.join("metadata.yaml"), metadata_yaml((1, 14), contract)).unwrap();
    path
}

/// Local repositories for the Cluster API core and kubeadm providers. The core's CRDs are taken
/// from the live API server, so the conversion webhook the harness set up stays in place; the
/// kubeadm CRDs come from the tools cache. No Deployments: the harness already runs the core
/// manager as a process, and nothing here runs pods.
pub async fn capi_repositories(
    client: &kube::Client,
    root: &Path,
) -> Vec<(String, String, String)> {
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let core_groups = [
        "cluster.x-k8s.io",
        "addons.cluster.x-k8s.io",
        "ipam.cluster.x-k8s.io",
        "runtime.cluster.x-k8s.io",
    ];
    let mut core = vec![namespace_doc("capi-system")];
    for crd in crd_api.list(&ListParams::default()).await.unwrap().items {
        if core_groups.contains(&crd.spec.group.as_str()) {
            core.push(portable_crd(crd));
        }
    }
    assert!(core.len() > 5, "CAPI core CRDs are installed");
    let core_path = write_components(
        &root.join("cluster-api").join(CAPI_VERSION),
        "core-components.yaml",
        &core,
        "v1beta2",
    );

    let manifests_dir = tools::capi_manifests_dir(&tools::bin_dir().unwrap());
    let kubeadm = |sub: &str, ns: &str, label: &str, file: &str| {
        let mut objects = vec![namespace_doc(ns)];
        for crd in crds::read_dir(&manifests_dir.join(sub).join("crd")).unwrap() {
            objects.push(portable_crd(with_contract_labels(crd)));
        }
        write_components(
            &root.join(label).join(CAPI_VERSION),
            file,
            &objects,
            "v1beta2",
        )
    };
    let bootstrap = kubeadm(
        "bootstrap-kubeadm",
        "capi-kubeadm-bootstrap-system",
        "bootstrap-kubeadm",
        "bootstrap-components.yaml",
    );
    let control_plane = kubeadm(
        "controlplane-kubeadm",
        "capi-kubeadm-control-plane-system",
        "control-plane-kubeadm",
        "control-plane-components.yaml",
    );
    vec![
        (
            "cluster-api".into(),
            "CoreProvider".into(),
            file_url(&core_path),
        ),
        (
            "kubeadm".into(),
            "BootstrapProvider".into(),
            file_url(&bootstrap),
        ),
        (
            "kubeadm".into(),
            "ControlPlaneProvider".into(),
            file_url(&control_plane),
        ),
    ]
}

/// cert-manager's API as clusterctl probes it (it creates an Issuer and a Certificate and deletes
/// them). Nothing here issues certificates: our provider has no webhooks and needs none, and the
/// local core components carry no Certificates either.
pub async fn cert_manager_api(client: &kube::Client) {
    let crd = |kind: &str, plural: &str| -> CustomResourceDefinition {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.cert-manager.io")},
            "spec": {
                "group": "cert-manager.io",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        }))
        .unwrap()
    };
    crds::install(
        client,
        &[
            crd("Issuer", "issuers"),
            crd("Certificate", "certificates"),
            crd("ClusterIssuer", "clusterissuers"),
        ],
    )
    .await
    .unwrap();
}
