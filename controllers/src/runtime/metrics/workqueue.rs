//! The `workqueue_*` families CAPI's controller-runtime dashboards read, from what this manager
//! can observe of kube-runtime's queue: each request handed to a reconcile (an add, counted after
//! kube-runtime's de-duplication, where controller-runtime counts before it), how long each pass
//! ran, failed passes requeued with backoff (retries), and passes still running. kube-runtime does
//! not expose its queue, so `workqueue_depth` and `workqueue_queue_duration_seconds` are not
//! exported rather than guessed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{NameLabels, registered};

/// The workqueue families and the passes running now.
#[derive(Debug)]
pub struct Workqueue {
    adds: Family<NameLabels, Counter>,
    retries: Family<NameLabels, Counter>,
    work_duration: Family<NameLabels, Histogram, fn() -> Histogram>,
    unfinished: Family<NameLabels, Gauge<f64, AtomicU64>>,
    longest: Family<NameLabels, Gauge<f64, AtomicU64>>,
    running: Arc<Mutex<HashMap<(&'static str, u64), Instant>>>,
    next_pass: AtomicU64,
}

fn work_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Workqueue {
    /// The families, registered in `registry`.
    pub fn register(r: &mut Registry) -> Self {
        let work_duration = Family::new_with_constructor(work_histogram as fn() -> Histogram);
        Workqueue {
            adds: registered(
                r,
                "workqueue_adds",
                "Requests handed to a reconcile, per controller",
                Family::default(),
            ),
            retries: registered(
                r,
                "workqueue_retries",
                "Failed passes requeued with backoff, per controller",
                Family::default(),
            ),
            work_duration: registered(
                r,
                "workqueue_work_duration_seconds",
                "How long a pass takes, per controller",
                work_duration,
            ),
            unfinished: registered(
                r,
                "workqueue_unfinished_work_seconds",
                "Seconds of work done by passes still running, per controller",
                Family::default(),
            ),
            longest: registered(
                r,
                "workqueue_longest_running_processor_seconds",
                "Seconds the longest pass still running has run, per controller",
                Family::default(),
            ),
            running: Arc::default(),
            next_pass: AtomicU64::new(0),
        }
    }

    /// A request of `controller` reached its reconcile; the pass runs until the returned token is
    /// given back to [`finished`](Self::finished).
    pub fn started(&self, controller: &'static str, now: Instant) -> u64 {
        self.adds.get_or_create(&NameLabels::of(controller)).inc();
        let id = self.next_pass.fetch_add(1, Ordering::Relaxed);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert((controller, id), now);
        id
    }

    /// Pass `id` of `controller` ended after `took`; `retried` when it failed and is requeued
    /// with backoff.
    pub fn finished(&self, controller: &'static str, id: u64, took: Duration, retried: bool) {
        let labels = NameLabels::of(controller);
        self.work_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if retried {
            self.retries.get_or_create(&labels).inc();
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&(controller, id));
    }

    /// Sets the gauges of passes still running, as of `now` (before each scrape).
    pub fn refresh(&self, now: Instant) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut per_controller: HashMap<&'static str, (f64, f64)> = HashMap::new();
        for ((controller, _), since) in running.iter() {
            let ran = now.saturating_duration_since(*since).as_secs_f64();
            let entry = per_controller.entry(controller).or_default();
            entry.0 += ran;
            entry.1 = entry.1.max(ran);
        }
        for gauge in [&self.unfinished, &self.longest] {
            gauge.clear();
        }
        for (controller, (total, longest)) in per_controller {
            let labels = NameLabels::of(controller);
            self.unfinished.get_or_create(&labels).set(total);
            self.longest.get_or_create(&labels).set(longest);
        }
    }
}
