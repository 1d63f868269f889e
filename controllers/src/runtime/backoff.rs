//! Per-object error backoff: each failed pass in a row doubles the wait before the next one, up
//! to a cap, and until then watch events for the object start no pass. Without it an error whose
//! report changes the object (a status write) wakes the object again at once, and a MAAS that is
//! down or refuses our key is asked about once a second per object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest wait between two failed passes of one object.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// The failures in a row of one object, and when its next pass may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Streak {
    failures: u32,
    until: Instant,
    /// The object's generation and deletion state when it last failed: a change to the spec or a
    /// deletion ends the hold at once.
    version: (Option<i64>, bool),
}

/// The error streaks of a controller's objects, by uid.
#[derive(Debug, Default)]
pub struct Backoffs {
    streaks: Mutex<HashMap<String, Streak>>,
}

/// The wait after the `failures`-th failure in a row (1 for the first): `base` doubled for each
/// further one, within `cap`; never shorter than `base`, which carries MAAS's `Retry-After`.
pub fn backoff_delay(base: Duration, failures: u32, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1u32 << doublings).min(cap.max(base))
}

impl Backoffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Streak>> {
        self.streaks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the object must still wait before a pass, if it is held: it failed, nothing in
    /// its spec or deletion state changed since, and its wait has not passed.
    pub fn hold(&self, uid: &str, version: (Option<i64>, bool), now: Instant) -> Option<Duration> {
        self.lock()
            .get(uid)
            .filter(|s| s.version == version && s.until > now)
            .map(|s| s.until - now)
    }

    /// Records a failed pass; returns the wait before the next one.
    pub fn failed(
        &self,
        uid: &str,
        version: (Option<i64>, bool),
        base: Duration,
        now: Instant,
    ) -> Duration {
        let mut streaks = self.lock();
        let failures = streaks
            .get(uid)
            .filter(|s| s.version == version)
            .map_or(1, |s| s.failures.saturating_add(1));
        let delay = backoff_delay(base, failures, BACKOFF_CAP);
        streaks.insert(
            uid.to_string(),
            Streak {
                failures,
                until: now + delay,
                version,
            },
        );
        delay
    }

    /// The wait the last failure of the object set, for the requeue.
    pub fn delay(&self, uid: &str, now: Instant) -> Option<Duration> {
        self.lock()
            .get(uid)
            .map(|s| s.until.saturating_duration_since(now))
    }

    /// A pass succeeded: the streak is over.
    pub fn succeeded(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Something the object reads outside its own spec changed (its credentials Secret came or
    /// changed): the failure may be gone, so the next pass starts at once.
    pub fn release(&self, uid: &str) {
        self.succeeded(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(15);

    #[test]
    fn waits_double_up_to_the_cap() {
        let waits: Vec<u64> = (1..=7)
            .map(|n| backoff_delay(BASE, n, BACKOFF_CAP).as_secs())
            .collect();
        assert_eq!(waits, [15, 30, 60, 120, 240, 300, 300]);
        assert_eq!(
            backoff_delay(Duration::from_secs(600), 1, BACKOFF_CAP),
            Duration::from_secs(600),
            "MAAS's Retry-After is never cut short"
        );
    }

    #[test]
    fn a_failing_object_is_held_until_its_wait_passes_or_it_changes() {
        let b = Backoffs::default();
        let t0 = Instant::now();
        let v1 = (Some(1), false);
        assert_eq!(b.hold("u", v1, t0), None);
        assert_eq!(b.failed("u", v1, BASE, t0), BASE);
        assert_eq!(
            b.hold("u", v1, t0 + Duration::from_secs(5)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(b.hold("u", v1, t0 + BASE), None, "the wait has passed");
        assert_eq!(b.hold("u", (Some(2), false), t0), None, "the spec changed");
        assert_eq!(
            b.hold("u", (Some(1), true), t0),
            None,
            "it is being deleted"
        );
        assert_eq!(
            b.failed("u", v1, BASE, t0 + BASE),
            BASE * 2,
            "second in a row"
        );
        assert_eq!(
            b.failed("u", (Some(2), false), BASE, t0),
            BASE,
            "a new spec starts over"
        );
        b.succeeded("u");
        assert_eq!(b.hold("u", (Some(2), false), t0), None);
        assert_eq!(b.failed("u", (Some(2), false), BASE, t0), BASE);
    }
}
