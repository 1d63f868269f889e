//! The `process_*` families every Prometheus client exports, read from `/proc/self` before each
//! scrape (Linux; elsewhere they stay at zero).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::registered;

/// Kernel clock ticks per second as `/proc` counts them (`USER_HZ`, 100 on every Linux build
/// this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// The process families.
#[derive(Debug, Default)]
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_bytes: Gauge<i64>,
    virtual_bytes: Gauge<i64>,
    open_fds: Gauge<i64>,
    max_fds: Gauge<i64>,
    start_time: Gauge<f64, AtomicU64>,
    counted_cpu: std::sync::Mutex<f64>,
}

impl ProcessMetrics {
    /// The families, registered in `registry`; the start time is now.
    pub fn register(r: &mut Registry) -> Self {
        let m = ProcessMetrics {
            cpu_seconds: registered(
                r,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                Counter::default(),
            ),
            resident_bytes: registered(
                r,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                Gauge::default(),
            ),
            virtual_bytes: registered(
                r,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                Gauge::default(),
            ),
            open_fds: registered(
                r,
                "process_open_fds",
                "Number of open file descriptors",
                Gauge::default(),
            ),
            max_fds: registered(
                r,
                "process_max_fds",
                "Maximum number of open file descriptors",
                Gauge::default(),
            ),
            start_time: registered(
                r,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                Gauge::default(),
            ),
            counted_cpu: Default::default(),
        };
        m.start_time
            .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        m
    }

    /// Reads `/proc/self` into the families.
    pub fn refresh(&self) {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        if let Some(sample) = parse_stat(&stat) {
            let mut counted = self.counted_cpu.lock().unwrap_or_else(|p| p.into_inner());
            if sample.cpu_seconds > *counted {
                self.cpu_seconds.inc_by(sample.cpu_seconds - *counted);
                *counted = sample.cpu_seconds;
            }
            self.virtual_bytes.set(sample.virtual_bytes);
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(kib) = parse_rss_kib(&status) {
            self.resident_bytes.set(kib * 1024);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        if let Some(max) = parse_max_fds(&limits) {
            self.max_fds.set(max);
        }
    }
}

/// What `/proc/self/stat` says of CPU and memory.
#[derive(Debug, PartialEq)]
struct StatSample {
    cpu_seconds: f64,
    virtual_bytes: i64,
}

/// Parses `/proc/<pid>/stat`: fields after the command name (which may hold spaces and
/// parentheses), utime and stime the 14th and 15th, vsize the 23rd.
fn parse_stat(stat: &str) -> Option<StatSample> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    Some(StatSample {
        cpu_seconds: (field(14)? + field(15)?) as f64 / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, in KiB (the page size does not matter there).
fn parse_rss_kib(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The soft limit on open files from `/proc/<pid>/limits`.
fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_limits_parse() {
        let stat = "4242 (capmaas (mgr)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 1000 73400320 5120 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(StatSample {
                cpu_seconds: 3.0,
                virtual_bytes: 73_400_320,
            })
        );
        assert_eq!(
            parse_rss_kib("Name:\tcapmaas\nVmRSS:\t   22528 kB\n"),
            Some(22528)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1048576              1048576              files\n";
        assert_eq!(parse_max_fds(limits), Some(1_048_576));
    }

    #[test]
    fn refresh_reads_this_process() {
        let mut registry = Registry::default();
        let m = ProcessMetrics::register(&mut registry);
        m.refresh();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(m.resident_bytes.get() > 0);
            assert!(m.open_fds.get() > 0);
        }
    }
}
