//! etcd, kube-apiserver and kube-controller-manager as local processes, the way
//! controller-runtime's envtest runs them, with an admin kubeconfig; kube-scheduler beside them
//! when a test needs Pods bound to Nodes.
//!
//! A Pod needs nothing more than itself. The API server runs without the ServiceAccount
//! admission plugin (and kube-controller-manager without the controller that would create
//! `default` in each namespace), so a Pod in a fresh namespace is admitted as it is, with no
//! `serviceAccountName` filled in; one that mounts no token (`automountServiceAccountToken:
//! false`) is what a cluster without kubelets wants anyway. And it runs without the
//! TaintNodesByCondition plugin: no node lifecycle controller runs here to take the
//! `node.kubernetes.io/not-ready` taint that plugin puts on every new Node off again, so a Node
//! that reports capacity takes Pods that fit as soon as it exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::certs::{self, CertFiles};
use super::error::HarnessError;
use super::process::{Component, free_port};
use super::tools;

/// What to start.
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// The directory of the Go-built binaries.
    pub bin_dir: PathBuf,
    /// Where certificates, data and logs go.
    pub run_dir: PathBuf,
    /// Also run kube-controller-manager (garbage collector and namespace controllers), which
    /// ownerReference cascades and namespace deletion need.
    pub controller_manager: bool,
}

/// A running API server with its etcd (and optionally the controller manager and the scheduler).
pub struct ControlPlane {
    etcd: Component,
    apiserver: Component,
    controller_manager: Option<Component>,
    scheduler: Option<Component>,
    kubeconfig: PathBuf,
    certs: CertFiles,
    server: String,
    client: kube::Client,
    /// What it was started with and on which ports, so it can be restarted in place.
    opts: ControlPlaneOptions,
    etcd_ports: EtcdPorts,
    port: u16,
}

/// etcd's client and peer ports.
#[derive(Debug, Clone, Copy)]
struct EtcdPorts {
    client: u16,
    peer: u16,
}

impl EtcdPorts {
    fn free() -> Result<Self, HarnessError> {
        Ok(Self {
            client: free_port()?,
            peer: free_port()?,
        })
    }

    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }
}

/// Bounded polling: `attempts` tries, `every` apart.
async fn poll<F, Fut>(attempts: u32, every: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..attempts {
        if probe().await {
            return true;
        }
        tokio::time::sleep(every).await;
    }
    false
}

impl ControlPlane {
    /// Starts etcd, then kube-apiserver, waits until `/readyz` answers, then (if asked) the
    /// controller manager.
    pub async fn start(opts: ControlPlaneOptions) -> Result<Self, HarnessError> {
        let dir = &opts.run_dir;
        std::fs::create_dir_all(dir).map_err(HarnessError::io("creating", dir))?;
        let certs = certs::generate(dir)?;

        let etcd_ports = EtcdPorts::free()?;
        let etcd = start_healthy_etcd(&opts.bin_dir, dir, etcd_ports).await?;
        let port = free_port()?;
        let server = format!("https://127.0.0.1:{port}");
        let mut apiserver =
            start_apiserver(&opts.bin_dir, dir, &certs, &etcd_ports.client_url(), port)?;
        let kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(&kubeconfig, admin_kubeconfig(&server, &certs))
            .map_err(HarnessError::io("writing", &kubeconfig))?;
        let client = client_from_kubeconfig(&kubeconfig).await?;
        wait_ready(&mut apiserver, &client).await?;

        let controller_manager = if opts.controller_manager {
            Some(start_controller_manager(&opts.bin_dir, dir, &kubeconfig)?)
        } else {
            None
        };

        Ok(Self {
            etcd,
            apiserver,
            controller_manager,
            scheduler: None,
            kubeconfig,
            certs,
            server,
            client,
            opts,
            etcd_ports,
            port,
        })
    }

    /// Stops kube-apiserver and etcd as an outage of the control plane would, keeps them down
    /// for `down`, then starts both again on the same ports and data and waits until the API
    /// server is ready. Clients (the controller manager, CAPI, our manager) must reconnect.
    pub async fn restart_api_server(&mut self, down: Duration) -> Result<(), HarnessError> {
        self.apiserver.stop().await;
        self.etcd.stop().await;
        tokio::time::sleep(down).await;
        let dir = &self.opts.run_dir;
        self.etcd = start_healthy_etcd(&self.opts.bin_dir, dir, self.etcd_ports).await?;
        self.apiserver = start_apiserver(
            &self.opts.bin_dir,
            dir,
            &self.certs,
            &self.etcd_ports.client_url(),
            self.port,
        )?;
        wait_ready(&mut self.apiserver, &self.client).await
    }

    /// Starts kube-scheduler (its log `kube-scheduler.log` in the run directory) and waits until
    /// its `/readyz` answers `ok`, so that a Pod created from then on gets bound to a Node that
    /// fits it. It runs with the admin kubeconfig and without leader election, serves its health
    /// endpoints on a free loopback port with the control plane's serving certificate, and is
    /// stopped with the other components. Starting it a second time changes nothing.
    pub async fn start_scheduler(&mut self) -> Result<(), HarnessError> {
        if self.scheduler.is_some() {
            return Ok(());
        }
        let binary = tools::kube_scheduler(&self.opts.bin_dir)?;
        let port = free_port()?;
        let mut scheduler = spawn_scheduler(
            &binary,
            &self.opts.run_dir,
            &self.kubeconfig,
            &self.certs,
            port,
        )?;
        wait_healthy(&mut scheduler, port, &self.certs.ca_pem).await?;
        self.scheduler = Some(scheduler);
        Ok(())
    }

    /// A client with cluster-admin rights.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server URL (`https://127.0.0.1:PORT`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The cluster CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.certs.ca_pem
    }

    /// A kubeconfig for the same server with a bearer token instead of the admin certificate
    /// (for running a component as a ServiceAccount).
    pub fn token_kubeconfig(&self, token: &str) -> String {
        kubeconfig_yaml(&self.server, &self.certs.ca_pem, &format!("token: {token}"))
    }

    /// Fails with a log tail when any component has died.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        self.etcd.check_running()?;
        self.apiserver.check_running()?;
        if let Some(kcm) = self.controller_manager.as_mut() {
            kcm.check_running()?;
        }
        if let Some(scheduler) = self.scheduler.as_mut() {
            scheduler.check_running()?;
        }
        Ok(())
    }

    /// The log files of every component, for printing on failure.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs = vec![
            self.etcd.log().to_path_buf(),
            self.apiserver.log().to_path_buf(),
        ];
        for component in [&self.controller_manager, &self.scheduler]
            .into_iter()
            .flatten()
        {
            logs.push(component.log().to_path_buf());
        }
        logs
    }

    /// The process ids of every component.
    pub fn process_ids(&self) -> Vec<u32> {
        [
            Some(&self.etcd),
            Some(&self.apiserver),
            self.controller_manager.as_ref(),
            self.scheduler.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(Component::id)
        .collect()
    }

    /// Stops every component, newest first.
    pub async fn stop(mut self) {
        if let Some(scheduler) = self.scheduler.as_mut() {
            scheduler.stop().await;
        }
        if let Some(kcm) = self.controller_manager.as_mut() {
            kcm.stop().await;
        }
        self.apiserver.stop().await;
        self.etcd.stop().await;
    }
}

fn http_get(path: &'static str) -> http::Request<Vec<u8>> {
    let mut req = http::Request::new(Vec::new());
    *req.uri_mut() = http::Uri::from_static(path);
    req
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, HarnessError> {
    let kc = Kubeconfig::read_from(path).map_err(|e| HarnessError::Kubeconfig(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| HarnessError::Kubeconfig(e.to_string()))?;
    Ok(kube::Client::try_from(config)?)
}

/// Starts etcd; returns it with its client URL.
/// Waits until the API server answers `/readyz` with `ok`.
async fn wait_ready(apiserver: &mut Component, client: &kube::Client) -> Result<(), HarnessError> {
    for _ in 0..600 {
        apiserver.check_running()?;
        if let Ok(body) = client.request_text(http_get("/readyz")).await
            && body.trim() == "ok"
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(apiserver.not_ready("/readyz never answered ok".into()))
}

/// Starts etcd and waits until `/health` answers.
async fn start_healthy_etcd(
    bin: &Path,
    dir: &Path,
    ports: EtcdPorts,
) -> Result<Component, HarnessError> {
    let mut etcd = start_etcd(bin, dir, ports)?;
    let http = reqwest::Client::new();
    let url = format!("{}/health", ports.client_url());
    let healthy = poll(300, Duration::from_millis(100), || {
        let (http, url) = (http.clone(), url.clone());
        async move { matches!(http.get(url).send().await, Ok(r) if r.status().is_success()) }
    })
    .await;
    if !healthy {
        etcd.check_running()?;
        return Err(etcd.not_ready("no healthy answer on /health".into()));
    }
    Ok(etcd)
}

fn start_etcd(bin: &Path, dir: &Path, ports: EtcdPorts) -> Result<Component, HarnessError> {
    let client_url = ports.client_url();
    let peer_url = format!("http://127.0.0.1:{}", ports.peer);
    let args = vec![
        format!("--data-dir={}", dir.join("etcd-data").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=default={peer_url}"),
        "--name=default".into(),
        // Test data need no durability; fsync on a shared disk is the slowest part of etcd.
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    Component::spawn("etcd", &bin.join("etcd"), &args, &[], dir)
}

fn start_apiserver(
    bin: &Path,
    dir: &Path,
    certs: &CertFiles,
    etcd_url: &str,
    port: u16,
) -> Result<Component, HarnessError> {
    let args = vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--cert-dir={}", dir.display()),
        format!("--tls-cert-file={}", certs.serving_cert.display()),
        format!("--tls-private-key-file={}", certs.serving_key.display()),
        format!("--client-ca-file={}", certs.ca_cert.display()),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        // The endpoint reconciler refuses loopback addresses; nothing here needs the endpoints.
        "--endpoint-reconciler-type=none".into(),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        format!("--service-account-key-file={}", certs.sa_pub.display()),
        format!(
            "--service-account-signing-key-file={}",
            certs.sa_key.display()
        ),
        // No token controller and no node lifecycle controller run here: Pods get no
        // ServiceAccount, and new Nodes no `not-ready` taint that nothing would take off.
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition".into(),
        // One client (the tests) does not need fairness queues; they cost memory and CPU.
        "--enable-priority-and-fairness=false".into(),
        "--v=1".into(),
    ];
    Component::spawn(
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &args,
        &[],
        dir,
    )
}

fn start_controller_manager(
    bin: &Path,
    dir: &Path,
    kubeconfig: &Path,
) -> Result<Component, HarnessError> {
    let args = vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--authentication-kubeconfig={}", kubeconfig.display()),
        format!("--authorization-kubeconfig={}", kubeconfig.display()),
        "--controllers=garbage-collector-controller,namespace-controller".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={}", free_port()?),
        "--v=1".into(),
    ];
    Component::spawn(
        "kube-controller-manager",
        &bin.join("kube-controller-manager"),
        &args,
        &[],
        dir,
    )
}

fn spawn_scheduler(
    binary: &Path,
    dir: &Path,
    kubeconfig: &Path,
    certs: &CertFiles,
    port: u16,
) -> Result<Component, HarnessError> {
    let args = vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--authentication-kubeconfig={}", kubeconfig.display()),
        format!("--authorization-kubeconfig={}", kubeconfig.display()),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        // The control plane's certificate for 127.0.0.1, so the health check can verify it.
        format!("--tls-cert-file={}", certs.serving_cert.display()),
        format!("--tls-private-key-file={}", certs.serving_key.display()),
        "--v=1".into(),
    ];
    Component::spawn(tools::KUBE_SCHEDULER, binary, &args, &[], dir)
}

/// Waits until a component serving on `https://127.0.0.1:<port>` with a certificate of the
/// control plane's CA answers `/readyz` with `ok` (a path the components' default authorization
/// lets anyone read).
async fn wait_healthy(
    component: &mut Component,
    port: u16,
    ca_pem: &str,
) -> Result<(), HarnessError> {
    let reason = |e: reqwest::Error| component.not_ready(format!("its health check: {e}"));
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(reason)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(reason)?;
    let url = format!("https://127.0.0.1:{port}/readyz");
    for _ in 0..600 {
        component.check_running()?;
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
            && response.text().await.is_ok_and(|body| body.trim() == "ok")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(component.not_ready(format!("{url} never answered ok")))
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, user_fields: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: capmaas-e2e\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: user\n  user:\n    {user_fields}\ncontexts:\n- name: capmaas-e2e\n  context:\n    cluster: capmaas-e2e\n    user: user\ncurrent-context: capmaas-e2e\n",
        ca = B64.encode(ca_pem),
    )
}

fn admin_kubeconfig(server: &str, certs: &CertFiles) -> String {
    kubeconfig_yaml(
        server,
        &certs.ca_pem,
        &format!(
            "client-certificate-data: {}\n    client-key-data: {}",
            B64.encode(&certs.admin_cert_pem),
            B64.encode(&certs.admin_key_pem)
        ),
    )
}
