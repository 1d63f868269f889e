#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! python-libmaas, the official Python client from PyPI, drives the simulator unchanged:
//! connect (describe/), list, allocate by tag, deploy with user data, wait, release.
//!
//! The virtualenv lives in `$CAPMAAS_LIBMAAS_VENV`, else `$HOME/.cache/capmaas/venv-libmaas`,
//! else under the target directory; it is reused when it already imports `maas.client`.
//! Skipped (with a printed reason) only where python3 is absent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use maas_sim::SimConfig;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPMAAS_LIBMAAS_VENV") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".cache/capmaas/venv-libmaas"),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("venv-libmaas"),
    }
}

fn has_libmaas(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import maas.client"])
        .status()
        .is_ok_and(|s| s.success())
}

/// A python with python-libmaas installed, or `None` when python3 is absent.
fn libmaas_python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let venv = venv_dir();
    let python = venv.join("bin/python");
    if has_libmaas(&python) {
        return Some(python);
    }
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let requirements = crate_dir().join("tests/python/requirements.txt");
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "-q", "-r"])
        .arg(&requirements)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install -r {} failed:\n{}\n{}",
        requirements.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        has_libmaas(&python),
        "python-libmaas installed but does not import"
    );
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_libmaas_drives_the_simulator() {
    let Some(python) = tokio::task::spawn_blocking(libmaas_python).await.unwrap() else {
        println!("SKIPPED: python3 is not installed, so python-libmaas cannot run");
        return;
    };
    let sim = start(SimConfig {
        machines: 4,
        gpu_machines: 1,
        deploy_seconds: 0.3,
        release_seconds: Some(0.1),
        ..Default::default()
    })
    .await;
    let script = crate_dir().join("tests/python/libmaas_smoke.py");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::process::Command::new(&python)
            .arg(&script)
            .env("MAAS_URL", sim.url())
            .env("MAAS_API_KEY", sim.api_key())
            .output(),
    )
    .await
    .expect("python-libmaas script timed out")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed:\n{stdout}\n{stderr}");
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");

    // What the script did is visible on the simulator's side.
    let requests = sim.requests();
    assert_eq!(requests.count("describe:read", 200), 1);
    assert_eq!(requests.count("machines:allocate", 200), 1);
    assert_eq!(requests.count("machine:deploy", 200), 1);
    assert_eq!(requests.count("machine:release", 200), 1);
    assert_eq!(requests.log.iter().filter(|e| e.code == 401).count(), 0);
    let state = sim.state();
    let gpu = state
        .machines
        .iter()
        .find(|m| m.tags.contains(&"gpu".to_string()))
        .unwrap();
    assert_eq!(gpu.status, "Ready");
    assert!(gpu.owner.is_none());
    assert_eq!(
        gpu.user_data.as_deref(),
        Some("#cloud-config\nruncmd: [echo hello]\n")
    );
    sim.shutdown().await.unwrap();
}
