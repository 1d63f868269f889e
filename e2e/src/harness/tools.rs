//! Finds the Go-built control-plane binaries in the cache that `make tools` fills.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::HarnessError;

/// Names of the binaries the harness runs.
pub const REQUIRED: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "capi-manager",
    "clusterctl",
];

/// The kube-scheduler binary. Not in [`REQUIRED`]: only environments that ask for it run it
/// ([`super::EnvOptions::scheduler`]), so a tools cache built before it joined the tools still
/// runs every other test.
pub const KUBE_SCHEDULER: &str = "kube-scheduler";

/// The kube-scheduler of the tools in `bin_dir`, or why it is not there.
pub fn kube_scheduler(bin_dir: &Path) -> Result<PathBuf, HarnessError> {
    with_binaries(bin_dir.to_path_buf(), &[KUBE_SCHEDULER]).map(|dir| dir.join(KUBE_SCHEDULER))
}

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the tools live: `CAPMAAS_TOOLS_BIN` when set, else what `e2e/tools/build.sh --print-dir`
/// says. Every binary in [`REQUIRED`] must be there; the harness never builds them itself, so a
/// test run does not silently spend half an hour compiling Kubernetes.
pub fn bin_dir() -> Result<PathBuf, HarnessError> {
    let dir = match std::env::var_os("CAPMAAS_TOOLS_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => print_dir("main")?,
    };
    with_binaries(dir, REQUIRED)
}

/// A Cluster API core release the harness can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CapiRelease {
    /// The one the main tools set builds (`e2e/tools/capi`).
    #[default]
    Current,
    /// 1.10, which HyperShift's MAAS fork vendors on its 4.20 line (the `capi-1.10` set).
    V1_10,
    /// 1.9, which the fork vendors on its 4.19 and 4.21 lines (the `capi-1.9` set).
    V1_9,
}

impl CapiRelease {
    /// The tools set that builds it.
    pub fn tools_set(self) -> &'static str {
        match self {
            CapiRelease::Current => "main",
            CapiRelease::V1_10 => "capi-1.10",
            CapiRelease::V1_9 => "capi-1.9",
        }
    }
}

/// Where the Cluster API core of `release` lives: the main tools dir for the current release,
/// else the bin dir of its own set (`CAPMAAS_TOOLS_SET=<set> e2e/tools/build.sh --print-dir`).
pub fn capi_bin_dir(release: CapiRelease) -> Result<PathBuf, HarnessError> {
    match release {
        CapiRelease::Current => bin_dir(),
        other => with_binaries(print_dir(other.tools_set())?, &["capi-manager"]),
    }
}

/// The bin dir of a tools set, as the build script names it.
fn print_dir(set: &str) -> Result<PathBuf, HarnessError> {
    let script = workspace_root().join("e2e/tools/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--print-dir")
        .env("CAPMAAS_TOOLS_SET", set)
        .output()
        .map_err(|e| HarnessError::Tools(format!("running {}: {e}", script.display())))?;
    if !out.status.success() {
        return Err(HarnessError::Tools(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `dir`, when every one of `names` is in it.
fn with_binaries(dir: PathBuf, names: &[&str]) -> Result<PathBuf, HarnessError> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(HarnessError::Tools(format!(
            "{} not found in {} (make tools)",
            missing.join(", "),
            dir.display()
        )))
    }
}

/// The tools directory for a test that needs the Go-built tools. When they are missing, a
/// developer's run skips the test with the reason (`None`); under `CI=true` the test fails
/// instead, since CI must never count a test it did not run as passed.
// Failing the calling test is this function's job when CI runs it.
#[allow(clippy::panic)]
pub fn require_tools() -> Option<PathBuf> {
    match bin_dir() {
        Ok(dir) => Some(dir),
        Err(e) => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_string();
            if under_ci(std::env::var("CI").ok().as_deref()) {
                panic!("{test}: {e}; CI=true, so a missing tool fails instead of skipping");
            }
            // Straight to stderr: the test harness hides what a passing test prints, and a skip
            // must be seen.
            let _ = writeln!(std::io::stderr(), "skipping {test}: {e}");
            None
        }
    }
}

/// Whether the `CI` variable asks for CI's rules (`.ci/run` sets `CI=true`).
fn under_ci(value: Option<&str>) -> bool {
    value == Some("true")
}

/// The Cluster API manifests `build.sh` copies next to `bin/` (CRDs, webhooks, RBAC).
pub fn capi_manifests_dir(bin: &Path) -> PathBuf {
    bin.parent().unwrap_or(bin).join("capi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ci_true_turns_a_skip_into_a_failure() {
        assert!(under_ci(Some("true")));
        for other in [None, Some(""), Some("false"), Some("1")] {
            assert!(!under_ci(other), "{other:?}");
        }
    }
}
