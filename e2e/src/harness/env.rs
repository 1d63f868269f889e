//! The whole environment of an end-to-end test or the quickstart: control plane, Cluster API
//! core, our CRDs, the MAAS simulator (whose boot hook registers Nodes in the same API server)
//! and our manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams};
use maas_sim::world::system_id_for;
use maas_sim::{Inventory, SimConfig, SimHandle, Simulator};

use super::capi::CapiCore;
use super::control_plane::{ControlPlane, ControlPlaneOptions, client_from_kubeconfig};
use super::crds::{self, FIELD_MANAGER};
use super::error::HarnessError;
use super::leaks;
use super::manager::{Manager, ManagerOptions};
use super::tools;

/// What to start.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Plain machines in the simulator.
    pub machines: usize,
    /// GPU machines in the simulator.
    pub gpu_machines: usize,
    /// Simulated deploy time.
    pub deploy_seconds: f64,
    /// Start our manager (tests that drive it themselves say no).
    pub start_manager: bool,
    /// Extra manager flags.
    pub manager_args: Vec<String>,
    /// Where logs and data go; a fresh temporary directory when `None`.
    pub run_dir: Option<PathBuf>,
    /// An existing cluster (already running Cluster API core) to use instead of starting a
    /// control plane; defaults to `E2E_KUBECONFIG`, so tests can point at a cluster without
    /// touching the process environment.
    pub existing_kubeconfig: Option<PathBuf>,
    /// Confines the environment to one namespace of a cluster other environments use too: every
    /// manager it starts watches only this namespace (`--namespace`), and the simulator's
    /// machines get host names (so Node names) and system ids (so providerIDs) no other
    /// environment of this process uses.
    pub namespace: Option<String>,
    /// The simulator's main key is a non-admin user's (MAAS without RBAC as most sites run it).
    pub sim_non_admin: bool,
    /// The simulator keeps its state in a file of the run directory, so
    /// [`Env::restart_sim`] can stop and start it as MAAS restarts.
    pub sim_state_file: bool,
    /// The Cluster API core release the control plane runs.
    pub capi_release: tools::CapiRelease,
    /// Subnets of a second, third ... interface on every simulated machine (a data network
    /// beside the PXE one); empty: one interface.
    pub sim_extra_subnets: Vec<String>,
    /// Cluster API core runs with ClusterClass and managed topologies (its ClusterTopology
    /// feature gate); an environment of its own only.
    pub cluster_topology: bool,
    /// kube-scheduler runs beside the control plane, so that Pods get bound to the Nodes that fit
    /// them ([`ControlPlane::start_scheduler`]; what a Pod needs there: the [`super::control_plane`]
    /// module); an environment of its own only, as `cluster_topology`: on an existing or shared
    /// cluster it is ignored.
    pub scheduler: bool,
    /// When set, the simulator starts with this inventory instead of the generated one;
    /// `machines` and `gpu_machines` are then ignored. `namespace` still prefixes its host names
    /// and replaces its system ids with ones no other environment of this process uses, and
    /// non-empty `sim_extra_subnets` replace its extra subnets.
    pub sim_inventory: Option<Inventory>,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            machines: 10,
            gpu_machines: 2,
            deploy_seconds: 0.0,
            start_manager: true,
            manager_args: Vec::new(),
            run_dir: None,
            existing_kubeconfig: std::env::var_os("E2E_KUBECONFIG").map(PathBuf::from),
            namespace: None,
            sim_non_admin: false,
            sim_state_file: false,
            capi_release: tools::CapiRelease::Current,
            sim_extra_subnets: Vec::new(),
            cluster_topology: false,
            scheduler: false,
            sim_inventory: None,
        }
    }
}

/// A running environment. Dropping it kills every process; [`Env::stop`] stops them in order.
pub struct Env {
    /// The management (and workload) cluster client, with cluster-admin rights.
    pub client: kube::Client,
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The MAAS simulator.
    pub sim: SimHandle,
    /// Our manager, when started.
    pub manager: Option<Manager>,
    /// What the simulator was started with (its bound address and key filled in), for restarts.
    sim_config: SimConfig,
    control_plane: Option<ControlPlane>,
    capi: Option<CapiCore>,
    run_dir: PathBuf,
    namespace: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

impl Env {
    /// Starts everything. With `existing_kubeconfig` set (by default from `E2E_KUBECONFIG`), uses
    /// that cluster (which must already run Cluster API core) and starts only our CRDs, the
    /// simulator and the manager.
    pub async fn start(opts: EnvOptions) -> Result<Self, HarnessError> {
        let (temp, run_dir) = match &opts.run_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(HarnessError::io("creating", dir))?;
                (None, dir.clone())
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("capmaas-e2e-")
                    .tempdir()
                    .map_err(HarnessError::io("creating", "a temporary directory"))?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };

        let Cluster {
            control_plane,
            capi,
            kubeconfig,
            client,
        } = cluster_of(&opts, &run_dir).await?;

        let mut sim_config = sim_config(&opts, &kubeconfig, &run_dir);
        let sim = Simulator::start(sim_config.clone()).await?;
        sim_config.listen = sim.addr();
        sim_config.api_key = Some(sim.api_key().to_string());

        let mut env = Self {
            client,
            kubeconfig,
            sim,
            manager: None,
            sim_config,
            control_plane,
            capi,
            run_dir,
            namespace: opts.namespace.clone(),
            _temp: temp,
        };
        if opts.start_manager {
            env.manager = Some(
                env.start_manager("capmaas-manager", &opts.manager_args)
                    .await?,
            );
        }
        Ok(env)
    }

    /// Starts (another) manager process against this environment, confined to its namespace
    /// when it has one.
    pub async fn start_manager(
        &self,
        name: &str,
        extra_args: &[String],
    ) -> Result<Manager, HarnessError> {
        Manager::start(&self.manager_options(name, extra_args)).await
    }

    /// How [`Env::start_manager`] starts a manager: for a test that starts managers from a task
    /// of its own while the environment is busy elsewhere.
    pub fn manager_options(&self, name: &str, extra_args: &[String]) -> ManagerOptions {
        let scope = self.namespace.iter().map(|ns| format!("--namespace={ns}"));
        ManagerOptions {
            kubeconfig: self.kubeconfig.clone(),
            maas_endpoint: self.sim.url(),
            maas_api_key: self.sim.api_key().to_string(),
            extra_args: scope.chain(extra_args.iter().cloned()).collect(),
            run_dir: self.run_dir.clone(),
            name: name.to_string(),
        }
    }

    /// Another MAAS beside the environment's own, as a second site is: `machines` machines named
    /// `<scope>-node-NNN` with system ids no other simulator of this process uses, addresses from
    /// `subnet`, its own API key, and the same boot hook registering Nodes in this cluster.
    pub async fn other_maas(
        &self,
        scope: &str,
        machines: usize,
        subnet: &str,
    ) -> Result<SimHandle, HarnessError> {
        let mut inventory = scoped_inventory(scope, machines, 0);
        inventory.subnet = Some(subnet.to_string());
        let config = SimConfig {
            machines,
            gpu_machines: 0,
            inventory: Some(inventory),
            deploy_seconds: self.sim_config.deploy_seconds,
            kubeconfig: Some(self.kubeconfig.clone()),
            ..Default::default()
        };
        Ok(Simulator::start(config).await?)
    }

    /// Stops the simulator as a MAAS restart does (open connections cut, state written to its
    /// file), leaves it down for `down`, and starts it again from the file on the same address
    /// with the same key and the faults then in force. Returns the request counts of the run
    /// that ended: a restarted MAAS counts from zero. Needs `sim_state_file`.
    pub async fn restart_sim(
        &mut self,
        down: std::time::Duration,
    ) -> Result<maas_sim::RequestStats, HarnessError> {
        if self.sim_config.state_file.is_none() {
            return Err(HarnessError::Tools(
                "restart_sim needs EnvOptions::sim_state_file".into(),
            ));
        }
        let mut config = self.sim_config.clone();
        config.faults = self.sim.faults();
        let requests = self.sim.requests();
        self.sim.restart(config, down).await?;
        Ok(requests)
    }

    /// Restarts the environment's own etcd and kube-apiserver, down for `down` (see
    /// [`ControlPlane::restart_api_server`]); an environment on an existing cluster has none.
    pub async fn restart_api_server(
        &mut self,
        down: std::time::Duration,
    ) -> Result<(), HarnessError> {
        match self.control_plane.as_mut() {
            Some(cp) => cp.restart_api_server(down).await,
            None => Err(HarnessError::Tools(
                "restart_api_server needs a control plane of the environment's own".into(),
            )),
        }
    }

    /// The directory holding every log.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Creates a namespace for one test.
    pub async fn namespace(&self, name: &str) -> Result<(), HarnessError> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&ns),
            )
            .await?;
        Ok(())
    }

    /// Writes `<cluster>-kubeconfig` (key `value`), pointing back at this same API server: the
    /// workload cluster of every test is the management cluster itself.
    pub async fn workload_kubeconfig_secret(
        &self,
        namespace: &str,
        cluster: &str,
    ) -> Result<(), HarnessError> {
        let value = std::fs::read(&self.kubeconfig)
            .map_err(HarnessError::io("reading", &self.kubeconfig))?;
        let name = format!("{cluster}-kubeconfig");
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    "cluster.x-k8s.io/cluster-name".to_string(),
                    cluster.to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("cluster.x-k8s.io/secret".into()),
            data: Some(BTreeMap::from([(
                "value".to_string(),
                k8s_openapi::ByteString(value),
            )])),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await?;
        Ok(())
    }

    /// Where the MAAS API key, its token secret or a bootstrap token shows in `logs` or in the
    /// events and conditions of the environment's namespace (every namespace for an
    /// environment of its own): one line per finding, naming the kind and the place only.
    pub async fn secret_leaks(&self, logs: &[PathBuf]) -> Result<Vec<String>, HarnessError> {
        let namespace = self.namespace.as_deref();
        let mut needles = leaks::api_key_needles(self.sim.api_key());
        needles.extend(leaks::bootstrap_needles(&self.client, namespace).await?);
        let mut found = leaks::scan_logs(logs, &needles);
        found.extend(leaks::scan_objects(&self.client, namespace, &needles).await?);
        Ok(found)
    }

    /// Every log file of the environment, for printing when a test fails.
    pub fn log_files(&self) -> Vec<PathBuf> {
        let mut logs = self
            .control_plane
            .as_ref()
            .map(ControlPlane::logs)
            .unwrap_or_default();
        if let Some(capi) = &self.capi {
            logs.push(capi.manager.log().to_path_buf());
        }
        if let Some(m) = &self.manager {
            logs.push(m.log().to_path_buf());
        }
        logs
    }

    /// Prints the tail of every log (for a failing test).
    pub fn print_logs(&self, lines: usize) {
        for log in self.log_files() {
            eprintln!(
                "--- {} (last {lines} lines) ---\n{}",
                log.display(),
                super::process::tail(&log, lines)
            );
        }
    }

    /// Stops everything: our manager, the simulator, CAPI, then the control plane.
    pub async fn stop(mut self) {
        if let Some(m) = self.manager.take() {
            m.stop().await;
        }
        let _ = self.sim.shutdown().await;
        if let Some(capi) = self.capi.take() {
            capi.stop().await;
        }
        if let Some(cp) = self.control_plane.take() {
            cp.stop().await;
        }
    }
}

/// The cluster an environment runs on, with the processes behind it when they are its own.
struct Cluster {
    control_plane: Option<ControlPlane>,
    capi: Option<CapiCore>,
    kubeconfig: PathBuf,
    client: kube::Client,
}

/// The cluster of the environment: the existing one `opts` names (our CRDs installed in it), or
/// a control plane of its own in `run_dir` with Cluster API core (and kube-scheduler when asked).
async fn cluster_of(opts: &EnvOptions, run_dir: &Path) -> Result<Cluster, HarnessError> {
    if let Some(existing) = &opts.existing_kubeconfig {
        let client = client_from_kubeconfig(existing).await?;
        install_our_crds(&client).await?;
        return Ok(Cluster {
            control_plane: None,
            capi: None,
            kubeconfig: existing.clone(),
            client,
        });
    }
    let (mut cp, capi) = start_cluster(run_dir, opts.capi_release, opts.cluster_topology).await?;
    if opts.scheduler {
        cp.start_scheduler().await?;
    }
    Ok(Cluster {
        kubeconfig: cp.kubeconfig().to_path_buf(),
        client: cp.client(),
        control_plane: Some(cp),
        capi: Some(capi),
    })
}

/// The simulator the options ask for, its Nodes registered through `kubeconfig`.
fn sim_config(opts: &EnvOptions, kubeconfig: &Path, run_dir: &Path) -> SimConfig {
    let inventory = match (opts.sim_inventory.clone(), opts.namespace.as_deref()) {
        (Some(given), Some(ns)) => Some(scope_inventory(ns, given)),
        (Some(given), None) => Some(given),
        (None, Some(ns)) => Some(scoped_inventory(ns, opts.machines, opts.gpu_machines)),
        (None, None) if !opts.sim_extra_subnets.is_empty() => {
            Some(Inventory::generate(opts.machines, opts.gpu_machines))
        }
        (None, None) => None,
    };
    let inventory = inventory.map(|mut inventory| {
        if !opts.sim_extra_subnets.is_empty() {
            inventory.extra_subnets.clone_from(&opts.sim_extra_subnets);
        }
        inventory
    });
    SimConfig {
        machines: opts.machines,
        gpu_machines: opts.gpu_machines,
        inventory,
        deploy_seconds: opts.deploy_seconds,
        kubeconfig: Some(kubeconfig.to_path_buf()),
        non_admin: opts.sim_non_admin,
        state_file: opts.sim_state_file.then(|| run_dir.join("maas-state.json")),
        ..Default::default()
    }
}

/// A management cluster in `run_dir`: the control plane, our CRDs, then Cluster API core of
/// `release`, with ClusterClass when `cluster_topology`.
pub(crate) async fn start_cluster(
    run_dir: &Path,
    release: tools::CapiRelease,
    cluster_topology: bool,
) -> Result<(ControlPlane, CapiCore), HarnessError> {
    let bin_dir = tools::bin_dir()?;
    let capi_bin = tools::capi_bin_dir(release)?;
    let cp = ControlPlane::start(ControlPlaneOptions {
        bin_dir: bin_dir.clone(),
        run_dir: run_dir.to_path_buf(),
        controller_manager: true,
    })
    .await?;
    let client = cp.client();
    // Our CRDs first: CAPI's conversion webhook reads the infrastructure CRD's contract label
    // when it converts a Cluster.
    install_our_crds(&client).await?;
    let capi = CapiCore::start_gated(
        &client,
        &capi_bin,
        &tools::capi_manifests_dir(&capi_bin),
        cp.kubeconfig(),
        run_dir,
        cluster_topology,
    )
    .await?;
    Ok((cp, capi))
}

/// The generated inventory with host names prefixed by `namespace` and system ids from a range
/// no other scoped simulator of this process draws from: on a shared API server, Nodes are
/// cluster-wide and Cluster API binds them to Machines by providerID.
fn scoped_inventory(namespace: &str, machines: usize, gpu_machines: usize) -> Inventory {
    scope_inventory(namespace, Inventory::generate(machines, gpu_machines))
}

/// `inventory` with host names prefixed by `namespace` and system ids from the range
/// [`scoped_inventory`] draws from.
fn scope_inventory(namespace: &str, mut inventory: Inventory) -> Inventory {
    static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);
    let first = NEXT_INDEX.fetch_add(inventory.machines.len(), Ordering::Relaxed);
    for (i, machine) in inventory.machines.iter_mut().enumerate() {
        machine.hostname = format!("{namespace}-{}", machine.hostname);
        machine.system_id = Some(system_id_for(first + i));
    }
    inventory
}

async fn install_our_crds(client: &kube::Client) -> Result<(), HarnessError> {
    let ours = crds::read_dir(&tools::workspace_root().join("config/crd/bases"))?;
    crds::install(client, &ours).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn scoped_simulators_name_their_machines_apart() {
        let a = scoped_inventory("pause", 2, 1);
        let b = scoped_inventory("mhc", 2, 1);
        let hosts: Vec<&str> = a.machines.iter().map(|m| m.hostname.as_str()).collect();
        assert_eq!(
            hosts,
            vec!["pause-node-001", "pause-node-002", "pause-gpu-001"]
        );
        let ids: BTreeSet<_> = a
            .machines
            .iter()
            .chain(&b.machines)
            .filter_map(|m| m.system_id.clone())
            .collect();
        assert_eq!(ids.len(), 6, "no system id twice: {ids:?}");
        assert_eq!(
            b.machines[0].cpu, a.machines[0].cpu,
            "same hardware as unscoped"
        );
    }

    #[test]
    fn a_given_inventory_replaces_the_generated_one_and_is_scoped_like_it() {
        let mut given = Inventory::generate(1, 1);
        given.machines[0].hostname = "big-one".into();
        given.extra_subnets = vec!["10.9.0.0/24".into()];
        let hosts = |config: &SimConfig| -> Vec<String> {
            let inventory = config.inventory.as_ref().unwrap();
            inventory
                .machines
                .iter()
                .map(|m| m.hostname.clone())
                .collect()
        };
        let opts = EnvOptions {
            machines: 5,
            gpu_machines: 5,
            sim_inventory: Some(given),
            ..Default::default()
        };
        let config = sim_config(&opts, Path::new("kubeconfig"), Path::new("run"));
        assert_eq!(hosts(&config), ["big-one", "gpu-001"]);
        let inventory = config.inventory.as_ref().unwrap();
        assert_eq!(inventory.extra_subnets, ["10.9.0.0/24"], "its own kept");

        let opts = EnvOptions {
            namespace: Some("ns".into()),
            sim_extra_subnets: vec!["10.8.0.0/24".into()],
            ..opts
        };
        let config = sim_config(&opts, Path::new("kubeconfig"), Path::new("run"));
        assert_eq!(hosts(&config), ["ns-big-one", "ns-gpu-001"]);
        let inventory = config.inventory.as_ref().unwrap();
        assert!(inventory.machines.iter().all(|m| m.system_id.is_some()));
        assert_eq!(inventory.extra_subnets, ["10.8.0.0/24"], "the options' win");
    }
}
