//! The management cluster the tests of one binary share (DESIGN 7): etcd, kube-apiserver,
//! kube-controller-manager, Cluster API core and our CRDs, started once by the first test that
//! asks and kept until the process exits; or, with `E2E_KUBECONFIG`, that cluster. Each test
//! brings its own namespace, simulator and manager ([`super::EnvOptions::namespace`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::sync::OnceCell;

use super::capi::CapiCore;
use super::control_plane::ControlPlane;
use super::env::start_cluster;
use super::error::HarnessError;

/// What a test needs of the shared cluster.
#[derive(Debug)]
pub struct SharedCluster {
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The logs of the processes behind it (none for `E2E_KUBECONFIG`).
    pub logs: Vec<PathBuf>,
}

/// Whether the shared cluster is given (`E2E_KUBECONFIG`) rather than started from the tools.
pub fn given() -> bool {
    std::env::var_os("E2E_KUBECONFIG").is_some()
}

/// The shared cluster, started on first use. A failed start is kept and reported to every test
/// that asks: starting it again for each would only fail more slowly.
pub async fn cluster() -> Result<&'static SharedCluster, String> {
    static SHARED: OnceCell<Result<SharedCluster, String>> = OnceCell::const_new();
    SHARED
        .get_or_init(start)
        .await
        .as_ref()
        .map_err(Clone::clone)
}

async fn start() -> Result<SharedCluster, String> {
    if let Some(kubeconfig) = std::env::var_os("E2E_KUBECONFIG") {
        return Ok(SharedCluster {
            kubeconfig: kubeconfig.into(),
            logs: Vec::new(),
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread and runtime of its own: each test has its own runtime, and the cluster must
    // outlive the test that happened to start it.
    std::thread::Builder::new()
        .name("shared-cluster".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(format!("building its runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match start_processes().await {
                    Ok((cluster, running)) => {
                        let _ = tx.send(Ok(cluster));
                        // Never dropped: statics are not, so the reaper stops them at exit.
                        let _running = running;
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })
        .map_err(|e| format!("starting its thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("its thread ended before it started".into()))
}

/// The processes of the shared cluster and the reaper that stops them.
struct Running {
    _control_plane: ControlPlane,
    _capi: CapiCore,
    _reaper: Child,
}

async fn start_processes() -> Result<(SharedCluster, Running), HarnessError> {
    let dir = tempfile::Builder::new()
        .prefix("capmaas-e2e-shared-")
        .tempdir()
        .map_err(HarnessError::io("creating", "a temporary directory"))?
        .keep();
    let (control_plane, capi) =
        start_cluster(&dir, super::tools::CapiRelease::Current, false).await?;
    let mut pids = control_plane.process_ids();
    pids.extend(capi.manager.id());
    let reaper = reap_at_exit(&pids, &dir)?;
    let mut logs = control_plane.logs();
    logs.push(capi.manager.log().to_path_buf());
    Ok((
        SharedCluster {
            kubeconfig: control_plane.kubeconfig().to_path_buf(),
            logs,
        },
        Running {
            _control_plane: control_plane,
            _capi: capi,
            _reaper: reaper,
        },
    ))
}

/// A process that waits for this one to exit, however it ends (its stdin, a pipe only this
/// process writes to, closes then), stops `pids` (TERM, KILL after 10 s) and removes `dir`.
fn reap_at_exit(pids: &[u32], dir: &Path) -> Result<Child, HarnessError> {
    // Ctrl-C reaches the whole process group; the reaper must live on to do its work.
    const SCRIPT: &str = r#"trap '' INT TERM HUP
read -r _
kill -TERM "${@:2}" 2>/dev/null
for _ in $(seq 50); do kill -0 "${@:2}" 2>/dev/null || break; sleep 0.2; done
kill -KILL "${@:2}" 2>/dev/null
rm -rf -- "$1""#;
    Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("capmaas-e2e-reaper")
        .arg(dir)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            name: "the shared cluster's reaper".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` still runs (a zombie waiting for its parent does not).
    fn running(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn the_reaper_stops_the_processes_and_removes_the_dir_when_its_stdin_closes() {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("etcd.log"), "x").unwrap();
        // Not our child, as the cluster's processes are not once this process has exited.
        let out = Command::new("sh")
            .args(["-c", "sleep 600 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let mut reaper = reap_at_exit(&[pid.parse().unwrap()], &dir).unwrap();
        assert!(running(&pid), "alive while we are");
        // What this process's exit does to the pipe.
        drop(reaper.stdin.take());
        assert!(reaper.wait().unwrap().success());
        assert!(!running(&pid), "stopped");
        assert!(!dir.exists());
    }
}
