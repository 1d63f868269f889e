//! Whether the controllers' watches work: the last watch failure of each controller, so that
//! readiness and health say why nothing is reconciled (a Role that forbids the watch, a CRD that
//! is not installed) instead of answering OK, and the log says it once a minute, not on every
//! retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A watch failure within this long counts as current: the watchers retry with a backoff of at
/// most half a minute, so a watch that still fails fails again within it.
pub const CURRENT: Duration = Duration::from_secs(60);

/// The last watch failure per controller. A failure stops counting a minute after it happened:
/// a watch that works again does not fail again.
#[derive(Clone, Debug, Default)]
pub struct WatchHealth(Arc<Mutex<HashMap<&'static str, Failure>>>);

#[derive(Clone, Debug)]
struct Failure {
    message: String,
    at: Instant,
    logged: Instant,
}

impl WatchHealth {
    /// Records that a watch of `controller` failed; true when the failure should be logged (the
    /// first, or the first after a quiet minute).
    pub fn failed(&self, controller: &'static str, message: String, now: Instant) -> bool {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let log = failures
            .get(controller)
            .is_none_or(|f| now.duration_since(f.logged) >= CURRENT);
        let logged = match failures.get(controller) {
            Some(f) if !log => f.logged,
            _ => now,
        };
        failures.insert(
            controller,
            Failure {
                message,
                at: now,
                logged,
            },
        );
        log
    }

    /// The current watch failures, one line each (empty when every watch works).
    pub fn problems(&self, now: Instant) -> Vec<String> {
        let failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines: Vec<String> = failures
            .iter()
            .filter(|(_, f)| now.duration_since(f.at) < CURRENT)
            .map(|(controller, f)| format!("{controller} watch failing: {}", f.message))
            .collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_current_for_a_minute_and_logged_once_a_minute() {
        let health = WatchHealth::default();
        let t0 = Instant::now();
        assert!(health.failed("maasmachine", "403 forbidden".into(), t0));
        assert!(!health.failed(
            "maasmachine",
            "403 forbidden".into(),
            t0 + Duration::from_secs(20)
        ));
        assert_eq!(
            health.problems(t0 + Duration::from_secs(30)),
            vec!["maasmachine watch failing: 403 forbidden".to_string()]
        );
        assert!(health.failed("maasmachine", "403 forbidden".into(), t0 + CURRENT));
        assert!(health.problems(t0 + CURRENT * 3).is_empty());
        health.failed("maascluster", "gone".into(), t0 + CURRENT * 3);
        assert_eq!(
            health.problems(t0 + CURRENT * 3),
            vec!["maascluster watch failing: gone".to_string()]
        );
    }
}
