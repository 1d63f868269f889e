//! The work left once MAAS shows the machine deployed: the GPU inventory, the workload Node's
//! providerID.

use capmaas_api::{MaasMachine, MaasMachineStatus};
use kube::Resource;
use kube::runtime::events::EventType;
use tracing::info;

use crate::machine::decide::ReadyMachine;
use crate::machine::node::{NodeOutcome, set_node_provider_id, workload_client};
use crate::machine::steady::NodeTarget;
use crate::runtime::context::Context;

/// Reads the GPU inventory once for machines that asked for GPUs (one MAAS call per machine
/// life), and warns when fewer GPUs than asked for are present.
pub async fn add_gpu_inventory(
    ctx: &Context,
    obj: &MaasMachine,
    maas: &maas_client::MaasClient,
    ready: &ReadyMachine,
    status: &mut MaasMachineStatus,
) {
    let Some(gpu) = &obj.spec.gpu else { return };
    let Some(hw) = status.hardware.as_mut() else {
        return;
    };
    if !hw.gpus.is_empty() {
        return;
    }
    match maas_client::MaasApi::node_devices(maas, &ready.system_id, Some("gpu")).await {
        Ok(devices) => {
            hw.gpus = crate::domain::observe::gpu_devices(&devices);
            let wanted = usize::try_from(gpu.min_count.unwrap_or(1)).unwrap_or(0);
            if hw.gpus.len() < wanted {
                let note = format!(
                    "{} has {} GPUs, {} requested",
                    ready.system_id,
                    hw.gpus.len(),
                    wanted
                );
                ctx.event(
                    &obj.object_ref(&()),
                    EventType::Warning,
                    "InsufficientGPUs",
                    "Inventory",
                    note,
                )
                .await;
            }
        }
        Err(error) => tracing::debug!(%error, "cannot read GPU inventory yet"),
    }
}

/// The Node names of a ready machine.
pub fn node_target(ready: &ReadyMachine) -> NodeTarget {
    NodeTarget {
        hostname: ready.hostname.clone(),
        fqdn: ready.fqdn.clone(),
        provider_id: ready.provider_id.clone(),
    }
}

/// Sets the workload Node's providerID when it is empty; failures are retried later, never
/// errors of the pass (the workload cluster may not answer yet).
pub async fn patch_node(
    ctx: &Context,
    obj: &MaasMachine,
    ns: &str,
    cluster: &str,
    target: &NodeTarget,
) {
    let result = async {
        let workload = workload_client(&ctx.client, ns, cluster).await?;
        set_node_provider_id(
            &workload,
            &target.hostname,
            &target.fqdn,
            &target.provider_id,
        )
        .await
    }
    .await;
    match result {
        Ok(NodeOutcome::Set(node)) => {
            info!(%node, "set the Node's providerID");
            ctx.event(
                &obj.object_ref(&()),
                EventType::Normal,
                "NodeProviderIDSet",
                "PatchNode",
                format!("Node {node}"),
            )
            .await;
        }
        Ok(other) => tracing::debug!(?other, "Node providerID unchanged"),
        Err(error) => tracing::debug!(%error, "workload Node not reachable yet"),
    }
}
