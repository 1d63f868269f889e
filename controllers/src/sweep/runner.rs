//! The orphan sweep as the manager runs it: the live MaasMachines from the API server, a sweep
//! every interval with the provider-wide MAAS client, until shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use capmaas_api::MaasMachine;
use kube::Api;
use kube::api::ListParams;
use tracing::{info, warn};

use crate::k8s::objects::scoped;
use crate::maas::credentials::MaasCredentials;
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

/// Sweeps every `interval` until shutdown, each MAAS endpoint in use on its own; an interval of
/// zero turns the sweep off. When it cannot run, the log says why, once.
pub async fn orphan_sweep(
    ctx: Arc<Context>,
    interval: Duration,
    grace: Duration,
    shutdown: Shutdown,
) {
    if interval.is_zero() {
        info!("orphan sweep off (--orphan-sweep-interval=0)");
        return;
    }
    if ctx.management.is_none() {
        warn!(
            "orphan sweep cannot run: this management cluster's identity is unknown (see above), so no machine can be told to be ours"
        );
        return;
    }
    let scope = ctx.namespace.as_deref().unwrap_or("<all namespaces>");
    info!(namespace = scope, every = ?interval, "orphan sweep on");
    // One per MAAS user: each sees its own machines, and a sweeper's suspects are exactly what
    // its last sweep saw.
    let mut sweepers: HashMap<MaasCredentials, Sweeper> = HashMap::new();
    let live = KubeLive {
        api: scoped::<MaasMachine>(&ctx.client, ctx.namespace.as_deref()),
    };
    let mut waiting_said = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
        if !ctx.gate.may_act() {
            return;
        }
        let clients = match ctx.connector.clients() {
            Ok(c) => c,
            Err(error) => {
                warn!(%error, "orphan sweep: no MAAS client");
                continue;
            }
        };
        if clients.is_empty() && !waiting_said {
            info!("orphan sweep waits: no MAAS credentials are in use yet");
            waiting_said = true;
        }
        for (creds, client) in clients {
            let sweeper = sweepers.entry(creds).or_insert_with(|| {
                Sweeper::new(ctx.namespace.clone(), ctx.management.clone(), grace)
            });
            sweep_endpoint(sweeper, &client, &live).await;
        }
    }
}

/// One sweep of one MAAS endpoint.
async fn sweep_endpoint(sweeper: &mut Sweeper, client: &maas_client::MaasClient, live: &KubeLive) {
    match sweeper
        .sweep_once(client, live, std::time::Instant::now())
        .await
    {
        Ok(released) if !released.is_empty() => {
            info!(maas = %client.base_url(), count = released.len(), "orphan sweep released machines")
        }
        Ok(_) => {}
        Err(error) => warn!(%error, maas = %client.base_url(), "orphan sweep failed"),
    }
}
