//! Reading the state of a test cluster: Machines with their phases and the MAAS state of their
//! MaasMachines, and bounded waits that print progress.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::error::HarnessError;

/// CAPI Machines as v1beta2.
pub fn machines_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Machine"),
        "machines",
    )
}

/// CAPI Machines at the version the API server prefers: v1beta2 from Cluster API 1.11, v1beta1
/// before (the fields the progress table reads are the same in both).
pub async fn served_machines_resource(client: &kube::Client) -> ApiResource {
    let preferred = kube::discovery::group(client, "cluster.x-k8s.io")
        .await
        .ok()
        .map(|g| g.preferred_version_or_latest().to_string());
    match preferred.as_deref() {
        Some("v1beta1") => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta1", "Machine"),
            "machines",
        ),
        _ => machines_resource(),
    }
}

/// Our MaasMachines.
pub fn maas_machines_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "MaasMachine"),
        "maasmachines",
    )
}

/// Our MaasClusters.
pub fn maas_clusters_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infrastructure.cluster.x-k8s.io", "v1beta1", "MaasCluster"),
        "maasclusters",
    )
}

/// One row of the progress table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRow {
    /// Machine name.
    pub name: String,
    /// CAPI phase (`Pending`, `Provisioning`, `Provisioned`, `Running`, ...).
    pub phase: String,
    /// The MaasMachine's `status.machineState` (MAAS status name).
    pub maas_state: String,
    /// The Machine's providerID, when set.
    pub provider_id: Option<String>,
    /// The Node it is bound to, when set.
    pub node: Option<String>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Machines of a namespace joined with the MAAS state of their MaasMachines, sorted by name.
pub async fn machine_rows(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<MachineRow>, HarnessError> {
    let resource = served_machines_resource(client).await;
    let machines: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let maas: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &maas_machines_resource());
    let maas_list = maas.list(&ListParams::default()).await?;
    let mut rows = Vec::new();
    for m in machines.list(&ListParams::default()).await? {
        let infra = str_at(&m.data, &["spec", "infrastructureRef", "name"]).unwrap_or_default();
        let maas_state = maas_list
            .items
            .iter()
            .find(|mm| mm.metadata.name.as_deref() == Some(infra))
            .and_then(|mm| str_at(&mm.data, &["status", "machineState"]))
            .unwrap_or("-")
            .to_string();
        rows.push(MachineRow {
            name: m.metadata.name.clone().unwrap_or_default(),
            phase: str_at(&m.data, &["status", "phase"])
                .unwrap_or("-")
                .to_string(),
            maas_state,
            provider_id: str_at(&m.data, &["spec", "providerID"]).map(str::to_string),
            node: str_at(&m.data, &["status", "nodeRef", "name"]).map(str::to_string),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Renders rows as a fixed-width table.
pub fn render_table(rows: &[MachineRow]) -> String {
    let mut out = format!(
        "{:<36} {:<14} {:<18} {}\n",
        "MACHINE", "PHASE", "MAAS STATE", "NODE"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<36} {:<14} {:<18} {}\n",
            r.name,
            r.phase,
            r.maas_state,
            r.node.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// Polls `probe` every `every` until it returns `Some`, printing `what` and the probe's progress
/// text whenever it changes, for at most `limit`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    every: Duration,
    limit: Duration,
    mut probe: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Option<T>, String), HarnessError>>,
{
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let (done, progress) = probe().await?;
        if progress != last {
            eprintln!(
                "[{:>5.1}s] waiting for {what}: {progress}",
                start.elapsed().as_secs_f64()
            );
            last = progress;
        }
        if let Some(value) = done {
            return Ok(value);
        }
        if start.elapsed() > limit {
            return Err(HarnessError::Timeout(format!("{what} (last: {last})")));
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until the namespace has `count` Machines, all in phase Running.
pub async fn wait_machines_running(
    client: &kube::Client,
    namespace: &str,
    count: usize,
    limit: Duration,
) -> Result<Vec<MachineRow>, HarnessError> {
    wait_for(
        &format!("{count} Machines Running in {namespace}"),
        Duration::from_millis(500),
        limit,
        || async {
            let rows = machine_rows(client, namespace).await?;
            let running = rows.iter().filter(|r| r.phase == "Running").count();
            let progress = format!("{running}/{count} Running, {} Machines", rows.len());
            let done = (rows.len() == count && running == count).then_some(rows);
            Ok((done, progress))
        },
    )
    .await
}
