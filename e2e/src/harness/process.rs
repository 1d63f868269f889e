//! Child processes with their output in a log file, killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::error::HarnessError;

/// A running component of the environment.
pub struct Component {
    name: String,
    log: PathBuf,
    child: Child,
}

impl Component {
    /// Starts `binary args...`, appending stdout and stderr to `<dir>/<name>.log`.
    pub fn spawn(
        name: &str,
        binary: &Path,
        args: &[String],
        envs: &[(String, String)],
        dir: &Path,
    ) -> Result<Self, HarnessError> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(HarnessError::io("opening", &log))?;
        let err = out.try_clone().map_err(HarnessError::io("opening", &log))?;
        let child = Command::new(binary)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                name: name.to_string(),
                source,
            })?;
        Ok(Self {
            name: name.to_string(),
            log,
            child,
        })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its process id, while it has not been waited for.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last `lines` lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Fails with the log tail when the process has already exited.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.not_ready(format!("exited with {status}"))),
            Err(e) => Err(self.not_ready(format!("cannot be waited on: {e}"))),
        }
    }

    /// An error that names this component and shows its log tail.
    pub fn not_ready(&self, reason: String) -> HarnessError {
        HarnessError::NotReady {
            name: self.name.clone(),
            reason,
            log: self.log.clone(),
            tail: self.tail(40),
        }
    }

    /// Sends SIGKILL and waits for the process to go: a crash, as a test of recovery wants it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks the process to stop (SIGTERM), then kills it if it is still there after a grace period.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM through kill(1): std has no signal API and this crate forbids unsafe code.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            let graceful =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait()).await;
            if graceful.is_ok() {
                return;
            }
        }
        self.kill().await;
    }
}

/// The last `lines` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io("binding", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(HarnessError::io("reading the address of", "127.0.0.1:0"))?
        .port();
    Ok(port)
}
