//! Prometheus metrics with the controller-runtime names users' dashboards already query, plus
//! MAAS request counts fed by the client's request observer.

use std::sync::Arc;
use std::time::Duration;

use maas_client::{Operation, RequestObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    reconcile_time: Family<ControllerLabels, Histogram>,
    maas_requests: Family<MaasRequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers all families.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let reconcile_time = Family::<ControllerLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 14))) as fn() -> Histogram,
        );
        let maas_requests = Family::<MaasRequestLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            "capmaas_maas_requests",
            "MAAS API requests by operation and outcome",
            maas_requests.clone(),
        );
        Metrics {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            maas_requests,
        }
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

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
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
}
