//! One end-to-end test from start to stop: it waits for a slot of the machine, runs in its own
//! directory, prints the tail of every log there (and of the shared cluster's) when it fails,
//! keeping the directory, and stops in order when it passes.
//!
//! ```ignore
//! let Some(env) = TestEnv::shared("pause", EnvOptions::default()).await else {
//!     return; // the tools are missing on a developer machine (CI fails instead)
//! };
//! scenario(&env).await; // a panic prints the logs
//! env.stop().await;
//! ```

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::env::{Env, EnvOptions};
use super::{process, shared, tools};

/// Lines of each log printed when a test fails.
const TAIL_LINES: usize = 80;

/// Slots of the machine: two by default, sized for 2 cores, `CAPMAAS_E2E_SLOTS` to change. A test
/// on the shared cluster (a simulator and a manager of its own) takes one; a test with a control
/// plane of its own takes them all, so it runs alone.
static SLOTS: LazyLock<(Semaphore, u32)> = LazyLock::new(|| {
    let slots = std::env::var("CAPMAAS_E2E_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2);
    (Semaphore::new(slots as usize), slots)
});

/// How much of the machine a test takes.
#[derive(Debug, Clone, Copy)]
enum Share {
    /// One slot, beside other tests on the shared cluster.
    Slot,
    /// Every slot.
    Alone,
}

/// The guard of one test's run: its slot and directory, and its logs if it fails.
pub struct TestRun {
    dir: Option<tempfile::TempDir>,
    shared_logs: Vec<PathBuf>,
    _slot: Option<SemaphorePermit<'static>>,
}

impl TestRun {
    /// For a test that starts control-plane processes itself, in [`TestRun::dir`]: it runs alone.
    /// Returns the tools directory too; `None` when the tools are missing and the test is skipped
    /// ([`tools::require_tools`]).
    pub async fn own(name: &str) -> Option<(Self, PathBuf)> {
        let tools = tools::require_tools()?;
        Some((Self::begin(name, Share::Alone).await, tools))
    }

    // A test helper: failing the calling test is what it must do when it cannot set up.
    #[allow(clippy::panic)]
    async fn begin(name: &str, share: Share) -> Self {
        let (semaphore, all) = &*SLOTS;
        let wanted = match share {
            Share::Slot => 1,
            Share::Alone => *all,
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let slot = semaphore.acquire_many(wanted).await.ok();
        let dir = tempfile::Builder::new()
            .prefix(&format!("capmaas-e2e-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("creating the run directory of {name}: {e}"));
        Self {
            dir: Some(dir),
            shared_logs: Vec::new(),
            _slot: slot,
        }
    }

    /// The test's directory: every `*.log` below it is printed if the test fails.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("."), |d| d.path())
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Some(dir) = self.dir.take() else {
            return;
        };
        for log in log_files(dir.path()) {
            print_tail(&log, "");
        }
        for log in &self.shared_logs {
            print_tail(log, ", shared cluster");
        }
        eprintln!("--- run directory kept: {}", dir.keep().display());
    }
}

fn print_tail(log: &Path, whose: &str) {
    eprintln!(
        "--- {} (last {TAIL_LINES} lines{whose}) ---\n{}",
        log.display(),
        process::tail(log, TAIL_LINES)
    );
}

/// Every `*.log` below `dir`, sorted.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "log") => {
                    logs.push(path)
                }
                _ => {}
            }
        }
    }
    logs.sort();
    logs
}

/// A test's [`Env`] with its [`TestRun`]: dereferences to the `Env`.
pub struct TestEnv {
    // Dropped first: on a failure the processes are killed, then their logs are printed.
    env: Env,
    run: TestRun,
}

impl TestEnv {
    /// An environment in `namespace` of the shared cluster ([`shared::cluster`]): its own
    /// simulator, and managers that watch only `namespace`. For tests whose cluster-wide state
    /// is that of any cluster (CRDs and Cluster API core as the harness installs them). `None`
    /// when the tools are missing and the test is skipped.
    // A test helper: failing the calling test is what it must do when it cannot set up.
    #[allow(clippy::panic)]
    pub async fn shared(namespace: &str, mut opts: EnvOptions) -> Option<Self> {
        if !shared::given() {
            tools::require_tools()?;
        }
        let mut run = TestRun::begin(namespace, Share::Slot).await;
        let cluster = shared::cluster()
            .await
            .unwrap_or_else(|e| panic!("the shared cluster did not start: {e}"));
        run.shared_logs.clone_from(&cluster.logs);
        opts.existing_kubeconfig = Some(cluster.kubeconfig.clone());
        opts.namespace = Some(namespace.to_string());
        Some(Self::start(run, opts).await)
    }

    /// An environment with a control plane of its own (unless `opts` names an existing
    /// cluster), for tests that change cluster-wide state: CRDs, cluster-wide managers,
    /// providers installed by clusterctl. It runs alone. `None` when the tools are missing and
    /// the test is skipped: these tests use them (kustomize, clusterctl) even on an existing
    /// cluster.
    pub async fn own(name: &str, opts: EnvOptions) -> Option<Self> {
        tools::require_tools()?;
        let run = TestRun::begin(name, Share::Alone).await;
        Some(Self::start(run, opts).await)
    }

    #[allow(clippy::panic)]
    async fn start(run: TestRun, mut opts: EnvOptions) -> Self {
        opts.run_dir = Some(run.dir().to_path_buf());
        // `run` lives until the panic unwinds, so a failed start prints the logs too.
        let env = Env::start(opts)
            .await
            .unwrap_or_else(|e| panic!("the environment did not start: {e}"));
        Self { env, run }
    }

    /// Ends a test with its scenario's result: on success, [`TestEnv::stop`]; on failure, a
    /// panic with the error, which kills the processes, prints every log and keeps the run
    /// directory (the guard does that while unwinding).
    // Failing the calling test is what a failed scenario must do.
    #[allow(clippy::panic)]
    pub async fn finish<E: std::fmt::Display>(self, result: Result<(), E>) {
        match result {
            Ok(()) => self.stop().await,
            Err(e) => panic!("{e}"),
        }
    }

    /// Scans the environment for leaked secrets (its logs and the shared cluster's, events,
    /// conditions), stops it in order (see [`Env::stop`]) and removes its directory; a leak fails
    /// the test, and the logs are printed then.
    // Failing the calling test is what a leak must do.
    #[allow(clippy::panic)]
    pub async fn stop(self) {
        let Self { env, run } = self;
        let mut logs = log_files(run.dir());
        logs.extend(run.shared_logs.iter().cloned());
        let leaks = env.secret_leaks(&logs).await;
        env.stop().await;
        match leaks {
            Ok(found) if found.is_empty() => drop(run),
            Ok(found) => panic!("secrets leaked:\n  {}", found.join("\n  ")),
            Err(e) => panic!("cannot scan for leaked secrets: {e}"),
        }
    }
}

impl Deref for TestEnv {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

impl DerefMut for TestEnv {
    fn deref_mut(&mut self) -> &mut Env {
        &mut self.env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_log_below_the_run_directory_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("work/target");
        std::fs::create_dir_all(&nested).unwrap();
        for file in ["etcd.log", "notes.txt", "work/target/kube-apiserver.log"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        assert_eq!(
            log_files(dir.path()),
            vec![
                dir.path().join("etcd.log"),
                dir.path().join("work/target/kube-apiserver.log")
            ]
        );
    }
}
