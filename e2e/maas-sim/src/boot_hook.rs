//! The boot hook: stands in for kubelets joining. When a machine reaches Deployed, a core/v1
//! Node named after its host name (Ready, no providerID) is created in the cluster of a
//! kubeconfig, with the machine's architecture, capacity and GPUs and the labels and taints of
//! its bootstrap data; when the machine is released, the Node is deleted. Failures are retried
//! while the API server does not answer, then logged, never fatal.

use std::path::PathBuf;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::lifecycle::HookEvent;
use crate::node_facts::NodeFacts;
use crate::node_object;

async fn client(path: &PathBuf) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| format!("reading kubeconfig: {e}"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("loading kubeconfig: {e}"))?;
    Client::try_from(config).map_err(|e| format!("building client: {e}"))
}

/// What a Node's kubelet reports when the bootstrap data names no version.
const DEFAULT_KUBELET_VERSION: &str = "v1.31.0";

/// Creates the Node (or merges its labels into the one already there), then reports its status.
async fn register(nodes: &Api<Node>, hostname: &str, facts: &NodeFacts) -> Result<(), kube::Error> {
    match nodes
        .create(&PostParams::default(), &node_object::node(hostname, facts))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let labels = node_object::label_patch(hostname, facts);
            nodes
                .patch(hostname, &PatchParams::default(), &Patch::Merge(&labels))
                .await?;
        }
        Err(e) => return Err(e),
    }
    let version = facts
        .kubelet_version
        .as_deref()
        .unwrap_or(DEFAULT_KUBELET_VERSION);
    let now = jiff::Timestamp::now().to_string();
    let status = node_object::status_patch(hostname, facts, version, &now);
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
    let (hostname, facts) = match event {
        HookEvent::Deployed { hostname, node } => (hostname, Some(node)),
        HookEvent::Released { hostname } => (hostname, None),
    };
    if let Some(refused) = facts.as_ref().map(|f| &f.refused_labels)
        && !refused.is_empty()
    {
        tracing::warn!(%hostname, ?refused, "node-labels a kubelet refuses, left off the Node");
    }
    let attempt = || async {
        match &facts {
            Some(facts) => register(nodes, &hostname, facts).await,
            None => remove(nodes, &hostname).await,
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
    match (result, facts.is_some()) {
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
