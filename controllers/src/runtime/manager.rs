//! Wires the manager together: clients, start-up discovery, leader election, controllers, the
//! orphan sweep and the HTTP servers, all stopped by one shutdown signal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capmaas_api::capi::{CapiVersion, Cluster, Machine};
use capmaas_api::{Contract, MaasCluster, MaasMachine, MaasMachineTemplate};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PartialObjectMeta, Resource};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Config};
use maas_client::TlsConfig;
use tracing::{error, info, warn};

use crate::k8s::capi_api::{CapiKind, capi_api, capi_resource, decode};
use crate::maas::credentials::{MaasConnector, MaasCredentials};
use crate::machine::bootstrap_index::BootstrapIndex;
use crate::runtime::context::Context;
use crate::runtime::error::ReconcileError;
use crate::runtime::flags::{Flags, parse_bind_address};
use crate::runtime::leader;
use crate::runtime::metrics::{MaasRequestCounter, Metrics};
use crate::runtime::servers::{Readiness, metrics_router, probe_router, serve};
use crate::runtime::shutdown::Shutdown;
use crate::sweep::{LiveMachines, LiveSet, Sweeper};
use crate::{
    cluster::reconcile as cluster, machine::reconcile as machine, template::reconcile as template,
};

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

async fn kube_client(flags: &Flags) -> Result<Client, ManagerError> {
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
    Client::try_from(config).map_err(|e| ManagerError::KubeConfig(e.to_string()))
}

/// The CAPI version to read, from discovery; v1beta1 when discovery fails (CAPI not installed
/// yet, or no permission), since every CAPI release serves it.
async fn discover_capi(client: &Client) -> CapiVersion {
    match kube::discovery::group(client, capmaas_api::capi::GROUP).await {
        Ok(group) => {
            let versions: Vec<&str> = group.versions().collect();
            CapiVersion::preferred(&versions).unwrap_or(CapiVersion::V1Beta1)
        }
        Err(error) => {
            warn!(%error, "cannot discover Cluster API versions; reading v1beta1");
            CapiVersion::V1Beta1
        }
    }
}

/// The contract to write, from our CRD's labels and what CAPI serves.
async fn discover_contract(client: &Client, capi: CapiVersion) -> Contract {
    let crd_name = format!("{}.{}", MaasCluster::plural(&()), capmaas_api::GROUP);
    match Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(&crd_name)
        .await
    {
        Ok(crd) => Contract::negotiate(
            crd.as_ref().and_then(|c| c.metadata.labels.as_ref()),
            capi == CapiVersion::V1Beta2,
        ),
        Err(error) => {
            warn!(%error, "cannot read the MaasCluster CRD; writing the v1beta1 contract");
            Contract::V1Beta1
        }
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

struct KubeLive {
    api: Api<MaasMachine>,
}

impl LiveMachines for KubeLive {
    async fn live(&self) -> Result<LiveSet, ReconcileError> {
        let list = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|source| ReconcileError::Kube {
                action: "list MaasMachines",
                source,
            })?;
        let mut live = LiveSet::default();
        for m in list.items {
            if let Some(uid) = m.metadata.uid {
                live.uids.insert(uid);
            }
            if let Some(id) = m.spec.system_id.filter(|id| !id.is_empty()) {
                live.system_ids.insert(id);
            }
        }
        Ok(live)
    }
}

/// This management cluster's identity: the uid of the MaasMachine CRD, readable with the
/// cluster-wide role and the namespaced one alike, stable across restarts and upgrades, and
/// different in every management cluster (a moved cluster's target has its own CRD).
async fn management_identity(client: &Client) -> Option<String> {
    let crd_name = format!("{}.{}", MaasMachine::plural(&()), capmaas_api::GROUP);
    match Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(&crd_name)
        .await
    {
        Ok(Some(crd)) => crd.metadata.uid.filter(|u| !u.is_empty()),
        Ok(None) => {
            warn!(crd = %crd_name, "CRD not found; the orphan sweep stays off");
            None
        }
        Err(error) => {
            warn!(%error, "cannot read the MaasMachine CRD; the orphan sweep stays off");
            None
        }
    }
}

/// Runs the manager until shutdown.
pub async fn run(flags: Flags) -> Result<(), ManagerError> {
    let shutdown = Shutdown::new();
    shutdown.on_os_signals();
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();

    let mut servers = Vec::new();
    let probe_addr = parse_bind_address(&flags.health_probe_bind_address)
        .map_err(|e| ManagerError::BindAddress(flags.health_probe_bind_address.clone(), e))?;
    let metrics_addr = parse_bind_address(&flags.metrics_bind_address)
        .map_err(|e| ManagerError::BindAddress(flags.metrics_bind_address.clone(), e))?;
    if let Some(addr) = probe_addr {
        let (bound, task) = serve(addr, probe_router(readiness.clone()), shutdown.clone()).await?;
        info!(%bound, "serving /healthz and /readyz");
        servers.push(task);
    }
    if let Some(addr) = metrics_addr {
        let (bound, task) = serve(addr, metrics_router(metrics.clone()), shutdown.clone()).await?;
        info!(%bound, "serving /metrics");
        servers.push(task);
    }

    let client = kube_client(&flags).await?;
    let namespace = flags.watch_namespace().map(str::to_string);
    let capi = discover_capi(&client).await;
    let contract = discover_contract(&client, capi).await;
    let management = management_identity(&client).await;
    info!(
        capi = capi.as_str(),
        ?contract,
        management = management.as_deref().unwrap_or("<unknown>"),
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "starting"
    );

    let creds = MaasCredentials::from_parts(
        flags.maas_endpoint.as_deref(),
        flags.maas_api_key.as_deref(),
    );
    if creds.is_none() {
        warn!("MAAS_ENDPOINT or MAAS_API_KEY is not set; objects will report missing credentials");
    }
    let ca_bundle_pem = match &flags.maas_ca_bundle {
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
    let connector = MaasConnector::new(creds, tls, Arc::new(MaasRequestCounter(metrics.clone())));

    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("capmaas-{}", std::process::id()));
    let leadership = if flags.leader_elect {
        let lease_ns = Some(flags.leader_election_namespace.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| namespace.clone())
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
            })
            .unwrap_or_else(|| "default".to_string());
        match leader::acquire(
            client.clone(),
            lease_ns.trim(),
            &flags.leader_election_id,
            &identity,
            &shutdown,
        )
        .await
        {
            Ok(l) => Some(l),
            Err(leader::LeaderError::ShutdownFirst) => return join_servers(servers).await,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "capmaas-controller-manager".into(),
            instance: Some(identity),
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        connector,
        metrics: metrics.clone(),
        recorder,
        capi,
        contract,
        default_zone: flags.default_zone().map(str::to_string),
        sync_period: flags.sync_period,
        namespace: namespace.clone(),
        management,
        deploying_since: Mutex::new(Default::default()),
        confirmed_ready: Mutex::new(Default::default()),
        cluster_memo: Mutex::new(Default::default()),
        next_poll: Mutex::new(Default::default()),
    });

    let ns = namespace.as_deref();
    let wc = watcher::Config::default().any_semantic();

    let machines = Controller::new(scoped::<MaasMachine>(&client, ns), wc.clone())
        .with_config(controller::Config::default().concurrency(flags.machine_concurrency));
    let machine_store = machines.store();
    let mm_for_cluster = machine_store.clone();
    let bootstrap_index = Arc::new(BootstrapIndex::default());
    let index_for_machines = bootstrap_index.clone();
    // Bootstrap Secrets are watched as metadata only: a change wakes the MaasMachines whose
    // Machine names the Secret, and no Secret data is held in memory.
    let machines = machines
        .watches_with(
            capi_api(&client, CapiKind::Machine, capi, ns),
            capi_resource(CapiKind::Machine, capi),
            wc.clone(),
            move |obj| {
                decode::<Machine>(obj).ok().and_then(|m| {
                    index_for_machines.record(&m);
                    machine::machine_to_maas_machine(&m)
                })
            },
        )
        .watches(
            scoped::<PartialObjectMeta<Secret>>(&client, ns),
            wc.clone(),
            move |secret| {
                bootstrap_index.readers(
                    secret.metadata.namespace.as_deref().unwrap_or_default(),
                    secret.metadata.name.as_deref().unwrap_or_default(),
                )
            },
        )
        .watches_with(
            capi_api(&client, CapiKind::Cluster, capi, ns),
            capi_resource(CapiKind::Cluster, capi),
            wc.clone(),
            move |obj| {
                decode::<Cluster>(obj)
                    .map(|c| machine::cluster_maas_machines(&mm_for_cluster, &c))
                    .unwrap_or_default()
            },
        )
        .graceful_shutdown_on(shutdown.wait());

    let clusters = Controller::new(scoped::<MaasCluster>(&client, ns), wc.clone())
        .with_config(controller::Config::default().concurrency(flags.cluster_concurrency));
    let cluster_store = clusters.store();
    let cs_for_machines = cluster_store.clone();
    let clusters = clusters
        .watches_with(
            capi_api(&client, CapiKind::Cluster, capi, ns),
            capi_resource(CapiKind::Cluster, capi),
            wc.clone(),
            |obj| {
                decode::<Cluster>(obj)
                    .ok()
                    .and_then(|c| cluster::cluster_to_maas_cluster(&c))
            },
        )
        .watches(scoped::<MaasMachine>(&client, ns), wc.clone(), move |mm| {
            cluster::maas_machine_to_maas_cluster(&cs_for_machines, &mm)
        })
        .graceful_shutdown_on(shutdown.wait());

    let templates = Controller::new(scoped::<MaasMachineTemplate>(&client, ns), wc.clone())
        .with_config(controller::Config::default().concurrency(2))
        .graceful_shutdown_on(shutdown.wait());

    let ready_flag = readiness.clone();
    let ready_task = tokio::spawn(async move {
        if store_ready(&machine_store).await && store_ready(&cluster_store).await {
            ready_flag.set_ready(true);
            info!("caches synced; ready");
        }
    });

    let machine_run = machines
        .run(machine::reconcile, machine::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(error) = r {
                tracing::debug!(%error, "maasmachine reconcile");
            }
        });
    let cluster_run = clusters
        .run(cluster::reconcile, cluster::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(error) = r {
                tracing::debug!(%error, "maascluster reconcile");
            }
        });

    let sweep = orphan_sweep(
        ctx.clone(),
        flags.orphan_sweep_interval,
        flags.orphan_sweep_grace,
        shutdown.clone(),
    );
    let lost = async {
        match leadership {
            Some(l) => Some(l.watch_loss(shutdown.clone()).await),
            None => {
                shutdown.wait().await;
                None
            }
        }
    };
    let template_run = templates
        .run(template::reconcile, template::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(error) = r {
                tracing::debug!(%error, "maasmachinetemplate reconcile");
            }
        });
    let controllers = async {
        tokio::join!(
            async {
                template_run.await;
                info!("maasmachinetemplate controller stopped");
            },
            async {
                machine_run.await;
                info!("maasmachine controller stopped");
            },
            async {
                cluster_run.await;
                info!("maascluster controller stopped");
            },
        )
    };
    let controllers_and_sweep = async {
        tokio::pin!(controllers);
        tokio::select! {
            _ = &mut controllers => {}
            _ = shutdown.wait() => {
                // In-flight reconciles get a grace period; every step is durable, so cutting one
                // short is safe (the next leader continues from the recorded state).
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut controllers).await.is_err() {
                    warn!("controllers did not stop within the grace period; abandoning in-flight work");
                }
            }
        }
    };
    let (_, _, lost) = tokio::join!(controllers_and_sweep, sweep, lost);
    shutdown.trigger();
    ready_task.abort();
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

async fn orphan_sweep(ctx: Arc<Context>, interval: Duration, grace: Duration, shutdown: Shutdown) {
    if interval.is_zero() {
        return;
    }
    let mut sweeper = Sweeper::new(ctx.namespace.clone(), ctx.management.clone(), grace);
    let live = KubeLive {
        api: scoped::<MaasMachine>(&ctx.client, ctx.namespace.as_deref()),
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
        let client = match ctx.connector.client(None) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(error) => {
                warn!(%error, "orphan sweep: no MAAS client");
                continue;
            }
        };
        match sweeper
            .sweep_once(&client, &live, std::time::Instant::now())
            .await
        {
            Ok(released) if !released.is_empty() => {
                info!(count = released.len(), "orphan sweep released machines")
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "orphan sweep failed"),
        }
    }
}
