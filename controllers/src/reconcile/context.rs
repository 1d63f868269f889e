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

use super::credentials::MaasConnector;
use crate::metrics::Metrics;

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
    /// When this process first saw each MaasMachine (by uid) deploying, for adaptive polling.
    pub deploying_since: Mutex<HashMap<String, Instant>>,
    /// When each ready MaasMachine (by uid) was last confirmed in MAAS, and at which generation:
    /// events that change nothing of ours (CAPI status updates) then cost no MAAS call.
    pub confirmed_ready: Mutex<HashMap<String, (Option<i64>, Instant)>>,
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

    /// How long the machine `uid` has been deploying as far as this process knows; `mark`
    /// records or forgets the start.
    pub fn deploying_for(&self, uid: &str) -> Option<Duration> {
        let map = self
            .deploying_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(uid).map(Instant::elapsed)
    }

    /// Whether `uid` at `generation` was confirmed ready in MAAS less than a sync period ago.
    pub fn recently_confirmed(&self, uid: &str, generation: Option<i64>) -> bool {
        let map = self
            .confirmed_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(uid)
            .is_some_and(|(g, at)| *g == generation && at.elapsed() < self.sync_period.mul_f64(0.9))
    }

    /// Records (`Some`) or forgets (`None`) the confirmation of a ready machine.
    pub fn confirm_ready(&self, uid: &str, generation: Option<Option<i64>>) {
        let mut map = self
            .confirmed_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match generation {
            Some(g) => {
                map.insert(uid.to_string(), (g, Instant::now()));
            }
            None => {
                map.remove(uid);
            }
        }
    }

    /// Records (`true`) or forgets (`false`) that `uid` is deploying.
    pub fn mark_deploying(&self, uid: &str, deploying: bool) {
        let mut map = self
            .deploying_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if deploying {
            map.entry(uid.to_string()).or_insert_with(Instant::now);
        } else {
            map.remove(uid);
        }
    }
}
