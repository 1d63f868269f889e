#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! python-libmaas, the official Python client from PyPI, drives the simulator unchanged:
//! connect (describe/), list, allocate by tag, deploy with user data, wait, release; and
//! requests signed with oauthlib's HMAC-SHA1, a signer independent of the simulator.
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
    // One allocation by python-libmaas, one signed with oauthlib's HMAC-SHA1.
    assert_eq!(requests.count("machines:allocate", 200), 2);
    assert_eq!(requests.log.iter().filter(|e| e.code == 401).count(), 1);
    assert_eq!(requests.count("machine:deploy", 200), 1);
    assert_eq!(requests.count("machine:release", 200), 1);
    let state = sim.state();
    // The one GPU machine: deployed with the script's user data, released by python-libmaas
    // (release wipes the owner), then allocated again by the HMAC-signed request.
    let gpu: Vec<_> = state
        .machines
        .iter()
        .filter(|m| m.tags.contains(&"gpu".to_string()))
        .collect();
    assert_eq!(gpu.len(), 1);
    assert_eq!(
        gpu[0].user_data.as_deref(),
        Some("#cloud-config\nruncmd: [echo hello]\n")
    );
    assert_eq!(gpu[0].status, "Allocated");
    assert_eq!(gpu[0].agent_name.as_deref(), Some("hmac agent/1"));
    assert!(gpu[0].owner_data.is_empty());
    sim.shutdown().await.unwrap();
}
