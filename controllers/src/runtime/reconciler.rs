//! The one reconcile wrapper every controller runs its pass in: a span per object, the
//! controller-runtime metrics, the error report (log, status, event) and the requeue policy.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::{Action, Error as ControllerError};
use kube::runtime::watcher;
use tracing::{Instrument, debug, info_span, warn};

use crate::runtime::context::Context;
use crate::runtime::error::ReconcileError;
use crate::runtime::metrics::ReconcileResult;
use crate::runtime::watch_health::WatchHealth;

/// How a pass ended: `None` waits for a change (or the resync), `Some(d)` looks again after `d`.
pub type PassResult = Result<Option<Duration>, ReconcileError>;

/// The controller-runtime metric outcome of a pass.
fn metric_outcome(result: &PassResult) -> ReconcileResult {
    match result {
        Ok(None) => ReconcileResult::Success,
        Ok(Some(_)) => ReconcileResult::Requeue,
        Err(_) => ReconcileResult::Error,
    }
}

/// Runs `pass` for `obj` of `controller` inside its span, records the metrics, and on an error
/// (other than a lost write race, which the next pass on the fresh object settles) logs it and
/// lets `report` show it on the object (status, event).
pub async fn reconcile_with<K, P, PF, R, RF>(
    controller: &'static str,
    obj: Arc<K>,
    ctx: Arc<Context>,
    pass: P,
    report: R,
) -> Result<Action, ReconcileError>
where
    K: ResourceExt,
    P: FnOnce(Arc<K>, Arc<Context>) -> PF,
    PF: Future<Output = PassResult>,
    R: FnOnce(Arc<K>, Arc<Context>, &ReconcileError) -> RF,
    RF: Future<Output = ()>,
{
    let started = Instant::now();
    let uid = obj.uid().unwrap_or_default();
    let version = (
        obj.meta().generation,
        obj.meta().deletion_timestamp.is_some(),
    );
    if let Some(action) = held_back(&ctx, &uid, version, started) {
        debug!(controller, name = %obj.name_any(), ?action, "no pass now");
        return Ok(action);
    }
    let pass_id = ctx.metrics.workqueue.started(controller, started);
    let span = info_span!(
        "reconcile",
        controller,
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
    );
    let result = pass(obj.clone(), ctx.clone())
        .instrument(span.clone())
        .await;
    record_pass(&ctx, controller, pass_id, &result, started.elapsed());
    if result.is_ok() {
        ctx.backoffs.succeeded(&uid);
    }
    match result {
        Ok(None) => Ok(Action::requeue(ctx.sync_period)),
        Ok(Some(after)) => Ok(Action::requeue(after)),
        Err(error) => {
            if error.is_conflict() {
                debug!(parent: &span, %error, "lost a write race; retrying on the fresh object");
            } else if matches!(error, ReconcileError::NotLeader) {
                // Another replica may lead now: no status, no event from this one.
                debug!(parent: &span, %error, "stopping: the hold on the leader Lease has ended");
            } else {
                ctx.backoffs
                    .failed(&uid, version, error.requeue_after(), Instant::now());
                warn!(parent: &span, %error, stage = %error.stage(), label = error.label(), transient = error.is_transient(), "reconcile failed");
                report(obj, ctx, &error).instrument(span).await;
            }
            Err(error)
        }
    }
}

/// The metrics of one pass: its outcome and time, and the workqueue's view of it.
fn record_pass(
    ctx: &Context,
    controller: &'static str,
    pass_id: u64,
    result: &PassResult,
    took: Duration,
) {
    let outcome = metric_outcome(result);
    ctx.metrics.reconciled(controller, outcome, took);
    let retried = outcome == ReconcileResult::Error;
    ctx.metrics
        .workqueue
        .finished(controller, pass_id, took, retried);
}

/// Why no pass starts now, if none may: the hold on the leader Lease has ended (the manager is
/// stopping), or the object is backing off after errors (a watch event during the backoff, often
/// our own status write, starts no pass).
fn held_back(
    ctx: &Context,
    uid: &str,
    version: (Option<i64>, bool),
    now: Instant,
) -> Option<Action> {
    if !ctx.gate.may_act() {
        return Some(Action::await_change());
    }
    ctx.backoffs.hold(uid, version, now).map(Action::requeue)
}

/// The requeue policy of every controller: the object's error backoff (MAAS's hint, else soon
/// for transient errors and late for terminal ones, doubled for each failure in a row, within a
/// cap); a change to the object's spec triggers sooner.
pub fn error_policy<K: ResourceExt>(
    obj: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    if error.is_conflict() {
        return Action::requeue(error.requeue_after());
    }
    let uid = obj.uid().unwrap_or_default();
    Action::requeue(
        ctx.backoffs
            .delay(&uid, Instant::now())
            .unwrap_or_else(|| error.requeue_after()),
    )
}

/// Runs a controller's result stream to its end. Failed passes were already reported by
/// [`reconcile_with`], so each is only logged at debug level here; a failing watch is recorded in
/// `health` (readiness says so) and logged as a warning once a minute.
pub async fn drain<S, T>(controller: &'static str, results: S, health: WatchHealth)
where
    S: futures::Stream<Item = Result<T, ControllerError<ReconcileError, watcher::Error>>>,
{
    results
        .for_each(|r| {
            let health = &health;
            async move {
                match r {
                    Err(ControllerError::QueueError(error)) => {
                        if health.failed(controller, error.to_string(), Instant::now()) {
                            warn!(%error, controller, "watch failing: objects of this kind are not reconciled until it works");
                        } else {
                            debug!(%error, controller, "watch failing");
                        }
                    }
                    Err(error) => debug!(%error, controller, "reconcile"),
                    Ok(_) => {}
                }
            }
        })
        .await;
}

/// The watcher configuration of every controller: any resource version, so a relist is served
/// from the API server's cache.
pub fn watcher_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().any_semantic()
}

/// The label Cluster API's `--watch-filter` selects on.
pub const WATCH_FILTER_LABEL: &str = "cluster.x-k8s.io/watch-filter";

/// The watcher configuration of a controller's own kind: with a watch filter, only objects
/// labelled with it reach the store, and a request for any other object finds nothing to do.
/// The orphan sweep lists without it: another instance's objects are not orphans.
pub fn primary_watcher_config(watch_filter: Option<&str>) -> kube::runtime::watcher::Config {
    match watch_filter {
        Some(value) => watcher_config().labels(&format!("{WATCH_FILTER_LABEL}={value}")),
        None => watcher_config(),
    }
}
