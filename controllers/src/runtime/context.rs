//! What every reconcile shares: clients, metrics, the event recorder and start-up facts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capmaas_api::Contract;
use capmaas_api::capi::CapiVersion;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::debug;

use crate::maas::credentials::MaasConnector;
use crate::machine::steady::NodeTarget;
use crate::runtime::metrics::Metrics;

/// The field manager of every server-side apply, fixed so ownership of fields is stable across
/// restarts and versions.
pub const FIELD_MANAGER: &str = "capmaas-controller";

/// Shared state of the controllers.
pub struct Context {
    /// Management cluster client.
    pub client: Client,
    /// MAAS clients.
    pub connector: MaasConnector,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The one events recorder.
    pub recorder: Recorder,
    /// CAPI API version served.
    pub capi: CapiVersion,
    /// Contract for `status.failureDomains`.
    pub contract: Contract,
    /// `MAAS_ZONE`.
    pub default_zone: Option<String>,
    /// Resync period.
    pub sync_period: Duration,
    /// The namespace watched, `None` for all.
    pub namespace: Option<String>,
    /// This management cluster's identity (the uid of the MaasMachine CRD), written into owner
    /// data; the orphan sweep only releases machines naming it. `None` when unreadable, and
    /// then the sweep releases nothing.
    pub management: Option<String>,
    /// When each ready MaasMachine (by uid) was last confirmed in MAAS, with the names its Node
    /// patch needs: events that change nothing of ours (CAPI status updates, our own writes,
    /// the Node retry) then cost no MAAS call.
    pub confirmed_ready: Mutex<HashMap<String, (Instant, NodeTarget)>>,
    /// What each MaasCluster (by uid) last learnt of MAAS: zones and its DNS record.
    pub cluster_memo: Mutex<HashMap<String, ClusterMemo>>,
}

/// MAAS facts a MaasCluster pass learnt, reused until the resync period passes.
#[derive(Clone, Debug)]
pub struct ClusterMemo {
    /// Zone names.
    pub zones: Option<std::collections::BTreeSet<String>>,
    /// The DNS record.
    pub dns: crate::cluster::decide::DnsView,
    /// When learnt.
    pub at: Instant,
}

impl Context {
    /// Publishes an event; failures are logged, never fatal (events are advisory).
    pub async fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&ev, reference).await {
            debug!(%error, reason, "cannot publish event");
        }
    }

    /// The Node names of `uid` when it was confirmed ready in MAAS less than (most of) a sync
    /// period ago; the margin keeps the resync requeue itself from being skipped.
    pub fn recently_confirmed(&self, uid: &str) -> Option<NodeTarget> {
        let map = self
            .confirmed_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(uid)
            .filter(|(at, _)| at.elapsed() < self.sync_period.mul_f64(0.9))
            .map(|(_, target)| target.clone())
    }

    /// Records (`Some`) or forgets (`None`) the confirmation of a ready machine.
    pub fn confirm_ready(&self, uid: &str, ready: Option<NodeTarget>) {
        let mut map = self
            .confirmed_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match ready {
            Some(target) => {
                map.insert(uid.to_string(), (Instant::now(), target));
            }
            None => {
                map.remove(uid);
            }
        }
    }

    /// The memo of a MaasCluster, when younger than the resync period.
    pub fn cluster_memo(&self, uid: &str) -> Option<ClusterMemo> {
        let map = self.cluster_memo.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uid)
            .filter(|m| m.at.elapsed() < self.sync_period.mul_f64(0.9))
            .cloned()
    }

    /// Stores (`Some`) or drops (`None`) the memo of a MaasCluster.
    pub fn set_cluster_memo(&self, uid: &str, memo: Option<ClusterMemo>) {
        let mut map = self.cluster_memo.lock().unwrap_or_else(|p| p.into_inner());
        match memo {
            Some(m) => {
                map.insert(uid.to_string(), m);
            }
            None => {
                map.remove(uid);
            }
        }
    }
}
