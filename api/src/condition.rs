//! Conditions in the `metav1.Condition` shape (what the v1beta2 contract reads) plus the optional
//! `severity` of the v1beta1 contract, and the pure helpers both controllers use to maintain them.
//! Time is always passed in, never read here, so every rule is testable without a clock.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition as MetaCondition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The three states of a condition, spelled as Kubernetes spells them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet (for example before the first MAAS answer).
    Unknown,
}

impl ConditionStatus {
    /// The wire spelling, for places that hold the status as a plain string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    /// Parses the wire spelling; anything else is treated as `Unknown`, the honest reading of a
    /// value we do not understand.
    pub fn parse(s: &str) -> Self {
        match s {
            "True" => Self::True,
            "False" => Self::False,
            _ => Self::Unknown,
        }
    }
}

/// How bad a False condition is (v1beta1 contract); only meaningful when the status is False.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionSeverity {
    /// Needs a human.
    Error,
    /// Degraded but progressing, or likely to recover.
    Warning,
    /// Expected and transient (waiting for something).
    Info,
}

/// One observation of an object's state.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type in CamelCase, for example `Ready`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// When the status last changed (not when the condition was last written).
    #[schemars(schema_with = "crate::schema_helpers::time")]
    pub last_transition_time: Time,
    /// Machine-readable CamelCase reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How bad a False condition is (v1beta1 contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<ConditionSeverity>,
}

/// What a controller wants a condition to say; [`set_condition`] turns it into a [`Condition`],
/// keeping the transition time when only the reason or message changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type, one of [`crate::condition_names::types`].
    pub type_: String,
    /// The new status.
    pub status: ConditionStatus,
    /// One of [`crate::condition_names::reasons`]; empty means none.
    pub reason: String,
    /// Human-readable details; empty means none.
    pub message: String,
    /// Only kept when the status is False.
    pub severity: Option<ConditionSeverity>,
}

impl ConditionUpdate {
    /// A condition that holds.
    pub fn true_(type_: &str, reason: &str) -> Self {
        Self {
            type_: type_.to_owned(),
            status: ConditionStatus::True,
            reason: reason.to_owned(),
            message: String::new(),
            severity: None,
        }
    }

    /// A condition that does not hold, with how bad that is and why.
    pub fn false_(
        type_: &str,
        reason: &str,
        severity: ConditionSeverity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status: ConditionStatus::False,
            reason: reason.to_owned(),
            message: message.into(),
            severity: Some(severity),
        }
    }

    /// A condition whose state is not known yet.
    pub fn unknown(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.to_owned(),
            status: ConditionStatus::Unknown,
            reason: reason.to_owned(),
            message: message.into(),
            severity: None,
        }
    }

    /// Replaces the message, for callers that build the text after choosing the status.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Sets a condition in `conditions`: adds it when absent, otherwise updates it in place. The
/// transition time becomes `now` only when the status changes (or the condition is new);
/// `observed_generation` is always recorded. Returns whether anything changed, so callers can
/// skip a status write that would change nothing.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let severity = match update.status {
        ConditionStatus::False => update.severity,
        ConditionStatus::True | ConditionStatus::Unknown => None,
    };
    let reason = non_empty(update.reason);
    let message = non_empty(update.message);
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(existing) => {
            let last_transition_time = if existing.status == update.status {
                existing.last_transition_time.clone()
            } else {
                Time(now)
            };
            let next = Condition {
                type_: update.type_,
                status: update.status,
                observed_generation,
                last_transition_time,
                reason,
                message,
                severity,
            };
            if *existing == next {
                false
            } else {
                *existing = next;
                true
            }
        }
        None => {
            conditions.push(Condition {
                type_: update.type_,
                status: update.status,
                observed_generation,
                last_transition_time: Time(now),
                reason,
                message,
                severity,
            });
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present and True.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Removes the condition of the given type; returns whether it was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// To the plain `metav1.Condition` (for example to mirror into another object); severity has no
/// place there and is dropped, absent reason and message become empty strings.
impl From<Condition> for MetaCondition {
    fn from(c: Condition) -> Self {
        MetaCondition {
            type_: c.type_,
            status: c.status.as_str().to_owned(),
            observed_generation: c.observed_generation,
            last_transition_time: c.last_transition_time,
            reason: c.reason.unwrap_or_default(),
            message: c.message.unwrap_or_default(),
        }
    }
}

/// From a plain `metav1.Condition`; empty reason and message become absent.
impl From<MetaCondition> for Condition {
    fn from(c: MetaCondition) -> Self {
        Condition {
            type_: c.type_,
            status: ConditionStatus::parse(&c.status),
            observed_generation: c.observed_generation,
            last_transition_time: c.last_transition_time,
            reason: non_empty(c.reason),
            message: non_empty(c.message),
            severity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition_names::{reasons, types};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn new_condition_gets_now_and_generation() {
        let mut list = Vec::new();
        let changed = set_condition(
            &mut list,
            ConditionUpdate::true_(types::READY, reasons::READY),
            Some(3),
            at(100),
        );
        assert!(changed);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].last_transition_time, Time(at(100)));
        assert_eq!(list[0].observed_generation, Some(3));
        assert_eq!(list[0].reason.as_deref(), Some(reasons::READY));
        assert_eq!(list[0].message, None);
    }

    #[test]
    fn same_status_keeps_transition_time_but_updates_message() {
        let mut list = Vec::new();
        let waiting = ConditionUpdate::false_(
            types::READY,
            reasons::DEPLOYING,
            ConditionSeverity::Info,
            "deploying",
        );
        set_condition(&mut list, waiting.clone(), Some(1), at(100));
        let changed = set_condition(
            &mut list,
            waiting.with_message("still deploying"),
            Some(2),
            at(200),
        );
        assert!(changed);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].last_transition_time, Time(at(100)));
        assert_eq!(list[0].message.as_deref(), Some("still deploying"));
        assert_eq!(list[0].observed_generation, Some(2));
    }

    #[test]
    fn status_change_moves_transition_time() {
        let mut list = Vec::new();
        set_condition(
            &mut list,
            ConditionUpdate::unknown(types::READY, reasons::ALLOCATING, ""),
            Some(1),
            at(100),
        );
        set_condition(
            &mut list,
            ConditionUpdate::true_(types::READY, reasons::READY),
            Some(1),
            at(250),
        );
        assert_eq!(list[0].last_transition_time, Time(at(250)));
        assert_eq!(list[0].status, ConditionStatus::True);
    }

    #[test]
    fn identical_update_reports_no_change() {
        let mut list = Vec::new();
        let update = ConditionUpdate::true_(types::DNS_READY, reasons::READY);
        assert!(set_condition(&mut list, update.clone(), Some(4), at(10)));
        assert!(!set_condition(&mut list, update, Some(4), at(20)));
        assert_eq!(list[0].last_transition_time, Time(at(10)));
    }

    #[test]
    fn severity_is_dropped_unless_false() {
        let mut list = Vec::new();
        let mut update = ConditionUpdate::true_(types::READY, reasons::READY);
        update.severity = Some(ConditionSeverity::Error);
        set_condition(&mut list, update, None, at(1));
        assert_eq!(list[0].severity, None);
        set_condition(
            &mut list,
            ConditionUpdate::false_(
                types::READY,
                reasons::MACHINE_NOT_FOUND,
                ConditionSeverity::Error,
                "gone",
            ),
            None,
            at(2),
        );
        assert_eq!(list[0].severity, Some(ConditionSeverity::Error));
    }

    #[test]
    fn other_types_are_left_alone() {
        let mut list = Vec::new();
        set_condition(
            &mut list,
            ConditionUpdate::true_(types::READY, reasons::READY),
            None,
            at(1),
        );
        set_condition(
            &mut list,
            ConditionUpdate::true_(types::DNS_READY, reasons::READY),
            None,
            at(2),
        );
        assert_eq!(list.len(), 2);
        assert!(is_condition_true(&list, types::READY));
        assert!(!is_condition_true(&list, types::PAUSED));
        assert!(remove_condition(&mut list, types::READY));
        assert!(!remove_condition(&mut list, types::READY));
        assert_eq!(list.len(), 1);
        assert_eq!(
            find_condition(&list, types::DNS_READY).map(|c| c.last_transition_time.clone()),
            Some(Time(at(2)))
        );
    }

    #[test]
    fn converts_to_and_from_metav1() {
        let ours = Condition {
            type_: "Ready".into(),
            status: ConditionStatus::False,
            observed_generation: Some(7),
            last_transition_time: Time(at(5)),
            reason: Some("Deploying".into()),
            message: None,
            severity: Some(ConditionSeverity::Info),
        };
        let meta: MetaCondition = ours.clone().into();
        assert_eq!(meta.status, "False");
        assert_eq!(meta.message, "");
        assert_eq!(meta.reason, "Deploying");
        let back: Condition = meta.into();
        assert_eq!(back.severity, None);
        assert_eq!(back.message, None);
        assert_eq!(
            Condition {
                severity: Some(ConditionSeverity::Info),
                ..back
            },
            ours
        );
    }

    #[test]
    fn wire_shape_has_metav1_names() {
        let c = Condition {
            type_: "Ready".into(),
            status: ConditionStatus::True,
            observed_generation: Some(2),
            last_transition_time: Time(at(0)),
            reason: None,
            message: None,
            severity: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "Ready",
                "status": "True",
                "observedGeneration": 2,
                "lastTransitionTime": "1970-01-01T00:00:00Z",
            })
        );
        assert_eq!(ConditionStatus::parse("bogus"), ConditionStatus::Unknown);
    }
}
