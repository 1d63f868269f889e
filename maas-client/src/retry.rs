//! The retry decision: how long to wait before the next attempt, or whether to stop.

use std::time::Duration;

use backon::ExponentialBuilder;

use crate::config::RetryConfig;
use crate::error::MaasError;

/// The backoff used when MAAS gives no `Retry-After`: exponential with jitter, bounded by the
/// configured number of attempts.
pub(crate) fn backoff(config: &RetryConfig) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(config.min_delay)
        .with_max_delay(config.max_delay)
        .with_max_times(config.max_attempts.saturating_sub(1) as usize)
        .with_jitter()
}

/// Chooses the delay before the next attempt after `error`.
///
/// `backoff_delay` is what the backoff schedule offers (`None` once the attempts are used up),
/// `slept` the delay already spent in this call. MAAS's `Retry-After` wins over the schedule;
/// either way the sum of delays never passes `max_total_delay`, and non-retryable errors never
/// wait.
pub fn next_delay(
    error: &MaasError,
    backoff_delay: Option<Duration>,
    slept: Duration,
    config: &RetryConfig,
) -> Option<Duration> {
    if !error.is_retryable() {
        return None;
    }
    let scheduled = backoff_delay?;
    let delay = error.retry_after().unwrap_or(scheduled);
    (slept.saturating_add(delay) <= config.max_total_delay).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Operation;

    fn retryable(after: Option<u64>) -> MaasError {
        MaasError::Retryable {
            op: Operation::Allocate,
            reason: "busy".into(),
            retry_after: after.map(Duration::from_secs),
        }
    }

    fn config() -> RetryConfig {
        RetryConfig {
            max_attempts: 4,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_total_delay: Duration::from_secs(20),
        }
    }

    #[test]
    fn retry_after_wins_over_the_schedule() {
        let delay = next_delay(
            &retryable(Some(5)),
            Some(Duration::from_millis(100)),
            Duration::ZERO,
            &config(),
        );
        assert_eq!(delay, Some(Duration::from_secs(5)));
    }

    #[test]
    fn schedule_applies_without_retry_after() {
        let delay = next_delay(
            &retryable(None),
            Some(Duration::from_millis(300)),
            Duration::ZERO,
            &config(),
        );
        assert_eq!(delay, Some(Duration::from_millis(300)));
    }

    #[test]
    fn stops_when_attempts_are_used_up() {
        assert_eq!(
            next_delay(&retryable(Some(1)), None, Duration::ZERO, &config()),
            None
        );
    }

    #[test]
    fn stops_when_the_total_delay_would_be_passed() {
        assert_eq!(
            next_delay(
                &retryable(Some(10)),
                Some(Duration::from_millis(100)),
                Duration::from_secs(11),
                &config()
            ),
            None
        );
        assert_eq!(
            next_delay(
                &retryable(Some(10)),
                Some(Duration::from_millis(100)),
                Duration::from_secs(10),
                &config()
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            next_delay(
                &retryable(Some(3600)),
                Some(Duration::from_millis(1)),
                Duration::ZERO,
                &config()
            ),
            None
        );
    }

    #[test]
    fn never_waits_for_other_errors() {
        let conflict = MaasError::Conflict {
            op: Operation::Allocate,
            message: "none".into(),
        };
        assert_eq!(
            next_delay(
                &conflict,
                Some(Duration::from_secs(1)),
                Duration::ZERO,
                &config()
            ),
            None
        );
    }

    #[test]
    fn schedule_gives_max_attempts_minus_one_delays() {
        use backon::BackoffBuilder as _;
        assert_eq!(backoff(&config()).build().count(), 3);
        assert_eq!(backoff(&RetryConfig::none()).build().count(), 0);
    }
}
