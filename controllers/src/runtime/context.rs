//! What every reconcile shares: clients, metrics, the event publisher and start-up facts.

use std::sync::Arc;
use std::time::Duration;

use capmaas_api::Contract;
use capmaas_api::capi::CapiVersion;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType};

use crate::k8s::status_patch::StatusShape;
use crate::maas::credentials::MaasConnector;
use crate::machine::steady::NodeTarget;
use crate::runtime::backoff::Backoffs;
use crate::runtime::events::EventPublisher;
use crate::runtime::lease_gate::ActGate;
use crate::runtime::memo::Memo;
use crate::runtime::metrics::Metrics;
use crate::runtime::watch_health::WatchHealth;

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
    /// The one events publisher.
    pub events: EventPublisher,
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
    /// The `--watch-filter` value this manager's objects carry; `None` for every object.
    pub watch_filter: Option<String>,
    /// This management cluster's identity (the uid of the MaasMachine CRD), written into owner
    /// data; the orphan sweep only releases machines naming it. `None` when unreadable, and
    /// then the sweep releases nothing.
    pub management: Option<String>,
    /// Each ready MaasMachine's confirmation in MAAS, with the names its Node patch needs:
    /// events that change nothing of ours (CAPI status updates, our own writes, the Node retry)
    /// then cost no MAAS call.
    pub ready_machines: Memo<NodeTarget>,
    /// The recorded machine and the MAAS status it showed right after this manager released it,
    /// per MaasMachine: a release MAAS took is not sent again while the status stays the same.
    pub releases: Memo<(String, i64)>,
    /// What each MaasCluster last learnt of MAAS: zones and its DNS record.
    pub cluster_views: Memo<ClusterView>,
    /// When MAAS last had no machine for each waiting MaasMachine (by uid and generation): until
    /// the retry delay passes, events wake it without a MAAS call.
    pub capacity_refusals: Memo<std::time::Instant>,
    /// What each waiting MaasMachine's capacity condition last said (by uid and generation): a
    /// pass that waits on the refusal repeats it, even before the write that carried it shows
    /// in the object it was given.
    pub capacity_notes: Memo<String>,
    /// Power-ons sent to each MaasMachine's deployed machine lately: system id, how many, when
    /// the last.
    pub power_ons: Memo<(String, u32, std::time::Instant)>,
    /// Each failing object's error streak: the backoff before its next pass.
    pub backoffs: Backoffs,
    /// Whether this replica may start a MAAS step (its hold on the leader Lease lasts).
    pub gate: Arc<ActGate>,
    /// The controllers' watch failures, which readiness reports.
    pub watch_health: WatchHealth,
    /// Whether the installed CRDs are narrower than our types (status by merge patch).
    pub status_shape: StatusShape,
    /// Which MaasMachines read which identity Secret: its creation or change wakes them (a
    /// cluster applied before its Secret starts at once when the Secret comes).
    pub identity_readers: Arc<crate::machine::bootstrap_index::SecretReaders>,
}

/// MAAS facts a MaasCluster pass learnt, reused until the resync period passes.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// Zone names.
    pub zones: Option<std::collections::BTreeSet<String>>,
    /// The DNS record.
    pub dns: crate::cluster::decide::DnsView,
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
        self.events.publish(&ev, reference).await;
    }
}
