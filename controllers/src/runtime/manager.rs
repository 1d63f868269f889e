//! Wires the manager together: clients, start-up discovery, leader election, controllers, the
//! orphan sweep and the HTTP servers, all stopped by one shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use capmaas_api::MaasMachine;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Config};
use maas_client::TlsConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::maas::credentials::{MaasConnector, MaasCredentials, ObserverWiring};
use crate::runtime::context::Context;
use crate::runtime::discovery::{
    contract_for, discover_capi, maas_cluster_crd, management_identity, status_shape_for,
    watch_scope,
};
use crate::runtime::events::EventPublisher;
use crate::runtime::flags::{Flags, parse_bind_address};
use crate::runtime::leader;
use crate::runtime::lease_gate::ActGate;
use crate::runtime::memo::Memo;
use crate::runtime::metrics::rest_client::RestClientMetrics;
use crate::runtime::metrics::{MaasRequestCounter, Metrics};
use crate::runtime::servers::{Readiness, metrics_router, probe_router, serve};
use crate::runtime::shutdown::Shutdown;
use crate::sweep::runner::orphan_sweep;
use crate::{cluster, machine, template};

/// How long in-flight reconciles may run on after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the manager stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Kubernetes client configuration.
    #[error("kubernetes client: {0}")]
    KubeConfig(String),
    /// A bind address flag did not parse.
    #[error("bind address {0:?}: {1}")]
    BindAddress(String, std::net::AddrParseError),
    /// An HTTP server could not start.
    #[error(transparent)]
    Serve(#[from] crate::runtime::servers::ServeError),
    /// The MAAS CA bundle could not be read.
    #[error("MAAS CA bundle {path}: {source}")]
    CaBundle {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed or leadership was lost.
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
}

/// The Kubernetes client, its requests counted in `rest_client_requests_total`.
async fn kube_client(flags: &Flags, metrics: &Arc<Metrics>) -> Result<Client, ManagerError> {
    let config = match &flags.kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| ManagerError::KubeConfig(e.to_string()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ManagerError::KubeConfig(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| ManagerError::KubeConfig(e.to_string()))?,
    };
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let counted = RestClientMetrics::new(metrics.clone(), &host);
    Ok(ClientBuilder::try_from(config)
        .map_err(|e| ManagerError::KubeConfig(e.to_string()))?
        .with_layer(&counted)
        .build())
}

/// Runs the manager until shutdown.
pub async fn run(flags: Flags) -> Result<(), ManagerError> {
    let shutdown = Shutdown::new();
    shutdown.on_os_signals();
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let servers = start_servers(&flags, &readiness, &metrics, &shutdown).await?;
    let client = kube_client(&flags, &metrics).await?;
    for ignored in flags.go_provider.ignored() {
        info!("accepted and ignored: {ignored}");
    }
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("capmaas-{}", std::process::id()));
    if flags.leader_elect {
        // A standby is Ready, as controller-runtime's managers are: a rolling update with
        // maxUnavailable 0 waits for the new pod's readiness, and the new pod can lead only
        // once the old one has let go of the Lease.
        readiness.set_ready(true);
    }
    let namespace = watch_scope(&client, flags.watch_namespace()).await;
    let leadership = match lead(&flags, &client, namespace.as_deref(), &identity, &shutdown).await {
        Ok(l) => l,
        Err(leader::LeaderError::ShutdownFirst) => return join_servers(servers).await,
        Err(e) => return Err(e.into()),
    };
    if leadership.is_some() {
        metrics.leading(&flags.leader_election_id, true);
    }
    let (wake, woken) = mpsc::unbounded_channel();
    let wiring = ObserverWiring {
        wake,
        shutdown: shutdown.clone(),
    };
    let gate = match &leadership {
        Some(l) => l.gate(client.clone(), &shutdown),
        None => Arc::new(ActGate::always()),
    };
    let scope = Scope {
        namespace,
        gate,
        watch_health: readiness.watch_health(),
    };
    let ctx = Arc::new(context(&flags, client, &metrics, identity, wiring, scope).await?);
    let lost = run_controllers(&flags, ctx, woken, &readiness, leadership, &shutdown).await;
    if flags.leader_elect {
        metrics.leading(&flags.leader_election_id, false);
    }
    shutdown.trigger();
    readiness.set_ready(false);
    join_servers(servers).await?;
    info!("servers stopped");
    match lost {
        Some(leader::LeaderError::TaskEnded) => Err(leader::LeaderError::TaskEnded.into()),
        _ => {
            info!("stopped");
            Ok(())
        }
    }
}

/// Starts the probe and metrics servers the flags ask for.
async fn start_servers(
    flags: &Flags,
    readiness: &Readiness,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> Result<Vec<JoinHandle<std::io::Result<()>>>, ManagerError> {
    let mut servers = Vec::new();
    let bind = |flag: &String| {
        parse_bind_address(flag).map_err(|e| ManagerError::BindAddress(flag.clone(), e))
    };
    if let Some(addr) = bind(&flags.health_probe_bind_address)? {
        let (bound, task) = serve(addr, probe_router(readiness.clone()), shutdown.clone()).await?;
        info!(%bound, "serving /healthz and /readyz");
        servers.push(task);
    }
    if let Some(addr) = bind(&flags.metrics_bind_address)? {
        let (bound, task) = serve(addr, metrics_router(metrics.clone()), shutdown.clone()).await?;
        info!(%bound, "serving /metrics");
        servers.push(task);
    }
    Ok(servers)
}

/// Takes the leader Lease when the flags ask for leader election; `None` without it.
async fn lead(
    flags: &Flags,
    client: &Client,
    namespace: Option<&str>,
    identity: &str,
    shutdown: &Shutdown,
) -> Result<Option<leader::Leadership>, leader::LeaderError> {
    if !flags.leader_elect {
        return Ok(None);
    }
    let lease_ns = Some(flags.leader_election_namespace.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| namespace.map(str::to_string))
        .unwrap_or_else(|| client.default_namespace().to_string());
    let id = &flags.leader_election_id;
    leader::acquire(client.clone(), lease_ns.trim(), id, identity, shutdown)
        .await
        .map(Some)
}

/// The MAAS connector: provider-wide credentials, TLS settings, the request metrics and the
/// observers' wiring.
fn connector(
    flags: &Flags,
    metrics: &Arc<Metrics>,
    wiring: ObserverWiring,
) -> Result<MaasConnector, ManagerError> {
    let creds = MaasCredentials::from_parts(
        flags.maas_endpoint.as_deref(),
        flags.maas_api_key.as_deref(),
    );
    if creds.is_none() {
        warn!("MAAS_ENDPOINT or MAAS_API_KEY is not set; objects will report missing credentials");
    }
    let ca_bundle_pem = match &flags.maas_ca_bundle {
        // HyperShift can pass a Secret's value as an environment variable, not as a file.
        Some(pem)
            if pem
                .as_os_str()
                .as_encoded_bytes()
                .starts_with(b"-----BEGIN") =>
        {
            Some(pem.as_os_str().as_encoded_bytes().to_vec())
        }
        Some(path) => Some(
            std::fs::read(path).map_err(|source| ManagerError::CaBundle {
                path: path.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let tls = TlsConfig {
        ca_bundle_pem,
        insecure_skip_verify: flags.maas_insecure_skip_tls_verify,
    };
    let counter = Arc::new(MaasRequestCounter(metrics.clone()));
    Ok(MaasConnector::new(creds, tls, counter).with_observers(wiring))
}

/// Where this replica works: the watched namespace (`None` for all) and its gate on MAAS steps.
struct Scope {
    namespace: Option<String>,
    gate: Arc<ActGate>,
    watch_health: crate::runtime::watch_health::WatchHealth,
}

/// The shared context: start-up discovery, the connector and the events publisher.
async fn context(
    flags: &Flags,
    client: Client,
    metrics: &Arc<Metrics>,
    identity: String,
    wiring: ObserverWiring,
    scope: Scope,
) -> Result<Context, ManagerError> {
    let Scope {
        namespace,
        gate,
        watch_health,
    } = scope;
    let capi = discover_capi(&client).await;
    let crd = maas_cluster_crd(&client).await;
    let (contract, status_shape) = (contract_for(&crd, capi), status_shape_for(&crd));
    let management = management_identity(&client, namespace.as_deref()).await;
    info!(
        capi = capi.as_str(),
        ?contract,
        management = management.as_deref().unwrap_or("<unknown>"),
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "starting"
    );
    let reporter = Reporter {
        controller: "capmaas-controller-manager".into(),
        instance: Some(identity),
    };
    Ok(Context {
        events: EventPublisher::new(client.clone(), reporter),
        client,
        connector: connector(flags, metrics, wiring)?,
        metrics: metrics.clone(),
        capi,
        contract,
        default_zone: flags.default_zone().map(str::to_string),
        sync_period: flags.sync_period,
        namespace,
        watch_filter: flags.watch_filter().map(str::to_string),
        management,
        ready_machines: Memo::for_resync(flags.sync_period),
        cluster_views: Memo::for_resync(flags.sync_period),
        releases: Memo::for_resync(flags.sync_period),
        backoffs: Default::default(),
        capacity_refusals: Memo::for_resync(flags.sync_period),
        capacity_notes: Memo::for_resync(flags.sync_period),
        power_ons: Memo::for_resync(flags.sync_period),
        status_shape,
        watch_health,
        gate,
        identity_readers: Default::default(),
    })
}

/// Runs the controllers and the orphan sweep until shutdown or the loss of the Lease, and
/// reports the loss if that is what ended them.
async fn run_controllers(
    flags: &Flags,
    ctx: Arc<Context>,
    woken: mpsc::UnboundedReceiver<ObjectRef<MaasMachine>>,
    readiness: &Readiness,
    leadership: Option<leader::Leadership>,
    shutdown: &Shutdown,
) -> Option<leader::LeaderError> {
    let (machines, machine_store) =
        machine::watches::controller(ctx.clone(), flags.machine_concurrency, woken, shutdown);
    let (clusters, cluster_store) =
        cluster::watches::controller(ctx.clone(), flags.cluster_concurrency, shutdown);
    let templates = template::controller(ctx.clone(), shutdown);
    let ready_flag = readiness.clone();
    let ready_task = tokio::spawn(async move {
        if store_ready(&machine_store).await && store_ready(&cluster_store).await {
            ready_flag.set_ready(true);
            info!("caches synced; ready");
        }
    });
    let controllers = async {
        tokio::join!(templates, machines, clusters);
        info!("controllers stopped");
    };
    let ctx_gate = ctx.gate.clone();
    let (interval, grace) = (flags.orphan_sweep_interval, flags.orphan_sweep_grace);
    let sweep = orphan_sweep(ctx, interval, grace, shutdown.clone());
    let lost = async {
        match leadership {
            Some(l) => Some(l.watch_loss(shutdown.clone()).await),
            None => {
                shutdown.wait().await;
                None
            }
        }
    };
    let gate = ctx_gate;
    let (_, _, lost) = tokio::join!(with_grace(controllers, shutdown, &gate), sweep, lost);
    ready_task.abort();
    lost
}

/// Runs `controllers` until they end; after the shutdown signal they get a grace period, none
/// once the hold on the Lease has ended (another replica may take it soon). Every step is
/// durable, so cutting one short is safe (the next leader continues from the recorded state).
async fn with_grace(
    controllers: impl std::future::Future<Output = ()>,
    shutdown: &Shutdown,
    gate: &ActGate,
) {
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => {}
        _ = shutdown.wait() => {
            let grace = if gate.may_act() { SHUTDOWN_GRACE } else { Duration::ZERO };
            if tokio::time::timeout(grace, &mut controllers).await.is_err() {
                warn!("controllers did not stop within the grace period; abandoning in-flight work");
            }
        }
    }
}

/// Waits until a reflector store has its first full list. The store wakes only the most recent
/// of several waiters (the controller itself waits too), so the wait is re-polled every second.
async fn store_ready<K>(store: &kube::runtime::reflector::Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(result) =
            tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await
        {
            return result.is_ok();
        }
    }
}

async fn join_servers(
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> Result<(), ManagerError> {
    for s in servers {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "HTTP server failed"),
            Err(e) => error!(error = %e, "HTTP server task failed"),
        }
    }
    Ok(())
}
