//! The Cluster API core manager as a local process, with its webhooks and CRD conversion pointed
//! at its loopback webhook server through a CA the harness makes.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::certs::LoopbackCa;
use super::crds::{self, FIELD_MANAGER};
use super::error::HarnessError;
use super::manifests;
use super::process::{Component, free_port};

/// The running Cluster API core manager.
pub struct CapiCore {
    /// The manager process.
    pub manager: Component,
}

/// Points a service-based webhook client config at `https://127.0.0.1:<port><path>`.
fn loopback_client_config(
    service: Option<&ServiceReference>,
    port: u16,
    ca_bundle: &[u8],
) -> WebhookClientConfig {
    let path = service.and_then(|s| s.path.clone()).unwrap_or_default();
    WebhookClientConfig {
        url: Some(format!("https://127.0.0.1:{port}{path}")),
        service: None,
        ca_bundle: Some(ByteString(ca_bundle.to_vec())),
    }
}

/// A CRD serving more than one version converts through the manager's `/convert` endpoint.
pub fn with_loopback_conversion(
    mut crd: CustomResourceDefinition,
    port: u16,
    ca_bundle: &[u8],
) -> CustomResourceDefinition {
    if crd.spec.versions.len() > 1 {
        let service = ServiceReference {
            path: Some("/convert".into()),
            ..Default::default()
        };
        crd.spec.conversion = Some(CustomResourceConversion {
            strategy: "Webhook".into(),
            webhook: Some(WebhookConversion {
                client_config: Some(loopback_client_config(Some(&service), port, ca_bundle)),
                conversion_review_versions: vec!["v1".into(), "v1beta1".into()],
            }),
        });
    }
    crd
}

/// Installs the webhook configurations of `manifests.yaml`, each webhook re-pointed from its
/// in-cluster Service to `https://127.0.0.1:<port><path>` with the harness CA.
async fn install_webhooks(
    client: &kube::Client,
    manifests: &Path,
    port: u16,
    ca_bundle: &[u8],
) -> Result<(), HarnessError> {
    let text =
        std::fs::read_to_string(manifests).map_err(HarnessError::io("reading", manifests))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for mut cfg in manifests::parse(&text, manifests)? {
        let kind = cfg["kind"].as_str().unwrap_or_default();
        if !kind.ends_with("WebhookConfiguration") {
            continue;
        }
        for hook in cfg["webhooks"].as_array_mut().into_iter().flatten() {
            let path = hook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            hook["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}{path}"),
                "caBundle": B64.encode(ca_bundle),
            });
        }
        let name = cfg["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Api::<DynamicObject>::all_with(client.clone(), &manifests::resource_of(&cfg))
            .patch(&name, &params, &Patch::Apply(&cfg))
            .await?;
    }
    Ok(())
}

/// The feature gates the core manager runs with: machine pools on, managed topologies as asked.
fn feature_gates(cluster_topology: bool) -> String {
    format!("--feature-gates=MachinePool=true,ClusterTopology={cluster_topology}")
}

impl CapiCore {
    /// Installs the core CRDs and webhooks from `<manifests>/core/`, starts the manager against
    /// `kubeconfig`, and waits until its webhook server answers. ClusterClass is off.
    pub async fn start(
        client: &kube::Client,
        bin_dir: &Path,
        manifests: &Path,
        kubeconfig: &Path,
        run_dir: &Path,
    ) -> Result<Self, HarnessError> {
        Self::start_gated(client, bin_dir, manifests, kubeconfig, run_dir, false).await
    }

    /// [`CapiCore::start`] with the ClusterTopology feature gate (ClusterClass and managed
    /// topologies) on or off.
    pub async fn start_gated(
        client: &kube::Client,
        bin_dir: &Path,
        manifests: &Path,
        kubeconfig: &Path,
        run_dir: &Path,
        cluster_topology: bool,
    ) -> Result<Self, HarnessError> {
        let core = manifests.join("core");
        let cert_dir = run_dir.join("capi-webhook-certs");
        std::fs::create_dir_all(&cert_dir).map_err(HarnessError::io("creating", &cert_dir))?;
        let ca = LoopbackCa::new("capi-webhook-ca")?;
        let (cert, key) = ca.serving("capi-webhook")?;
        for (name, pem) in [("tls.crt", &cert), ("tls.key", &key)] {
            let path = cert_dir.join(name);
            std::fs::write(&path, pem).map_err(HarnessError::io("writing", &path))?;
        }
        let ca_bundle = ca.pem().into_bytes();
        let port = free_port()?;
        let health = free_port()?;

        let crds: Vec<_> = crds::read_dir(&core.join("crd"))?
            .into_iter()
            .map(|c| with_loopback_conversion(c, port, &ca_bundle))
            .collect();
        crds::install(client, &crds).await?;
        install_webhooks(
            client,
            &core.join("webhook/manifests.yaml"),
            port,
            &ca_bundle,
        )
        .await?;

        let args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--webhook-port={port}"),
            format!("--webhook-cert-dir={}", cert_dir.display()),
            format!("--health-addr=127.0.0.1:{health}"),
            format!("--diagnostics-address=127.0.0.1:{}", free_port()?),
            "--insecure-diagnostics=true".into(),
            "--leader-elect=false".into(),
            feature_gates(cluster_topology),
            "--v=2".into(),
        ];
        let mut manager = Component::spawn(
            "capi-manager",
            &bin_dir.join("capi-manager"),
            &args,
            &[],
            run_dir,
        )?;
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{health}/readyz");
        for _ in 0..600 {
            manager.check_running()?;
            if matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) {
                return Ok(Self { manager });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(manager.not_ready("/readyz never answered 200".into()))
    }

    /// Stops the manager.
    pub async fn stop(mut self) {
        self.manager.stop().await;
    }
}
