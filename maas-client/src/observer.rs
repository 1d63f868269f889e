//! A hook that sees every HTTP attempt, so the manager can count MAAS requests as metrics.

use std::sync::Arc;

use crate::operation::Operation;

/// Receives one call per HTTP attempt (each retry counts) with the operation and its outcome.
///
/// The outcome is the HTTP status code as text (`"200"`, `"409"`), or `"timeout"`,
/// `"connect_error"` or `"transport_error"` when no response came. The manager exports it as
/// `capmaas_maas_requests_total{op,code}`. Called on the request path: keep it cheap.
pub trait RequestObserver: Send + Sync {
    /// Records one attempt.
    fn observe(&self, op: Operation, outcome: &str);

    /// Records one attempt and how long it took, from sending to the whole answer (or the
    /// transport failure). By default only [`observe`](Self::observe).
    fn observe_timed(&self, op: Operation, outcome: &str, took: std::time::Duration) {
        let _ = took;
        self.observe(op, outcome);
    }
}

/// An observer that ignores everything, the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn observe(&self, _op: Operation, _outcome: &str) {}
}

impl<F> RequestObserver for F
where
    F: Fn(Operation, &str) + Send + Sync,
{
    fn observe(&self, op: Operation, outcome: &str) {
        self(op, outcome);
    }
}

/// Shared handle to an observer.
pub type SharedObserver = Arc<dyn RequestObserver>;
