//! Events: through `events.k8s.io/v1` (kube-runtime's recorder) while the API server allows it,
//! else as core `v1` Events, which is all the Roles the Go provider ships with grant (HyperShift's
//! among them). The fallback is chosen once, on the first refusal, and repeats of one event are
//! counted on it as the recorder counts them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use tracing::{debug, info};

/// How long repeats of one event are counted on the same core Event.
const REPEAT_WINDOW: Duration = Duration::from_secs(6 * 60);

/// What identifies repeats of one event: the object's uid, the reason and the note.
type EventKey = (String, String, String);

/// One core Event already written: its name, its count and when it was last written.
#[derive(Clone, Debug, PartialEq)]
struct Written {
    name: String,
    count: i32,
    at: Instant,
}

/// The core Events written lately, so a repeat is counted on the same Event.
#[derive(Debug, Default)]
struct Repeats(Mutex<HashMap<EventKey, Written>>);

impl Repeats {
    /// The Event an earlier repeat of `key` wrote within the window before `now`.
    fn of(&self, key: &EventKey, now: Instant) -> Option<Written> {
        let written = self.0.lock().unwrap_or_else(|p| p.into_inner());
        written
            .get(key)
            .filter(|w| now.saturating_duration_since(w.at) < REPEAT_WINDOW)
            .cloned()
    }

    /// Records `w` for `key`, forgetting what fell out of the window.
    fn remember(&self, key: EventKey, w: Written) {
        let mut written = self.0.lock().unwrap_or_else(|p| p.into_inner());
        written.retain(|_, old| w.at.saturating_duration_since(old.at) < REPEAT_WINDOW);
        written.insert(key, w);
    }
}

/// Publishes events on behalf of every controller.
pub struct EventPublisher {
    recorder: Recorder,
    client: Client,
    reporter: Reporter,
    core_only: AtomicBool,
    repeats: Repeats,
}

impl EventPublisher {
    /// A publisher reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventPublisher {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
            core_only: AtomicBool::new(false),
            repeats: Repeats::default(),
        }
    }

    /// Publishes `ev` about `reference`; failures are logged, never fatal (events are advisory).
    pub async fn publish(&self, ev: &Event, reference: &ObjectReference) {
        if !self.core_only.load(Ordering::Relaxed) {
            match self.recorder.publish(ev, reference).await {
                Ok(()) => return,
                // A Role with core events only. (A 404 is not a reason: the recorder gets one when
                // an Event it counts repeats on has been deleted.)
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    info!(
                        code = status.code,
                        "events.k8s.io Events refused; writing core v1 Events"
                    );
                    self.core_only.store(true, Ordering::Relaxed);
                }
                Err(error) => {
                    debug!(%error, reason = %ev.reason, "cannot publish event");
                    return;
                }
            }
        }
        if let Err(error) = self.publish_core(ev, reference).await {
            debug!(%error, reason = %ev.reason, "cannot publish core event");
        }
    }

    async fn publish_core(&self, ev: &Event, reference: &ObjectReference) -> kube::Result<()> {
        let ns = reference
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &ns);
        let key = (
            reference.uid.clone().unwrap_or_default(),
            ev.reason.clone(),
            ev.note.clone().unwrap_or_default(),
        );
        let (now, at) = (Time(jiff::Timestamp::now()), Instant::now());
        let written = match self.repeats.of(&key, at) {
            Some(earlier) => {
                let count = earlier.count + 1;
                let patch = serde_json::json!({"count": count, "lastTimestamp": now});
                api.patch(
                    &earlier.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                Written {
                    count,
                    at,
                    ..earlier
                }
            }
            None => {
                let name = event_name(reference);
                let event = core_event(ev, reference, &self.reporter, (&name, &ns), &now);
                api.create(&PostParams::default(), &event).await?;
                Written { name, count: 1, at }
            }
        };
        self.repeats.remember(key, written);
        Ok(())
    }
}

/// A unique name for a new Event about `reference`, as client-go names them.
fn event_name(reference: &ObjectReference) -> String {
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!(
        "{}.{:x}",
        reference.name.as_deref().unwrap_or("object"),
        nanos
    )
}

/// The first core Event for `ev`, written `now`: `at` is its name and namespace. Repeats only
/// patch its count and last timestamp.
fn core_event(
    ev: &Event,
    reference: &ObjectReference,
    reporter: &Reporter,
    at: (&str, &str),
    now: &Time,
) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(at.0.to_string()),
            namespace: Some(at.1.to_string()),
            ..Default::default()
        },
        involved_object: reference.clone(),
        reason: Some(ev.reason.clone()),
        message: ev.note.clone(),
        type_: Some(match ev.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        action: Some(ev.action.clone()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now.clone()),
        event_time: Some(MicroTime(now.0)),
        reporting_component: Some(reporter.controller.clone()),
        reporting_instance: reporter.instance.clone(),
        source: Some(EventSource {
            component: Some(reporter.controller.clone()),
            host: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_event_says_what_the_recorder_would() {
        let reference = ObjectReference {
            kind: Some("MaasMachine".into()),
            name: Some("mm-0".into()),
            namespace: Some("ns".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "DeployFailed".into(),
            note: Some("MAAS said no".into()),
            action: "Deploy".into(),
            secondary: None,
        };
        let reporter = Reporter {
            controller: "capmaas-controller-manager".into(),
            instance: Some("pod-1".into()),
        };
        let t = Time(jiff::Timestamp::UNIX_EPOCH);
        let core = core_event(&ev, &reference, &reporter, ("mm-0.1", "ns"), &t);
        assert_eq!(core.type_.as_deref(), Some("Warning"));
        assert_eq!(core.reason.as_deref(), Some("DeployFailed"));
        assert_eq!(core.message.as_deref(), Some("MAAS said no"));
        assert_eq!(core.count, Some(1));
        assert_eq!(core.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(core.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            core.source.and_then(|s| s.component).as_deref(),
            Some("capmaas-controller-manager")
        );
        assert!(event_name(&reference).starts_with("mm-0."));
    }

    #[test]
    fn repeats_count_on_one_event_within_the_window() {
        let repeats = Repeats::default();
        let key = (
            "u-1".to_string(),
            "DeployFailed".to_string(),
            "no".to_string(),
        );
        let t0 = Instant::now();
        assert_eq!(repeats.of(&key, t0), None);
        let first = Written {
            name: "mm-0.1".into(),
            count: 1,
            at: t0,
        };
        repeats.remember(key.clone(), first.clone());
        assert_eq!(repeats.of(&key, t0 + Duration::from_secs(60)), Some(first));
        let other = (
            "u-2".to_string(),
            "DeployFailed".to_string(),
            "no".to_string(),
        );
        assert_eq!(repeats.of(&other, t0), None);
        assert_eq!(repeats.of(&key, t0 + REPEAT_WINDOW), None);
        let later = Written {
            name: "mm-0.2".into(),
            count: 1,
            at: t0 + REPEAT_WINDOW,
        };
        repeats.remember(other.clone(), later);
        assert_eq!(
            repeats.0.lock().unwrap().len(),
            1,
            "what fell out of the window is forgotten"
        );
    }
}
