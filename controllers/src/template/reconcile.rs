//! The MaasMachineTemplate reconciler: keeps `status.capacity` and `status.nodeInfo` equal to
//! what the template's spec promises. No MAAS call: the status is a function of the spec.

use std::sync::Arc;

use capmaas_api::capi::{Cluster, cluster_name_label, has_paused_annotation};
use capmaas_api::{MaasMachineTemplate, MaasMachineTemplateStatus};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::debug;

use crate::k8s::capi_api::{CapiKind, get_capi};
use crate::runtime::context::{Context, FIELD_MANAGER};
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::reconciler::reconcile_with;
use crate::template::status::template_status;

/// The controller name in metrics and logs.
pub const CONTROLLER: &str = "maasmachinetemplate";

/// Whether the status must be written: only when what is stored differs from what is wanted.
/// Under a schema that prunes these fields the stored status never matches, and the write is a
/// harmless no-op for the API server (nothing changes, no watch event follows).
pub fn needs_write(
    current: Option<&MaasMachineTemplateStatus>,
    desired: &MaasMachineTemplateStatus,
) -> bool {
    current != Some(desired)
}

/// The merge patch that turns the stored status into the desired one: capacity keys no longer
/// wanted are removed explicitly (a merge patch keeps what it does not mention).
pub fn status_merge_patch(
    current: Option<&MaasMachineTemplateStatus>,
    desired: &MaasMachineTemplateStatus,
) -> serde_json::Value {
    let mut capacity = serde_json::Map::new();
    for key in current.iter().flat_map(|c| c.capacity.keys()) {
        capacity.insert(key.clone(), serde_json::Value::Null);
    }
    for (key, value) in &desired.capacity {
        capacity.insert(key.clone(), json!(value));
    }
    json!({"status": {"capacity": capacity, "nodeInfo": desired.node_info}})
}

/// Entry point for the controller runtime.
pub async fn reconcile(
    obj: Arc<MaasMachineTemplate>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    reconcile_with(
        CONTROLLER,
        obj,
        ctx,
        |obj, ctx| async move { reconcile_inner(&obj, &ctx).await.map(|()| None) },
        // The status is a function of the spec: the log line is the whole report.
        |_, _, _| async {},
    )
    .await
}

async fn reconcile_inner(obj: &MaasMachineTemplate, ctx: &Context) -> Result<(), ReconcileError> {
    let ns = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachineTemplate without namespace".into()))?;
    if obj.metadata.deletion_timestamp.is_some() || has_paused_annotation(&obj.metadata) {
        return Ok(());
    }
    if let Some(cluster) = cluster_name_label(&obj.metadata) {
        let cluster =
            get_capi::<Cluster>(&ctx.client, CapiKind::Cluster, ctx.capi, &ns, cluster).await?;
        if cluster.as_ref().is_some_and(Cluster::paused) {
            debug!("cluster paused");
            return Ok(());
        }
    }
    let desired = template_status(&obj.spec.template.spec);
    if !needs_write(obj.status.as_ref(), &desired) {
        return Ok(());
    }
    let api: Api<MaasMachineTemplate> = Api::namespaced(ctx.client.clone(), &ns);
    let body = status_merge_patch(obj.status.as_ref(), &desired);
    // A merge patch, not server-side apply: the HyperShift base-shape CRD declares no template
    // status at all, and the API server refuses an apply carrying undeclared fields ("field
    // not declared in schema") where it prunes them from a merge patch.
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
    .validation_ignore();
    api.patch_status(&obj.name_any(), &params, &Patch::Merge(&body))
        .await
        .map_err(ReconcileError::kube(
            Stage::Status,
            "write MaasMachineTemplate status",
        ))?;
    debug!("template status written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capmaas_api::MaasMachineSpec;

    #[test]
    fn writes_only_on_difference() {
        let spec = MaasMachineSpec {
            min_cpu: Some(2),
            min_memory: Some(2048),
            ..Default::default()
        };
        let desired = template_status(&spec);
        assert!(needs_write(None, &desired));
        assert!(!needs_write(Some(&desired.clone()), &desired));
        let stale = MaasMachineTemplateStatus::default();
        assert!(needs_write(Some(&stale), &desired));
    }

    #[test]
    fn merge_patch_sets_wanted_keys_and_removes_the_rest() {
        let desired = template_status(&MaasMachineSpec {
            min_cpu: Some(4),
            min_memory: Some(8192),
            ..Default::default()
        });
        let mut old = desired.clone();
        old.capacity.insert(
            "nvidia.com/gpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
        );
        assert_eq!(
            status_merge_patch(Some(&old), &desired),
            json!({"status": {
                "capacity": {"cpu": "4", "memory": "8192Mi", "nvidia.com/gpu": null},
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"}
            }})
        );
        assert_eq!(
            status_merge_patch(None, &desired)["status"]["capacity"],
            json!({"cpu": "4", "memory": "8192Mi"})
        );
    }
}
