//! Fault injection: what to break (configuration, settable at start and at run time) and the
//! decision, per request, of whether to break it. Decisions are pure given the random draw, and a
//! deterministic mode (`fail_next`, `reset_next`, `fail_next_deploys`) needs no randomness at all.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Every fault the simulator can inject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Per-operation faults.
    pub rules: Vec<FaultRule>,
    /// Probability (0..=1) that a deployment ends in `Failed deployment`.
    pub deploy_failure_rate: f64,
    /// The next K deployments to start end in `Failed deployment` (deterministic).
    pub fail_next_deploys: u32,
    /// Machines (system id or host name) that go `Broken`, after a delay.
    pub break_machines: Vec<BreakMachine>,
    /// Seed of the random draws, for reproducible runs; random when absent.
    pub seed: Option<u64>,
}

/// A fault on one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The operation: `<handler>:<action>` as counted in `/_sim/requests` (e.g.
    /// `machines:allocate`, `machine:deploy`, `machine:read`), a bare action name (`deploy`), or
    /// `*` for every operation.
    pub op: String,
    /// Probability (0..=1) of answering with `status` instead of doing the operation.
    #[serde(default)]
    pub error_rate: f64,
    /// Answer the next K calls with `status` (deterministic; counts down).
    #[serde(default)]
    pub fail_next: u32,
    /// The HTTP status of injected errors.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Seconds for a `Retry-After` header on injected errors.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Body of injected errors; a MAAS-like text by default.
    #[serde(default)]
    pub body: Option<String>,
    /// Milliseconds added before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability (0..=1) of closing the connection without an answer.
    #[serde(default)]
    pub reset_rate: f64,
    /// Close the connection on the next K calls (deterministic; counts down).
    #[serde(default)]
    pub reset_next: u32,
    /// Apply the next K calls, then close the connection without the answer: MAAS did it, the
    /// caller never hears so (deterministic; counts down).
    #[serde(default)]
    pub lose_next: u32,
    /// Probability (0..=1) of applying a call and then closing the connection without the
    /// answer.
    #[serde(default)]
    pub lose_rate: f64,
}

/// A machine that breaks on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakMachine {
    /// System id or host name.
    pub machine: String,
    /// Seconds after the fault is set; 0 breaks it at once.
    #[serde(default)]
    pub after_seconds: f64,
}

fn default_status() -> u16 {
    503
}

/// What to do with one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultDecision {
    /// Wait this long first.
    pub latency: Duration,
    /// Then close the connection without answering.
    pub reset: bool,
    /// Apply the operation, then close the connection without answering.
    pub lose_answer: bool,
    /// Or answer with this error instead.
    pub error: Option<InjectedError>,
}

/// An injected error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedError {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
    /// Body text.
    pub body: String,
}

impl FaultRule {
    /// A rule for `op` that injects nothing yet: set the fields of the fault on top of it.
    pub fn on(op: &str) -> Self {
        FaultRule {
            op: op.to_string(),
            error_rate: 0.0,
            fail_next: 0,
            status: default_status(),
            retry_after: None,
            body: None,
            latency_ms: 0,
            reset_rate: 0.0,
            reset_next: 0,
            lose_next: 0,
            lose_rate: 0.0,
        }
    }

    /// Whether this rule covers the operation label `op` (`machine:deploy`).
    pub fn matches(&self, op: &str) -> bool {
        self.op == "*" || self.op == op || op.rsplit(':').next() == Some(self.op.as_str())
    }
}

/// The live fault configuration plus its random source and counters.
#[derive(Debug)]
pub struct FaultState {
    config: FaultConfig,
    rng: StdRng,
}

impl FaultState {
    /// Starts from a configuration.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Self { config, rng }
    }

    /// The configuration now in force (counters as they stand).
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the configuration.
    pub fn replace(&mut self, config: FaultConfig) {
        *self = Self::new(config);
    }

    /// Decides the fate of one request of operation `op`, consuming deterministic counters.
    pub fn decide(&mut self, op: &str) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for rule in self.config.rules.iter_mut().filter(|r| r.matches(op)) {
            decision.latency += Duration::from_millis(rule.latency_ms);
            if decision.reset || decision.lose_answer || decision.error.is_some() {
                continue;
            }
            if rule.lose_next > 0 {
                rule.lose_next -= 1;
                decision.lose_answer = true;
                continue;
            }
            if rule.lose_rate > 0.0 && self.rng.random_bool(rule.lose_rate.clamp(0.0, 1.0)) {
                decision.lose_answer = true;
                continue;
            }
            if rule.reset_next > 0 {
                rule.reset_next -= 1;
                decision.reset = true;
                continue;
            }
            if rule.fail_next > 0 {
                rule.fail_next -= 1;
                decision.error = Some(injected(rule));
                continue;
            }
            if rule.reset_rate > 0.0 && self.rng.random_bool(rule.reset_rate.clamp(0.0, 1.0)) {
                decision.reset = true;
                continue;
            }
            if rule.error_rate > 0.0 && self.rng.random_bool(rule.error_rate.clamp(0.0, 1.0)) {
                decision.error = Some(injected(rule));
            }
        }
        decision
    }

    /// Decides whether the deployment starting now will fail.
    pub fn deploy_fails(&mut self) -> bool {
        if self.config.fail_next_deploys > 0 {
            self.config.fail_next_deploys -= 1;
            return true;
        }
        let rate = self.config.deploy_failure_rate.clamp(0.0, 1.0);
        rate > 0.0 && self.rng.random_bool(rate)
    }

    /// Takes the machines to break (the world schedules them).
    pub fn take_break_machines(&mut self) -> Vec<BreakMachine> {
        std::mem::take(&mut self.config.break_machines)
    }
}

fn injected(rule: &FaultRule) -> InjectedError {
    let body = rule.body.clone().unwrap_or_else(|| match rule.status {
        503 => "Service Unavailable: MAAS is busy, retry later.".to_string(),
        409 => "Conflict: the database is busy, retry later.".to_string(),
        500 => "Internal server error.".to_string(),
        code => format!("Injected error {code}."),
    });
    InjectedError {
        status: rule.status,
        retry_after: rule.retry_after,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(op: &str) -> FaultRule {
        FaultRule::on(op)
    }

    #[test]
    fn fail_next_counts_down_and_only_for_its_op() {
        let mut r = rule("deploy");
        r.fail_next = 2;
        r.status = 409;
        r.retry_after = Some(5);
        let mut state = FaultState::new(FaultConfig {
            rules: vec![r],
            seed: Some(1),
            ..Default::default()
        });
        assert_eq!(state.decide("machine:read"), FaultDecision::default());
        let first = state.decide("machine:deploy");
        assert_eq!(
            first.error.as_ref().map(|e| (e.status, e.retry_after)),
            Some((409, Some(5)))
        );
        assert!(state.decide("machine:deploy").error.is_some());
        assert_eq!(state.decide("machine:deploy"), FaultDecision::default());
    }

    #[test]
    fn lost_answers_count_down_before_other_faults() {
        let mut a = rule("machines:allocate");
        a.lose_next = 1;
        a.fail_next = 1;
        let mut state = FaultState::new(FaultConfig {
            rules: vec![a],
            ..Default::default()
        });
        let first = state.decide("machines:allocate");
        assert!(first.lose_answer && first.error.is_none());
        let second = state.decide("machines:allocate");
        assert!(!second.lose_answer && second.error.is_some());
        assert_eq!(state.decide("machines:allocate"), FaultDecision::default());
    }

    #[test]
    fn reset_next_and_latency_combine() {
        let mut a = rule("*");
        a.latency_ms = 20;
        let mut b = rule("machines:allocate");
        b.reset_next = 1;
        let mut state = FaultState::new(FaultConfig {
            rules: vec![a, b],
            ..Default::default()
        });
        let d = state.decide("machines:allocate");
        assert!(d.reset);
        assert_eq!(d.latency, Duration::from_millis(20));
        let d = state.decide("machines:allocate");
        assert!(!d.reset);
    }

    #[test]
    fn seeded_rates_are_reproducible() {
        let mut r = rule("read");
        r.error_rate = 0.5;
        let config = FaultConfig {
            rules: vec![r],
            seed: Some(42),
            ..Default::default()
        };
        let draw = |config: &FaultConfig| {
            let mut s = FaultState::new(config.clone());
            (0..64)
                .map(|_| s.decide("machine:read").error.is_some())
                .collect::<Vec<_>>()
        };
        let a = draw(&config);
        assert_eq!(a, draw(&config));
        let failures = a.iter().filter(|f| **f).count();
        assert!(failures > 0 && failures < 64);
    }

    #[test]
    fn deploy_failures_deterministic_then_rate() {
        let mut state = FaultState::new(FaultConfig {
            fail_next_deploys: 1,
            seed: Some(3),
            ..Default::default()
        });
        assert!(state.deploy_fails());
        assert!(!state.deploy_fails());
    }
}
