//! Starting and stopping a simulator: the listener, the accept loop (plain hyper, so an
//! injected connection reset really closes the socket), the transition ticker and the snapshot
//! writer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::config::{ADMIN_USER, ApiKey, NON_ADMIN_USER, OTHER_USER, SimConfig};
use crate::error::SimError;
use crate::faults::{FaultConfig, FaultState};
use crate::inventory::Inventory;
use crate::ledger::LedgerEntry;
use crate::lifecycle::Timing;
use crate::oauth::{Credentials, NonceStore};
use crate::reply::ResetConnection;
use crate::requests::RequestStats;
use crate::shared::{Shared, StateView, lock};
use crate::world::World;

/// How often due transitions are applied without a request arriving.
const TICK: Duration = Duration::from_millis(50);
/// The snapshot is written at most once per this many ticks (and at shutdown).
const SAVE_EVERY_TICKS: u32 = 5;

/// Entry point of the library.
#[derive(Debug)]
pub struct Simulator;

/// A running simulator. Dropping it without `shutdown` leaves the server running until the
/// runtime ends.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    api_key: String,
    admin_api_key: String,
    other_api_key: String,
    shared: Arc<Shared>,
    state_file: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
struct InjectedReset;

fn credentials(key: &ApiKey, username: &str) -> Credentials {
    Credentials {
        consumer_key: key.consumer_key.clone(),
        token_key: key.token_key.clone(),
        token_secret: key.token_secret.clone(),
        username: username.to_string(),
    }
}

fn initial_world(config: &SimConfig, inventory: &Inventory) -> Result<World, SimError> {
    if let Some(path) = &config.state_file
        && let Some(world) = crate::snapshot::load(path)?
    {
        tracing::info!(path = %path.display(), machines = world.machines.len(), "state restored");
        return Ok(world);
    }
    let mut world = World::from_inventory(inventory)?;
    world.predeploy(OTHER_USER, config.effective_other_user_machines());
    Ok(world)
}

/// The keys served: the main key (the admin's, or the non-admin user's with `non_admin`),
/// the admin key, the other user's key and the configured users' keys.
struct Keys {
    main: ApiKey,
    admin: ApiKey,
    other: ApiKey,
    all: Vec<Credentials>,
}

fn keys(config: &SimConfig) -> Result<Keys, SimError> {
    let main = match &config.api_key {
        Some(k) => ApiKey::parse(k)?,
        None => ApiKey::generate(),
    };
    let (admin, main_user) = if config.non_admin {
        (ApiKey::generate(), NON_ADMIN_USER)
    } else {
        (main.clone(), ADMIN_USER)
    };
    let other = ApiKey::generate();
    let mut all = vec![
        credentials(&main, main_user),
        credentials(&other, OTHER_USER),
    ];
    if config.non_admin {
        all.push(credentials(&admin, ADMIN_USER));
    }
    for user in &config.users {
        all.push(credentials(&ApiKey::parse(&user.api_key)?, &user.username));
    }
    Ok(Keys {
        main,
        admin,
        other,
        all,
    })
}

impl Simulator {
    /// Builds the state, binds the listener and starts serving.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let inventory = match (&config.inventory, &config.inventory_file) {
            (Some(inv), _) => inv.clone(),
            (None, Some(path)) => Inventory::load(path)?,
            (None, None) => Inventory::generate(config.machines, config.gpu_machines),
        };
        let world = initial_world(&config, &inventory)?;
        let keys = keys(&config)?;
        let mut faults = inventory.faults.clone().unwrap_or_default();
        merge_faults(&mut faults, config.faults.clone());

        let (hook_tx, hook_rx) = tokio::sync::mpsc::unbounded_channel();
        let hook = config.kubeconfig.clone().map(|path| (path, hook_rx));
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            nonces: Mutex::new(NonceStore::default()),
            faults: Mutex::new(FaultState::new(FaultConfig::default())),
            requests: Mutex::new(RequestStats::default()),
            keys: keys.all,
            timing: Timing {
                deploy: config.deploy_seconds.max(0.0),
                release: config.effective_release_seconds(),
                erase: config.effective_erase_seconds(),
            },
            dirty: AtomicBool::new(false),
            hook: hook.is_some().then_some(hook_tx),
        });
        let unknown = shared.set_faults(faults);
        if !unknown.is_empty() {
            return Err(SimError::Config(format!(
                "faults name unknown machines: {}",
                unknown.join(", ")
            )));
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Io {
                context: format!("binding {}", config.listen),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Io {
            context: "reading the bound address".to_string(),
            source,
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let router = Router::new()
            .merge(crate::admin::router())
            .fallback(crate::dispatch::serve)
            .with_state(shared.clone());
        let idle = Duration::from_secs_f64(config.idle_timeout_seconds.max(0.001));
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            router,
            idle,
            stop_rx.clone(),
        ))];
        tasks.push(tokio::spawn(ticker(
            shared.clone(),
            config.state_file.clone(),
            stop_rx.clone(),
        )));
        if let Some((path, rx)) = hook {
            tasks.push(tokio::spawn(crate::boot_hook::run(
                path,
                rx,
                stop_rx.clone(),
            )));
        }
        tracing::info!(%addr, machines = lock(&shared.world).machines.len(), "MAAS simulator listening");
        Ok(SimHandle {
            addr,
            api_key: keys.main.to_key_string(),
            admin_api_key: keys.admin.to_key_string(),
            other_api_key: keys.other.to_key_string(),
            shared,
            state_file: config.state_file,
            stop,
            tasks,
        })
    }
}

fn merge_faults(into: &mut FaultConfig, extra: FaultConfig) {
    into.rules.extend(extra.rules);
    into.break_machines.extend(extra.break_machines);
    into.deploy_failure_rate = into.deploy_failure_rate.max(extra.deploy_failure_rate);
    into.fail_next_deploys += extra.fail_next_deploys;
    into.break_next_deploys += extra.break_next_deploys;
    into.fail_deploy_machines.extend(extra.fail_deploy_machines);
    into.seed = extra.seed.or(into.seed);
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let router = router.clone();
                    async move {
                        let response = match router.oneshot(req.map(Body::new)).await {
                            Ok(r) => r,
                            Err(never) => match never {},
                        };
                        if response.extensions().get::<ResetConnection>().is_some() {
                            return Err(InjectedReset);
                        }
                        Ok::<_, InjectedReset>(response)
                    }
                });
                // Waiting for the next request's head is what an idle keep-alive connection
                // does, so the header read timeout closes idle connections, as MAAS's front
                // end does: a client opening a new pool every time cannot pile them up.
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(idle)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Errors here are clients going away or injected resets.
                    let _ = conn.await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

fn save_if_dirty(shared: &Shared, state_file: Option<&PathBuf>) {
    if !shared.dirty.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some(path) = state_file else { return };
    let world = lock(&shared.world).clone();
    if let Err(error) = crate::snapshot::save(path, &world) {
        tracing::warn!(%error, "saving state failed");
        shared.dirty.store(true, Ordering::Release);
    }
}

async fn ticker(shared: Arc<Shared>, state_file: Option<PathBuf>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                {
                    let mut world = lock(&shared.world);
                    shared.advance(&mut world, Timestamp::now());
                }
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(SAVE_EVERY_TICKS) {
                    save_if_dirty(&shared, state_file.as_ref());
                }
            }
            _ = stop.changed() => break,
        }
    }
}

impl SimHandle {
    /// The MAAS URL clients are given: `http://ADDR/MAAS/`.
    pub fn url(&self) -> String {
        format!("http://{}/MAAS/", self.addr)
    }

    /// The API base: `http://ADDR/MAAS/api/2.0/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/MAAS/api/2.0/", self.addr)
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The main API key served: the admin's, or the non-admin user's with `non_admin`.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The administrator's API key (the main key unless `non_admin`).
    pub fn admin_api_key(&self) -> &str {
        &self.admin_api_key
    }

    /// The API key of `OTHER_USER`, the owner of the other user's machines.
    pub fn other_api_key(&self) -> &str {
        &self.other_api_key
    }

    /// Every machine's state, as `GET /_sim/state` shows it.
    pub fn state(&self) -> StateView {
        self.shared.state_view()
    }

    /// Request counts and log, as `GET /_sim/requests` shows them.
    pub fn requests(&self) -> RequestStats {
        lock(&self.shared.requests).clone()
    }

    /// What MAAS did to machines, in order (kept in the state file across restarts).
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        lock(&self.shared.world).ledger.clone()
    }

    /// The fault configuration now in force, counters as they stand.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.shared.faults).config().clone()
    }

    /// Faults injected since the fault configuration was last set, by kind.
    pub fn faults_injected(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.shared.faults).injected().clone()
    }

    /// Clears the request counts and log.
    pub fn reset_requests(&self) {
        *lock(&self.shared.requests) = RequestStats::default();
    }

    /// Replaces the fault configuration; returns machine names it did not know.
    pub fn set_faults(&self, faults: FaultConfig) -> Vec<String> {
        self.shared.set_faults(faults)
    }

    /// Stops serving, waits for open connections (bounded) and writes the snapshot.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.stop_serving().await
    }

    /// Stops as MAAS does when it restarts (open connections cut after a bounded wait, state
    /// written), stays down for `down`, then starts again from `config`: with its state file,
    /// the machines and the ledger carry on where they were; the request counts start afresh.
    pub async fn restart(&mut self, config: SimConfig, down: Duration) -> Result<(), SimError> {
        self.stop_serving().await?;
        tokio::time::sleep(down).await;
        *self = Simulator::start(config).await?;
        Ok(())
    }

    async fn stop_serving(&mut self) -> Result<(), SimError> {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(6), task).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(e)) => return Err(SimError::Join(e.to_string())),
            }
        }
        if let Some(path) = &self.state_file {
            let world = lock(&self.shared.world).clone();
            crate::snapshot::save(path, &world)?;
        }
        Ok(())
    }
}
