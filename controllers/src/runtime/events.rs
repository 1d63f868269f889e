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

/// One core Event already written: its name, count and when it was first written.
struct Written {
    name: String,
    count: i32,
    first: Time,
    at: Instant,
}

/// Publishes events on behalf of every controller.
pub struct EventPublisher {
    recorder: Recorder,
    client: Client,
    reporter: Reporter,
    core_only: AtomicBool,
    written: Mutex<HashMap<(String, String, String), Written>>,
}

impl EventPublisher {
    /// A publisher reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventPublisher {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
            core_only: AtomicBool::new(false),
            written: Mutex::new(HashMap::new()),
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
        let now = Time(jiff::Timestamp::now());
        let repeat = self.repeat_of(&key);
        let (name, count, first) = match &repeat {
            Some((name, count, first)) => (name.clone(), count + 1, first.clone()),
            None => (event_name(reference), 1, now.clone()),
        };
        let event = core_event(
            ev,
            reference,
            &self.reporter,
            (&name, &ns),
            (count, &first, &now),
        );
        match repeat {
            Some(_) => {
                let patch = serde_json::json!({"count": count, "lastTimestamp": now});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            None => {
                api.create(&PostParams::default(), &event).await?;
            }
        }
        self.remember(
            key,
            Written {
                name,
                count,
                first,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// The core Event an earlier repeat of `key` wrote, if recent.
    fn repeat_of(&self, key: &(String, String, String)) -> Option<(String, i32, Time)> {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written
            .get(key)
            .filter(|w| w.at.elapsed() < REPEAT_WINDOW)
            .map(|w| (w.name.clone(), w.count, w.first.clone()))
    }

    fn remember(&self, key: (String, String, String), w: Written) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.retain(|_, old| old.at.elapsed() < REPEAT_WINDOW);
        written.insert(key, w);
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

/// The core Event for `ev`: `at` is its name and namespace, `times` its count, first and last
/// timestamps.
fn core_event(
    ev: &Event,
    reference: &ObjectReference,
    reporter: &Reporter,
    at: (&str, &str),
    times: (i32, &Time, &Time),
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
        count: Some(times.0),
        first_timestamp: Some(times.1.clone()),
        last_timestamp: Some(times.2.clone()),
        event_time: Some(MicroTime(times.2.0)),
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
        let core = core_event(&ev, &reference, &reporter, ("mm-0.1", "ns"), (2, &t, &t));
        assert_eq!(core.type_.as_deref(), Some("Warning"));
        assert_eq!(core.reason.as_deref(), Some("DeployFailed"));
        assert_eq!(core.message.as_deref(), Some("MAAS said no"));
        assert_eq!(core.count, Some(2));
        assert_eq!(core.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(core.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            core.source.and_then(|s| s.component).as_deref(),
            Some("capmaas-controller-manager")
        );
        assert!(event_name(&reference).starts_with("mm-0."));
    }
}
