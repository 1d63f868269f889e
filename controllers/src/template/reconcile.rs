//! The MaasMachineTemplate reconciler: keeps `status.capacity`, `status.nodeInfo`, the count
//! of matching machines and `MachinesAvailable` equal to what MAAS has free for the template's
//! constraints, read from the endpoint's shared inventory and refreshed as often as it is.

use std::sync::Arc;

use capmaas_api::condition::set_condition;
use capmaas_api::{MaasMachineTemplate, MaasMachineTemplateStatus};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::debug;

use crate::maas::inventory::INVENTORY_MAX_AGE;
use crate::runtime::context::{Context, FIELD_MANAGER};
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::reconciler::reconcile_with;
use crate::template::source::{TemplateSource, read_inventory, template_source};
use crate::template::status::{InventoryView, template_status};

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
    json!({"status": {
        "capacity": capacity,
        "nodeInfo": desired.node_info,
        "availableMachines": desired.available_machines,
        "availableGPUs": desired.available_gpus,
        "conditions": desired.conditions,
    }})
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
        |obj, ctx| async move { reconcile_inner(&obj, &ctx).await },
        // The status and its condition are the whole report.
        |_, _, _| async {},
    )
    .await
}

async fn reconcile_inner(
    obj: &MaasMachineTemplate,
    ctx: &Context,
) -> Result<Option<std::time::Duration>, ReconcileError> {
    let ns = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachineTemplate without namespace".into()))?;
    if obj.metadata.deletion_timestamp.is_some()
        || capmaas_api::capi::has_paused_annotation(&obj.metadata)
    {
        return Ok(None);
    }
    let source = match template_source(ctx, &ns, obj).await? {
        TemplateSource::Paused => {
            debug!("cluster paused");
            return Ok(None);
        }
        source => source,
    };
    let spec = &obj.spec.template.spec;
    let read = read_inventory(ctx, &source, spec).await;
    let view = match &read.machines {
        Ok(machines) => InventoryView::Read(machines),
        Err((reason, message)) => InventoryView::Unavailable(reason, message),
    };
    let (mut desired, condition) = template_status(spec, view, read.zone.as_deref());
    desired.conditions = obj
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = jiff::Timestamp::now();
    set_condition(
        &mut desired.conditions,
        condition,
        obj.metadata.generation,
        now,
    );
    if needs_write(obj.status.as_ref(), &desired) {
        write_status(ctx, &ns, obj, &desired).await?;
    }
    // MAAS has no watch: the template looks again when the shared inventory may have moved.
    Ok(Some(INVENTORY_MAX_AGE))
}

async fn write_status(
    ctx: &Context,
    ns: &str,
    obj: &MaasMachineTemplate,
    desired: &MaasMachineTemplateStatus,
) -> Result<(), ReconcileError> {
    let api: Api<MaasMachineTemplate> = Api::namespaced(ctx.client.clone(), ns);
    let body = status_merge_patch(obj.status.as_ref(), desired);
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
    debug!(
        available = ?desired.available_machines,
        "template status written"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::status::spec_minimums;
    use capmaas_api::MaasMachineSpec;

    #[test]
    fn writes_only_on_difference() {
        let spec = MaasMachineSpec {
            min_cpu: Some(2),
            min_memory: Some(2048),
            ..Default::default()
        };
        let desired = spec_minimums(&spec);
        assert!(needs_write(None, &desired));
        assert!(!needs_write(Some(&desired.clone()), &desired));
        let stale = MaasMachineTemplateStatus::default();
        assert!(needs_write(Some(&stale), &desired));
    }

    #[test]
    fn merge_patch_sets_wanted_keys_and_removes_the_rest() {
        let desired = spec_minimums(&MaasMachineSpec {
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
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
                "availableMachines": null,
                "availableGPUs": null,
                "conditions": [],
            }})
        );
        assert_eq!(
            status_merge_patch(None, &desired)["status"]["capacity"],
            json!({"cpu": "4", "memory": "8192Mi"})
        );
    }
}
