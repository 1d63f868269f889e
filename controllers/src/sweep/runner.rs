//! The orphan sweep as the manager runs it: the live MaasMachines from the API server, a sweep
//! every interval with the provider-wide MAAS client, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use capmaas_api::MaasMachine;
use kube::Api;
use kube::api::ListParams;
use tracing::{info, warn};

use crate::k8s::objects::scoped;
use crate::runtime::context::Context;
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::shutdown::Shutdown;
use crate::sweep::{LiveMachines, LiveSet, Sweeper};

/// The live MaasMachines, listed from the API server.
struct KubeLive {
    api: Api<MaasMachine>,
}

impl LiveMachines for KubeLive {
    async fn live(&self) -> Result<LiveSet, ReconcileError> {
        let list = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(ReconcileError::kube(Stage::Fetch, "list MaasMachines"))?;
        let mut live = LiveSet::default();
        for m in list.items {
            if let Some(uid) = m.metadata.uid {
                live.uids.insert(uid);
            }
            if let Some(id) = m.spec.system_id.filter(|id| !id.is_empty()) {
                live.system_ids.insert(id);
            }
        }
        Ok(live)
    }
}

/// Sweeps every `interval` until shutdown; an interval of zero turns the sweep off.
pub async fn orphan_sweep(
    ctx: Arc<Context>,
    interval: Duration,
    grace: Duration,
    shutdown: Shutdown,
) {
    if interval.is_zero() {
        return;
    }
    let mut sweeper = Sweeper::new(ctx.namespace.clone(), ctx.management.clone(), grace);
    let live = KubeLive {
        api: scoped::<MaasMachine>(&ctx.client, ctx.namespace.as_deref()),
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
        if !ctx.gate.may_act() {
            return;
        }
        let client = match ctx.connector.client(None) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(error) => {
                warn!(%error, "orphan sweep: no MAAS client");
                continue;
            }
        };
        match sweeper
            .sweep_once(&client, &live, std::time::Instant::now())
            .await
        {
            Ok(released) if !released.is_empty() => {
                info!(count = released.len(), "orphan sweep released machines")
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "orphan sweep failed"),
        }
    }
}
