//! Fault injection: what to break (configuration, settable at start and at run time) and the
//! decision, per request, of whether to break it. Decisions are pure given the random draw, and a
//! deterministic mode (the `*_next` counters, `fail_next_deploys`) needs no randomness at all.
//!
//! Two families: faults before the operation (an error or a reset instead of doing it) and
//! faults after it (MAAS did it and committed, but the caller never learns so: the connection
//! is reset, the answer comes only after the caller's timeout, or a 5xx comes instead of it).

use std::collections::{BTreeMap, BTreeSet};
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
    /// Machines (system id or host name) whose every deployment ends in `Failed deployment`,
    /// as a machine with broken hardware would.
    pub fail_deploy_machines: Vec<String>,
    /// Machines (system id or host name) that go `Broken`, after a delay.
    pub break_machines: Vec<BreakMachine>,
    /// The next K deployments to start (that would not fail) end in `Broken` halfway through,
    /// as a machine whose hardware gives out during installation (deterministic).
    pub break_next_deploys: u32,
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
    /// Up to this many more milliseconds, drawn uniformly per request.
    #[serde(default)]
    pub latency_jitter_ms: u64,
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
    /// Apply the next K calls, then hold the answer for `hold_ms` before sending it: by then
    /// the caller has given up (deterministic; counts down).
    #[serde(default)]
    pub hold_next: u32,
    /// Probability (0..=1) of applying a call and then holding its answer for `hold_ms`.
    #[serde(default)]
    pub hold_rate: f64,
    /// Milliseconds a held answer waits.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// Apply the next K calls, then answer with `status` (a 5xx after commit) instead of the
    /// result (deterministic; counts down).
    #[serde(default)]
    pub fail_after_next: u32,
    /// Probability (0..=1) of applying a call and then answering with `status`.
    #[serde(default)]
    pub fail_after_rate: f64,
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

/// Longer than the timeouts MAAS clients use for one call.
fn default_hold_ms() -> u64 {
    60_000
}

/// What to do with one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultDecision {
    /// Wait this long first.
    pub latency: Duration,
    /// Then close the connection without applying the operation or answering.
    pub reset: bool,
    /// Or answer with this error instead of applying the operation.
    pub error: Option<InjectedError>,
    /// Or apply the operation, then do this instead of answering normally.
    pub after: Option<AfterApply>,
}

impl FaultDecision {
    /// Whether some fault other than latency was chosen (one per request).
    fn decided(&self) -> bool {
        self.reset || self.error.is_some() || self.after.is_some()
    }

    /// The kinds of fault this decision injects, as [`FaultState::injected`] counts them.
    fn kinds(&self) -> Vec<String> {
        let mut kinds = Vec::new();
        if !self.latency.is_zero() {
            kinds.push("latency".to_string());
        }
        if self.reset {
            kinds.push("reset".to_string());
        }
        if let Some(e) = &self.error {
            kinds.push(format!("error {}", e.status));
        }
        match &self.after {
            Some(AfterApply::Lose) => kinds.push("lost".to_string()),
            Some(AfterApply::Hold(_)) => kinds.push("held".to_string()),
            Some(AfterApply::Fail(e)) => kinds.push(format!("error {} after apply", e.status)),
            None => {}
        }
        kinds
    }
}

/// What becomes of the answer to an operation that was applied and committed.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterApply {
    /// Close the connection without the answer.
    Lose,
    /// Send the answer only after this long (the caller has given up by then).
    Hold(Duration),
    /// Answer with this error instead of the result.
    Fail(InjectedError),
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
            latency_jitter_ms: 0,
            reset_rate: 0.0,
            reset_next: 0,
            lose_next: 0,
            lose_rate: 0.0,
            hold_next: 0,
            hold_rate: 0.0,
            hold_ms: default_hold_ms(),
            fail_after_next: 0,
            fail_after_rate: 0.0,
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
    /// System ids of `fail_deploy_machines`, resolved against the world.
    failing_machines: BTreeSet<String>,
    /// Faults injected so far, by kind.
    injected: BTreeMap<String, u64>,
}

impl FaultState {
    /// Starts from a configuration.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Self {
            config,
            rng,
            failing_machines: BTreeSet::new(),
            injected: BTreeMap::new(),
        }
    }

    /// Sets the system ids whose deployments always fail (`fail_deploy_machines` resolved).
    pub fn set_failing_machines(&mut self, system_ids: BTreeSet<String>) {
        self.failing_machines = system_ids;
    }

    /// The configuration now in force (counters as they stand).
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Faults injected since the configuration was last set, by kind: `latency`, `reset`,
    /// `error <status>`, `lost`, `held`, `error <status> after apply`, `failed deployment`,
    /// `broken deployment`.
    pub fn injected(&self) -> &BTreeMap<String, u64> {
        &self.injected
    }

    fn count(&mut self, kind: String) {
        *self.injected.entry(kind).or_default() += 1;
    }

    /// Replaces the configuration.
    pub fn replace(&mut self, config: FaultConfig) {
        *self = Self::new(config);
    }

    /// Decides the fate of one request of operation `op`, consuming deterministic counters.
    /// Latencies add up; of the other faults the first rule that chooses one wins, with
    /// counters before rates and faults after the operation before faults instead of it.
    pub fn decide(&mut self, op: &str) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for rule in self.config.rules.iter_mut().filter(|r| r.matches(op)) {
            let jitter = match rule.latency_jitter_ms {
                0 => 0,
                max => self.rng.random_range(0..=max),
            };
            decision.latency += Duration::from_millis(rule.latency_ms.saturating_add(jitter));
            if decision.decided() {
                continue;
            }
            decision.after = after_apply(rule, &mut self.rng);
            if decision.after.is_none() {
                before_apply(rule, &mut self.rng, &mut decision);
            }
        }
        for kind in decision.kinds() {
            self.count(kind);
        }
        decision
    }

    /// Decides whether the deployment of `system_id` starting now will fail. A machine that
    /// always fails leaves the counters and the random draws to the other machines.
    pub fn deploy_fails(&mut self, system_id: &str) -> bool {
        let fails = self.failing_machines.contains(system_id) || {
            let counted = count_down(&mut self.config.fail_next_deploys);
            let rate = self.config.deploy_failure_rate.clamp(0.0, 1.0);
            counted || (rate > 0.0 && self.rng.random_bool(rate))
        };
        if fails {
            self.count("failed deployment".into());
        }
        fails
    }

    /// Decides whether the deployment starting now breaks halfway, consuming the counter.
    pub fn deploy_breaks(&mut self) -> bool {
        let breaks = count_down(&mut self.config.break_next_deploys);
        if breaks {
            self.count("broken deployment".into());
        }
        breaks
    }

    /// Takes the machines to break (the world schedules them).
    pub fn take_break_machines(&mut self) -> Vec<BreakMachine> {
        std::mem::take(&mut self.config.break_machines)
    }
}

fn draw(rng: &mut StdRng, rate: f64) -> bool {
    rate > 0.0 && rng.random_bool(rate.clamp(0.0, 1.0))
}

fn count_down(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// The fault, if any, this rule puts on the answer of an applied operation.
fn after_apply(rule: &mut FaultRule, rng: &mut StdRng) -> Option<AfterApply> {
    let hold = AfterApply::Hold(Duration::from_millis(rule.hold_ms));
    if count_down(&mut rule.lose_next) {
        Some(AfterApply::Lose)
    } else if count_down(&mut rule.hold_next) {
        Some(hold)
    } else if count_down(&mut rule.fail_after_next) {
        Some(AfterApply::Fail(injected(rule)))
    } else if draw(rng, rule.lose_rate) {
        Some(AfterApply::Lose)
    } else if draw(rng, rule.hold_rate) {
        Some(hold)
    } else if draw(rng, rule.fail_after_rate) {
        Some(AfterApply::Fail(injected(rule)))
    } else {
        None
    }
}

/// The fault, if any, this rule puts in place of the operation.
fn before_apply(rule: &mut FaultRule, rng: &mut StdRng, decision: &mut FaultDecision) {
    if count_down(&mut rule.reset_next) {
        decision.reset = true;
    } else if count_down(&mut rule.fail_next) {
        decision.error = Some(injected(rule));
    } else if draw(rng, rule.reset_rate) {
        decision.reset = true;
    } else if draw(rng, rule.error_rate) {
        decision.error = Some(injected(rule));
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
        assert!(first.after == Some(AfterApply::Lose) && first.error.is_none());
        let second = state.decide("machines:allocate");
        assert!(second.after.is_none() && second.error.is_some());
        assert_eq!(state.decide("machines:allocate"), FaultDecision::default());
    }

    #[test]
    fn answers_held_or_failed_after_apply_count_down_in_order() {
        let mut a = rule("deploy");
        a.hold_next = 1;
        a.hold_ms = 1500;
        a.fail_after_next = 1;
        a.status = 502;
        a.fail_next = 1;
        let mut state = FaultState::new(FaultConfig {
            rules: vec![a],
            ..Default::default()
        });
        assert_eq!(
            state.decide("machine:deploy").after,
            Some(AfterApply::Hold(Duration::from_millis(1500)))
        );
        let failed = state.decide("machine:deploy");
        assert!(failed.error.is_none());
        assert!(matches!(failed.after, Some(AfterApply::Fail(ref e)) if e.status == 502));
        let before = state.decide("machine:deploy");
        assert!(before.after.is_none() && before.error.is_some());
        assert_eq!(state.decide("machine:deploy"), FaultDecision::default());
        assert_eq!(state.decide("machine:read"), FaultDecision::default());
    }

    #[test]
    fn after_apply_rates_draw_from_the_seed() {
        let mut r = rule("*");
        r.hold_rate = 0.3;
        r.fail_after_rate = 0.3;
        let config = FaultConfig {
            rules: vec![r],
            seed: Some(9),
            ..Default::default()
        };
        let draw = |config: &FaultConfig| {
            let mut s = FaultState::new(config.clone());
            (0..64)
                .map(|_| s.decide("machines:allocate").after)
                .collect::<Vec<_>>()
        };
        let a = draw(&config);
        assert_eq!(a, draw(&config));
        let held = a
            .iter()
            .filter(|d| matches!(d, Some(AfterApply::Hold(_))))
            .count();
        let failed = a
            .iter()
            .filter(|d| matches!(d, Some(AfterApply::Fail(_))))
            .count();
        assert!(
            held > 0 && failed > 0 && held + failed < 64,
            "{held} {failed}"
        );
        // A rule written without the new fields holds for the default time.
        let parsed: FaultRule =
            serde_json::from_str(r#"{"op": "deploy", "hold_next": 1}"#).unwrap();
        assert_eq!(parsed.hold_ms, default_hold_ms());
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
    fn jitter_adds_a_uniform_draw_within_its_bound() {
        let mut r = rule("*");
        r.latency_ms = 100;
        r.latency_jitter_ms = 50;
        let mut state = FaultState::new(FaultConfig {
            rules: vec![r],
            seed: Some(7),
            ..Default::default()
        });
        let draws: Vec<Duration> = (0..200)
            .map(|_| state.decide("machine:read").latency)
            .collect();
        assert!(draws.iter().all(|d| (100..=150).contains(&d.as_millis())));
        let distinct: BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 10, "a spread, not one value: {distinct:?}");
    }

    #[test]
    fn break_next_deploys_counts_down() {
        let mut state = FaultState::new(FaultConfig {
            break_next_deploys: 1,
            ..Default::default()
        });
        assert!(state.deploy_breaks());
        assert!(!state.deploy_breaks());
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
        assert!(state.deploy_fails("a"));
        assert!(!state.deploy_fails("a"));
    }

    #[test]
    fn failing_machines_fail_every_time_without_using_the_counter() {
        let mut state = FaultState::new(FaultConfig {
            fail_next_deploys: 1,
            ..Default::default()
        });
        state.set_failing_machines(["bad".to_string()].into());
        assert!(state.deploy_fails("bad"));
        assert!(state.deploy_fails("bad"));
        assert!(state.deploy_fails("good"));
        assert!(!state.deploy_fails("good"));
        assert!(state.deploy_fails("bad"));
    }
}
