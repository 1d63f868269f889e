//! Our manager, `capmaas-manager`, as a local process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::HarnessError;
use super::process::{Component, free_port};

/// How to run the manager.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// The kubeconfig it talks to the management cluster with.
    pub kubeconfig: PathBuf,
    /// MAAS endpoint (`http://host:port/MAAS/`), passed as `MAAS_ENDPOINT`.
    pub maas_endpoint: String,
    /// MAAS API key, passed as `MAAS_API_KEY`.
    pub maas_api_key: String,
    /// Extra flags, e.g. `--namespace=...`.
    pub extra_args: Vec<String>,
    /// Where its log goes.
    pub run_dir: PathBuf,
    /// The name of the process and its log file (several managers may run in one test).
    pub name: String,
}

/// The binary built by `cargo test --workspace` beside this test binary: `CAPMAAS_MANAGER_BIN`
/// when set, else `<target>/<profile>/capmaas-manager`.
pub fn manager_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("CAPMAAS_MANAGER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(HarnessError::io("locating", "current exe"))?;
    // <target>/<profile>/deps/<test binary> or <target>/<profile>/<binary>.
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("capmaas-manager"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            HarnessError::Tools(format!(
                "capmaas-manager not found beside {} (run `cargo build -p capmaas-controllers`)",
                exe.display()
            ))
        })
}

/// A running manager with its health endpoint.
pub struct Manager {
    /// The process.
    pub process: Component,
    /// `http://127.0.0.1:PORT` of its metrics server.
    pub metrics_url: String,
    health_url: String,
}

impl Manager {
    /// Starts the manager and waits until `/healthz` answers.
    pub async fn start(opts: &ManagerOptions) -> Result<Self, HarnessError> {
        let binary = manager_binary()?;
        let health = free_port()?;
        let metrics = free_port()?;
        let mut args = vec![
            format!("--kubeconfig={}", opts.kubeconfig.display()),
            format!("--health-probe-bind-address=127.0.0.1:{health}"),
            format!("--metrics-bind-address=127.0.0.1:{metrics}"),
            // Debug detail (klog's 3-4): the MAAS calls, for a failing test's log.
            "--v=4".to_string(),
        ];
        args.extend(opts.extra_args.iter().cloned());
        let envs = vec![
            ("MAAS_ENDPOINT".to_string(), opts.maas_endpoint.clone()),
            ("MAAS_API_KEY".to_string(), opts.maas_api_key.clone()),
            ("RUST_BACKTRACE".to_string(), "1".to_string()),
        ];
        let process = Component::spawn(&opts.name, &binary, &args, &envs, &opts.run_dir)?;
        let mut manager = Self {
            process,
            metrics_url: format!("http://127.0.0.1:{metrics}"),
            health_url: format!("http://127.0.0.1:{health}/healthz"),
        };
        manager.wait_healthy().await?;
        Ok(manager)
    }

    async fn wait_healthy(&mut self) -> Result<(), HarnessError> {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            self.process.check_running()?;
            if matches!(http.get(&self.health_url).send().await, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.process.not_ready("/healthz never answered 200".into()))
    }

    /// Whether `/readyz` answers 200.
    pub async fn is_ready(&self) -> bool {
        let url = self.health_url.replace("/healthz", "/readyz");
        matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success())
    }

    /// The manager's metrics text.
    pub async fn metrics(&self) -> Result<String, HarnessError> {
        let url = format!("{}/metrics", self.metrics_url);
        let text = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| HarnessError::Timeout(format!("metrics from {url}: {e}")))?
            .text()
            .await
            .map_err(|e| HarnessError::Timeout(format!("metrics body from {url}: {e}")))?;
        Ok(text)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// Kills the manager with SIGKILL, as a crash would.
    pub async fn kill(mut self) {
        self.process.kill().await;
    }

    /// Stops the manager gracefully.
    pub async fn stop(mut self) {
        self.process.stop().await;
    }
}
