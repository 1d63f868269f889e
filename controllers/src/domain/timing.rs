//! How long to wait between looks at MAAS, and how often to retry a failed deployment.
//!
//! MAAS has no watch, so these numbers decide both how quickly a machine is noticed as deployed
//! and how many calls MAAS gets. They are pure so their shape is tested, not guessed.

use std::time::Duration;

use jiff::Timestamp;

/// First poll of a deploying machine: near the quickest real deployments.
pub const POLL_MIN: Duration = Duration::from_secs(10);
/// Longest gap between polls of a deploying machine.
pub const POLL_MAX: Duration = Duration::from_secs(60);
/// Poll gap for a machine that is being released, at first.
pub const RELEASE_POLL: Duration = Duration::from_secs(5);
/// Longest poll gap for a machine being released: a secure erase can take hours.
pub const RELEASE_POLL_MAX: Duration = Duration::from_secs(300);
/// How soon to try a release again that MAAS refused (403, 409).
pub const RELEASE_REFUSED_RETRY: Duration = Duration::from_secs(120);
/// Poll gap for a deployed machine whose power does not read `on` yet.
pub const POWER_ON_POLL: Duration = Duration::from_secs(10);
/// Power-ons of one deployed machine before the provider stops asking and says so.
pub const MAX_POWER_ONS: u32 = 3;
/// How long a machine whose power stays off after [`MAX_POWER_ONS`] waits before the next round.
pub const POWER_STAYS_OFF_RETRY: Duration = Duration::from_secs(600);

/// The wait after the `sent`-th power-on (1 for the first) before another is sent: doubling
/// from [`POWER_ON_POLL`].
pub fn power_on_backoff(sent: u32) -> Duration {
    POWER_ON_POLL.saturating_mul(1u32 << sent.saturating_sub(1).min(8))
}

/// A malformed bootstrap Secret is read again after this long (a fix to the Secret also wakes the
/// machine earlier through the Secret watch).
pub const INVALID_BOOTSTRAP_RETRY: Duration = Duration::from_secs(120);
/// How soon to try a deploy again that MAAS refused twice in a pass (409 after a fresh read).
pub const DEPLOY_REFUSED_RETRY: Duration = Duration::from_secs(300);
/// How often to look again when MAAS has no machine matching the constraints.
pub const NO_CAPACITY_RETRY: Duration = Duration::from_secs(60);
/// How many failed deployments (or Broken machines) a MaasMachine may go through before it stops
/// re-allocating and reports a terminal failure.
pub const MAX_DEPLOY_FAILURES: u32 = 3;
/// Delay before re-allocating after the first failed deployment; doubles after each further one.
pub const FAILURE_RETRY_BASE: Duration = Duration::from_secs(30);
/// Upper bound of the delay before re-allocating.
pub const FAILURE_RETRY_MAX: Duration = Duration::from_secs(600);

/// Gap before the next read of a deploying machine, given how long it has been deploying.
///
/// Half the time elapsed so far, within [`POLL_MIN`, `POLL_MAX`]: quick deployments are seen
/// quickly, slow ones are not polled more than once a minute.
pub fn deploy_poll_delay(deploying_for: Option<Duration>) -> Duration {
    deploying_for
        .map(|d| d / 2)
        .unwrap_or(POLL_MIN)
        .clamp(POLL_MIN, POLL_MAX)
}

/// Gap before the next read of a machine being released (or erasing its disks), given how long
/// it has been at it: a quick release is seen quickly, an hour-long erase is read every few
/// minutes, not every few seconds.
pub fn release_poll_delay(releasing_for: Option<Duration>) -> Duration {
    releasing_for
        .map(|d| d / 4)
        .unwrap_or(RELEASE_POLL)
        .clamp(RELEASE_POLL, RELEASE_POLL_MAX)
}

/// Delay before re-allocating after `failures` failed deployments (1 for the first).
pub fn failure_retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FAILURE_RETRY_BASE
        .saturating_mul(1u32 << doublings)
        .min(FAILURE_RETRY_MAX)
}

/// The failed-deployment record kept in an annotation, so the retry budget and its delay survive
/// restarts. Written as `<count>` or `<count>@<RFC 3339 time of the last failure>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DeployFailures {
    /// Failed deployments (and Broken machines) so far.
    pub count: u32,
    /// When the last one was noticed.
    pub last: Option<Timestamp>,
}

impl DeployFailures {
    /// Reads the annotation value; anything unreadable counts as no failures rather than
    /// blocking the machine forever.
    pub fn parse(value: &str) -> Self {
        let (count, last) = match value.split_once('@') {
            Some((count, at)) => (count, at.trim().parse::<Timestamp>().ok()),
            None => (value, None),
        };
        DeployFailures {
            count: count.trim().parse().unwrap_or(0),
            last,
        }
    }

    /// The annotation value.
    pub fn render(&self) -> String {
        match self.last {
            Some(at) => format!("{}@{at}", self.count),
            None => self.count.to_string(),
        }
    }

    /// One more failure, noticed at `now`.
    pub fn record(&self, now: Timestamp) -> Self {
        DeployFailures {
            count: self.count.saturating_add(1),
            last: Some(now),
        }
    }

    /// Whether the budget allows another allocation.
    pub fn budget_left(&self) -> bool {
        self.count < MAX_DEPLOY_FAILURES
    }

    /// How long to wait before the next allocation, or `None` when it may happen now.
    pub fn wait_before_retry(&self, now: Timestamp) -> Option<Duration> {
        let last = self.last?;
        if self.count == 0 {
            return None;
        }
        let due = last.checked_add(failure_retry_delay(self.count)).ok()?;
        let remaining = now.duration_until(due);
        let remaining = Duration::try_from(remaining).ok()?;
        (!remaining.is_zero()).then_some(remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_ons_back_off() {
        let waits: Vec<u64> = (1..=4).map(|n| power_on_backoff(n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80]);
    }

    #[test]
    fn release_polls_slow_down_to_minutes_for_long_erases() {
        assert_eq!(release_poll_delay(None), RELEASE_POLL);
        assert_eq!(
            release_poll_delay(Some(Duration::from_secs(8))),
            RELEASE_POLL
        );
        assert_eq!(
            release_poll_delay(Some(Duration::from_secs(120))),
            Duration::from_secs(30)
        );
        assert_eq!(
            release_poll_delay(Some(Duration::from_secs(3 * 3600))),
            RELEASE_POLL_MAX
        );
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn deploy_polls_start_near_ten_seconds_and_cap_at_a_minute() {
        let table = [
            (None, 10),
            (Some(0), 10),
            (Some(15), 10),
            (Some(30), 15),
            (Some(90), 45),
            (Some(120), 60),
            (Some(1800), 60),
        ];
        for (elapsed, want) in table {
            assert_eq!(
                deploy_poll_delay(elapsed.map(secs)),
                secs(want),
                "{elapsed:?}"
            );
        }
    }

    #[test]
    fn polls_of_a_slow_deployment_are_few() {
        // Simulate a 10-minute deployment: the number of reads stays small.
        let mut elapsed = Duration::ZERO;
        let mut reads = 0;
        while elapsed < secs(600) {
            elapsed += deploy_poll_delay(Some(elapsed));
            reads += 1;
        }
        // At the one-minute cap ten reads cover ten minutes; the ramp-up adds a handful.
        assert_eq!(reads, 15);
    }

    #[test]
    fn failure_delay_grows_and_caps() {
        let table = [
            (0, 30),
            (1, 30),
            (2, 60),
            (3, 120),
            (5, 480),
            (6, 600),
            (40, 600),
        ];
        for (failures, want) in table {
            assert_eq!(failure_retry_delay(failures), secs(want), "{failures}");
        }
    }

    #[test]
    fn failure_record_round_trips_and_tolerates_garbage() {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let rec = DeployFailures::default().record(now).record(now);
        assert_eq!(rec.count, 2);
        assert_eq!(DeployFailures::parse(&rec.render()), rec);
        assert_eq!(
            DeployFailures::parse("3"),
            DeployFailures {
                count: 3,
                last: None
            }
        );
        assert_eq!(DeployFailures::parse("x@y"), DeployFailures::default());
        assert_eq!(DeployFailures::parse(""), DeployFailures::default());
    }

    #[test]
    fn budget_and_wait() {
        let t0: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let one = DeployFailures::default().record(t0);
        assert!(one.budget_left());
        assert_eq!(one.wait_before_retry(t0), Some(secs(30)));
        let later = t0.checked_add(jiff::SignedDuration::from_secs(10)).unwrap();
        assert_eq!(one.wait_before_retry(later), Some(secs(20)));
        let due = t0.checked_add(jiff::SignedDuration::from_secs(30)).unwrap();
        assert_eq!(one.wait_before_retry(due), None);
        assert_eq!(DeployFailures::default().wait_before_retry(t0), None);
        let spent = DeployFailures {
            count: MAX_DEPLOY_FAILURES,
            last: Some(t0),
        };
        assert!(!spent.budget_left());
    }
}
