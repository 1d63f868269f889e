//! Prometheus metrics with the names CAPI's controller-runtime dashboards already query
//! (`controller_runtime_*`, `workqueue_*`, `rest_client_requests_total`,
//! `leader_election_master_status`, `process_*`), plus MAAS request counts and latencies fed by
//! the client's request observer. `config/grafana/capmaas.json` is a dashboard over them.

pub mod process;
pub mod rest_client;
pub mod workqueue;

use std::sync::Arc;
use std::time::{Duration, Instant};

use maas_client::{Operation, RequestObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `maasmachine` or `maascluster`.
    pub controller: String,
    /// `success`, `requeue` or `error`.
    pub result: String,
}

/// Labels carrying only the controller name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `maasmachine` or `maascluster`.
    pub controller: String,
}

/// The `name` label of the workqueue and leader election families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabels {
    /// The controller, or the Lease.
    pub name: String,
}

impl NameLabels {
    fn of(name: &str) -> Self {
        NameLabels {
            name: name.to_string(),
        }
    }
}

/// Labels of `rest_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestLabels {
    /// HTTP status code, or `<error>` without an answer.
    pub code: String,
    /// HTTP method.
    pub method: String,
    /// The API server's `host:port`.
    pub host: String,
}

/// Labels of `capmaas_maas_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// The MAAS operation.
    pub op: String,
}

/// Labels of `capmaas_maas_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MaasRequestLabels {
    /// The MAAS operation (`allocate`, `deploy`, ...).
    pub op: String,
    /// HTTP status code or transport outcome.
    pub code: String,
}

/// How a reconcile ended, for the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done; only the resync brings it back.
    Success,
    /// Asked to be looked at again after a delay.
    Requeue,
    /// Failed.
    Error,
}

impl ReconcileResult {
    fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Requeue => "requeue",
            ReconcileResult::Error => "error",
        }
    }
}

/// Every metric of the manager, behind one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    maas_requests: Family<MaasRequestLabels, Counter>,
    maas_latency: Family<OpLabels, Histogram, fn() -> Histogram>,
    rest_requests: Family<RestLabels, Counter>,
    leader: Family<NameLabels, Gauge>,
    /// The `workqueue_*` families.
    pub workqueue: workqueue::Workqueue,
    process: process::ProcessMetrics,
}

/// Registers `metric` in `registry` under `name` and hands it back (families are shared
/// handles: the registered clone and the returned one count together).
pub(crate) fn registered<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn maas_latency_histogram() -> Histogram {
    // 5 ms to about 80 s: MAAS answers reads in milliseconds and allocations in seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers all families.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let reconcile_time = Family::new_with_constructor(reconcile_histogram as fn() -> Histogram);
        let maas_latency =
            Family::new_with_constructor(maas_latency_histogram as fn() -> Histogram);
        Metrics {
            reconcile_total: registered(
                &mut r,
                "controller_runtime_reconcile",
                "Total number of reconciliations per controller",
                Family::default(),
            ),
            reconcile_errors: registered(
                &mut r,
                "controller_runtime_reconcile_errors",
                "Total number of reconciliation errors per controller",
                Family::default(),
            ),
            reconcile_time: registered(
                &mut r,
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                reconcile_time,
            ),
            maas_requests: registered(
                &mut r,
                "capmaas_maas_requests",
                "MAAS API requests by operation and outcome",
                Family::default(),
            ),
            maas_latency: registered(
                &mut r,
                "capmaas_maas_request_duration_seconds",
                "MAAS API request latency by operation, from sending to the whole answer",
                maas_latency,
            ),
            rest_requests: registered(
                &mut r,
                "rest_client_requests",
                "Kubernetes API requests by status code, method and host",
                Family::default(),
            ),
            leader: registered(
                &mut r,
                "leader_election_master_status",
                "1 while this replica holds the leader Lease, 0 otherwise",
                Family::default(),
            ),
            workqueue: workqueue::Workqueue::register(&mut r),
            process: process::ProcessMetrics::register(&mut r),
            registry: r,
        }
    }

    /// Records one Kubernetes API request.
    pub fn rest_request(&self, code: &str, method: &str, host: &str) {
        self.rest_requests
            .get_or_create(&RestLabels {
                code: code.to_string(),
                method: method.to_string(),
                host: host.to_string(),
            })
            .inc();
    }

    /// Whether this replica holds the Lease `name`.
    pub fn leading(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&NameLabels::of(name))
            .set(i64::from(leading));
    }

    /// Records one reconcile of `controller`.
    pub fn reconciled(&self, controller: &str, result: ReconcileResult, took: Duration) {
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: controller.to_string(),
                result: result.as_str().to_string(),
            })
            .inc();
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        if result == ReconcileResult::Error {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
        self.reconcile_time
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Records one MAAS request attempt.
    pub fn maas_request(&self, op: Operation, code: &str) {
        self.maas_requests
            .get_or_create(&MaasRequestLabels {
                op: op.as_str().to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Records how long one MAAS request took.
    pub fn maas_latency(&self, op: Operation, took: Duration) {
        self.maas_latency
            .get_or_create(&OpLabels {
                op: op.as_str().to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text exposition, with the gauges read at scrape time brought up to date first.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        self.workqueue.refresh(Instant::now());
        self.process.refresh();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Feeds MAAS client request outcomes into [`Metrics`].
#[derive(Clone, Debug)]
pub struct MaasRequestCounter(pub Arc<Metrics>);

impl RequestObserver for MaasRequestCounter {
    fn observe(&self, op: Operation, outcome: &str) {
        self.0.maas_request(op, outcome);
    }

    fn observe_timed(&self, op: Operation, outcome: &str, took: Duration) {
        self.0.maas_request(op, outcome);
        self.0.maas_latency(op, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_controller_runtime_names_and_maas_counts() {
        let m = Arc::new(Metrics::new());
        m.reconciled(
            "maasmachine",
            ReconcileResult::Success,
            Duration::from_millis(20),
        );
        m.reconciled(
            "maasmachine",
            ReconcileResult::Error,
            Duration::from_millis(20),
        );
        m.reconciled(
            "maasmachine",
            ReconcileResult::Error,
            Duration::from_millis(20),
        );
        let counter = MaasRequestCounter(m.clone());
        counter.observe(Operation::Allocate, "200");
        counter.observe(Operation::Allocate, "200");
        counter.observe(Operation::Deploy, "409");
        let text = m.encode().unwrap();
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            )
        };
        has(r#"controller_runtime_reconcile_total{controller="maasmachine",result="success"} 1"#);
        has(r#"controller_runtime_reconcile_total{controller="maasmachine",result="error"} 2"#);
        has(r#"controller_runtime_reconcile_errors_total{controller="maasmachine"} 2"#);
        has(r#"controller_runtime_reconcile_time_seconds_count{controller="maasmachine"} 3"#);
        has(&format!(
            r#"capmaas_maas_requests_total{{op="{}",code="200"}} 2"#,
            Operation::Allocate.as_str()
        ));
        has(&format!(
            r#"capmaas_maas_requests_total{{op="{}",code="409"}} 1"#,
            Operation::Deploy.as_str()
        ));
    }

    /// A registry with a sample in every family, and the names of the series it exposes.
    fn exposed_names() -> std::collections::BTreeSet<String> {
        let m = Metrics::new();
        m.reconciled(
            "maasmachine",
            ReconcileResult::Error,
            Duration::from_millis(5),
        );
        m.maas_request(Operation::Allocate, "200");
        m.maas_latency(Operation::Allocate, Duration::from_millis(30));
        m.rest_request("200", "GET", "127.0.0.1:6443");
        m.leading("capmaas", true);
        let done = m.workqueue.started("maasmachine", Instant::now());
        m.workqueue
            .finished("maasmachine", done, Duration::from_millis(5), true);
        // One pass still running, for the gauges of unfinished work.
        m.workqueue.started("maasmachine", Instant::now());
        let text = m.encode().unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_family_a_capi_dashboard_reads_is_exposed() {
        let names = exposed_names();
        for name in [
            "controller_runtime_reconcile_total",
            "workqueue_adds_total",
            "workqueue_retries_total",
            "workqueue_work_duration_seconds_bucket",
            "workqueue_unfinished_work_seconds",
            "workqueue_longest_running_processor_seconds",
            "rest_client_requests_total",
            "leader_election_master_status",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
            "capmaas_maas_request_duration_seconds_bucket",
        ] {
            assert!(names.contains(name), "{name} not in {names:?}");
        }
    }

    #[test]
    fn the_workqueue_gauges_follow_running_passes() {
        let m = Metrics::new();
        let t0 = Instant::now();
        let pass = m.workqueue.started("maascluster", t0);
        m.workqueue.refresh(t0 + Duration::from_secs(3));
        let text = m.encode().unwrap();
        assert!(
            text.lines().any(|l| l.starts_with(
                r#"workqueue_longest_running_processor_seconds{name="maascluster"} "#
            )),
            "{text}"
        );
        m.workqueue
            .finished("maascluster", pass, Duration::from_secs(3), false);
        let text = m.encode().unwrap();
        assert!(
            !text.contains(r#"workqueue_longest_running_processor_seconds{name="maascluster"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"workqueue_adds_total{name="maascluster"} 1"#),
            "{text}"
        );
    }

    /// Every series `config/grafana/capmaas.json` queries is one the manager exposes: a renamed
    /// metric breaks this test, not the dashboard.
    #[test]
    fn the_grafana_dashboard_reads_only_exposed_series() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/grafana/capmaas.json"
        );
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let exprs: Vec<&str> = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().unwrap())
            .map(|t| t["expr"].as_str().unwrap())
            .collect();
        assert!(exprs.len() >= 14, "{exprs:?}");
        let names = exposed_names();
        let not_series = [
            "sum",
            "by",
            "rate",
            "max",
            "histogram_quantile",
            "le",
            "controller",
            "result",
            "name",
            "op",
            "code",
            "method",
            "instance",
            "job",
        ];
        for expr in exprs {
            let words = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.contains('_') || w.chars().all(|c| c.is_ascii_lowercase()))
                .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
                .filter(|w| !not_series.contains(w));
            let mut queried = 0;
            for word in words {
                assert!(
                    names.contains(word),
                    "{word} (in {expr}) is not exposed: {names:?}"
                );
                queried += 1;
            }
            assert!(queried >= 1, "{expr} queries no series");
        }
    }
}
