//! The boot hook: stands in for kubelets joining. When a machine reaches Deployed, a core/v1
//! Node named after its host name (Ready, no providerID) is created in the cluster of a
//! kubeconfig; when the machine is released, the Node is deleted. Failures are retried while the
//! API server does not answer, then logged, never fatal.

use std::path::PathBuf;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::lifecycle::HookEvent;

async fn client(path: &PathBuf) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| format!("reading kubeconfig: {e}"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("loading kubeconfig: {e}"))?;
    Client::try_from(config).map_err(|e| format!("building client: {e}"))
}

/// What a Node's kubelet reports when the bootstrap data names no version.
const DEFAULT_KUBELET_VERSION: &str = "v1.31.0";

async fn register(
    nodes: &Api<Node>,
    hostname: &str,
    kubelet_version: &str,
) -> Result<(), kube::Error> {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(hostname.to_string()),
            labels: Some(
                [
                    ("kubernetes.io/hostname".to_string(), hostname.to_string()),
                    ("kubernetes.io/os".to_string(), "linux".to_string()),
                    ("kubernetes.io/arch".to_string(), "amd64".to_string()),
                ]
                .into_iter()
                .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    let now = jiff::Timestamp::now().to_string();
    // What a healthy kubelet reports: Cluster API counts a Machine available (what a rollout with
    // maxUnavailable 0 waits for) only when the Node is Ready and under no pressure.
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({
        "status": {
            "conditions": [
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
            ],
            "addresses": [{"type": "Hostname", "address": hostname}],
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": kubelet_version,
                "bootID": "", "containerRuntimeVersion": "containerd://1.7.0", "kernelVersion": "6.8.0",
                "kubeProxyVersion": "", "machineID": "", "osImage": "Ubuntu 24.04 LTS", "systemUUID": ""
            },
        }
    });
    nodes
        .patch_status(hostname, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(|_| ())
}

async fn remove(nodes: &Api<Node>, hostname: &str) -> Result<(), kube::Error> {
    match nodes.delete(hostname, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies one event, retrying as a kubelet does while the API server does not answer (it may
/// be restarting): a lost registration would leave the Machine without its Node for good.
async fn apply(nodes: &Api<Node>, event: HookEvent) {
    let (hostname, registering, version) = match &event {
        HookEvent::Deployed {
            hostname,
            kubelet_version,
        } => (
            hostname.clone(),
            true,
            kubelet_version
                .clone()
                .unwrap_or_else(|| DEFAULT_KUBELET_VERSION.to_string()),
        ),
        HookEvent::Released { hostname } => (hostname.clone(), false, String::new()),
    };
    let attempt = || async {
        if registering {
            register(nodes, &hostname, &version).await
        } else {
            remove(nodes, &hostname).await
        }
    };
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(60),
        )
        .when(|e| !matches!(e, kube::Error::Api(s) if s.code < 500))
        .notify(|error, after| tracing::debug!(%hostname, %error, ?after, "node update retried"))
        .await;
    match (result, registering) {
        (Ok(()), true) => tracing::info!(%hostname, "node registered"),
        (Ok(()), false) => tracing::info!(%hostname, "node removed"),
        (Err(error), true) => tracing::warn!(%hostname, %error, "node registration failed"),
        (Err(error), false) => tracing::warn!(%hostname, %error, "node removal failed"),
    }
}

/// Applies events in order until the simulator stops, then applies what is still queued.
pub async fn run(
    kubeconfig: PathBuf,
    mut events: UnboundedReceiver<HookEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let nodes: Option<Api<Node>> = match client(&kubeconfig).await {
        Ok(c) => Some(Api::all(c)),
        Err(message) => {
            tracing::warn!(%message, "boot hook disabled");
            None
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    if let Some(nodes) = &nodes {
                        apply(nodes, event).await;
                    }
                }
                None => return,
            },
            _ = stop.changed() => break,
        }
    }
    while let Ok(event) = events.try_recv() {
        if let Some(nodes) = &nodes {
            apply(nodes, event).await;
        }
    }
}
