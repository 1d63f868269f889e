//! The chaos campaign: a cluster of three control-plane Machines and MachineDeployments that
//! scale up, scale down and are deleted and created again, on the real API server and CAPI
//! core, while the manager is killed with SIGKILL at random moments and restarted, under the
//! simulator's fault mix (503 and 409 with Retry-After, resets before apply, answers lost after
//! apply, 0 to 2 s latency, failed deployments, one machine going Broken mid-deployment) as a
//! non-admin MAAS user. The audit reads the simulator's state and ledger, not our objects.
//!
//! `make test` runs a reduced size; `make chaos` runs the full one (50 machines, 100 kills).
//! `CHAOS_MACHINES`, `CHAOS_KILLS`, `CHAOS_KILL_GAP_MS` (mean gap between kills) and
//! `CHAOS_SEED` set it; the seed is printed so a failing run can be repeated.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use capmaas_e2e::harness::audit::{self, MaasAudit};
use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, Manager, ManagerOptions, TestEnv};
use capmaas_e2e::harness::{cluster_yaml, manifests, scenario};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject};
use maas_sim::{FaultConfig, FaultRule};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;

const NS: &str = "chaos";
const CLUSTER: &str = "chaos";
const CONTROL_PLANE: usize = 3;
const POLL: Duration = Duration::from_secs(1);
/// Bound of one phase's convergence (many kills and faults land in it).
const PHASE_LIMIT: Duration = Duration::from_secs(900);
/// Bound for a settled audit once the Machines are where they were asked to be: releases of
/// scaled-down machines finish, answers held past a timeout arrive.
const SETTLE_LIMIT: Duration = Duration::from_secs(180);
/// Seconds a deployment takes: longer than Cluster API takes to delete a deleted Machine's
/// Node once its MaasMachine is gone. It deletes the Node by name; a MAAS machine freed,
/// allocated again and deployed under the same host name before that delete would lose its new
/// Node. Real MAAS deployments take minutes, which rules that out.
const DEPLOY_SECONDS: f64 = 15.0;

/// The size of a campaign, from the environment.
#[derive(Debug, Clone, Copy)]
struct Campaign {
    machines: usize,
    kills: usize,
    kill_gap: Duration,
    seed: u64,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Campaign {
    fn from_env() -> Self {
        let seed = env_number("CHAOS_SEED", rand::rng().random());
        Self {
            machines: env_number("CHAOS_MACHINES", 12) as usize,
            kills: env_number("CHAOS_KILLS", 20) as usize,
            kill_gap: Duration::from_millis(env_number("CHAOS_KILL_GAP_MS", 4000)),
            seed,
        }
    }

    /// Workers at most: every machine but the control plane's, the other user's two and a few
    /// spares for failed deployments.
    fn max_workers(&self) -> usize {
        let spares = (self.machines / 10).max(2);
        self.machines
            .saturating_sub(CONTROL_PLANE + 2 + spares)
            .max(2)
    }

    /// The kills spent while the cluster scales; the rest (one in twenty, at least one) land
    /// while it is deleted, which takes a fraction of the time.
    fn kills_while_scaling(&self) -> usize {
        self.kills.saturating_sub((self.kills / 20).max(1))
    }

    /// The MachineDeployments of each phase of a cycle, by name: up, delete one and grow the
    /// other, shrink and create a new one.
    fn phases(&self) -> Vec<BTreeMap<&'static str, usize>> {
        let w = self.max_workers();
        vec![
            BTreeMap::from([("a", w.div_ceil(2)), ("b", w / 2)]),
            BTreeMap::from([("a", w)]),
            BTreeMap::from([("a", (w / 3).max(1)), ("c", (w / 3).max(1))]),
        ]
    }
}

/// The simulator's share of the chaos, on every operation.
fn fault_mix(seed: u64) -> FaultConfig {
    let error = |status: u16, rate: f64| FaultRule {
        error_rate: rate,
        status,
        retry_after: Some(1),
        ..FaultRule::on("*")
    };
    FaultConfig {
        rules: vec![
            error(503, 0.10),
            error(409, 0.05),
            FaultRule {
                reset_rate: 0.02,
                ..FaultRule::on("*")
            },
            FaultRule {
                lose_rate: 0.02,
                ..FaultRule::on("*")
            },
            FaultRule {
                latency_jitter_ms: 2000,
                ..FaultRule::on("*")
            },
        ],
        deploy_failure_rate: 0.05,
        break_next_deploys: 1,
        seed: Some(seed),
        ..Default::default()
    }
}

/// The Cluster (endpoint from MAAS DNS), its bootstrap Secret, the control-plane Machines and
/// the workers' template.
fn cluster_manifest() -> String {
    let mut text = cluster_yaml::dns_cluster(CLUSTER, None);
    for i in 0..CONTROL_PLANE {
        text.push_str(
            &cluster_yaml::worker(CLUSTER, &format!("{CLUSTER}-cp-{i}"), 1).replace(
                "    cluster.x-k8s.io/cluster-name: chaos\n",
                "    cluster.x-k8s.io/cluster-name: chaos\n    cluster.x-k8s.io/control-plane: \"\"\n",
            ),
        );
    }
    text.push_str(&format!(
        r#"---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasMachineTemplate
metadata:
  name: {CLUSTER}-worker
spec:
  template:
    spec:
      image: ubuntu/jammy
      minCPU: 1
"#
    ));
    text
}

fn machine_deployment(name: &str, replicas: usize) -> String {
    format!(
        r#"---
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {CLUSTER}
spec:
  clusterName: {CLUSTER}
  replicas: {replicas}
  selector:
    matchLabels:
      pool: {name}
  template:
    metadata:
      labels:
        cluster.x-k8s.io/cluster-name: {CLUSTER}
        pool: {name}
    spec:
      clusterName: {CLUSTER}
      bootstrap:
        dataSecretName: {CLUSTER}-bootstrap
      infrastructureRef:
        apiGroup: infrastructure.cluster.x-k8s.io
        kind: MaasMachineTemplate
        name: {CLUSTER}-worker
"#
    )
}

/// Where the campaign is, for the killer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Scaling,
    Deleting,
    Done,
}

/// Kills the manager at random moments (a uniform draw within twice the mean gap after each
/// restart) and starts a fresh one: [`Campaign::kills_while_scaling`] of them while the cluster
/// scales, the rest while it is deleted. Returns the manager running at the end.
async fn killer(
    base: ManagerOptions,
    first: Manager,
    c: Campaign,
    mut stage: watch::Receiver<Stage>,
    done: watch::Sender<usize>,
) -> Result<Manager, HarnessError> {
    let mut rng = StdRng::seed_from_u64(c.seed ^ 0x6b69_6c6c);
    let mut manager = first;
    let mut count = 0;
    loop {
        let now = *stage.borrow_and_update();
        if count >= c.kills || now == Stage::Done {
            return Ok(manager);
        }
        if now == Stage::Scaling && count >= c.kills_while_scaling() {
            // The rest are for the deletion.
            if stage.changed().await.is_err() {
                return Ok(manager);
            }
            continue;
        }
        let wait = c.kill_gap.mul_f64(rng.random_range(0.0..2.0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stage.changed() => continue,
        }
        manager.kill().await;
        count += 1;
        eprintln!("chaos: kill {count} of {} (SIGKILL), {now:?}", c.kills);
        let _ = done.send(count);
        manager = Manager::start(&ManagerOptions {
            name: format!("{}-{count}", base.name),
            ..base.clone()
        })
        .await?;
    }
}

/// Applies the phase's MachineDeployments and deletes the others.
async fn apply_phase(
    env: &Env,
    phase: &BTreeMap<&'static str, usize>,
    deployments: &Api<DynamicObject>,
) -> Result<(), HarnessError> {
    for name in ["a", "b", "c"] {
        match phase.get(name) {
            Some(&replicas) => {
                let text = machine_deployment(name, replicas);
                let objects = manifests::parse(&text, std::path::Path::new("chaos.yaml"))?;
                manifests::apply_all(&env.client, NS, &objects).await?;
            }
            None => match deployments.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    Ok(())
}

/// Machines by MachineDeployment (the control plane's under `-`): how many, how many Running,
/// how many being deleted.
async fn machines_by_deployment(
    env: &Env,
) -> Result<BTreeMap<String, (usize, usize, usize)>, HarnessError> {
    let machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::machines_resource());
    let mut by = BTreeMap::new();
    for m in machines.list(&Default::default()).await? {
        let deployment = m
            .labels()
            .get("cluster.x-k8s.io/deployment-name")
            .cloned()
            .unwrap_or_else(|| "-".to_string());
        let entry: &mut (usize, usize, usize) = by.entry(deployment).or_default();
        entry.0 += 1;
        entry.1 += usize::from(m.data["status"]["phase"].as_str() == Some("Running"));
        entry.2 += usize::from(m.metadata.deletion_timestamp.is_some());
    }
    Ok(by)
}

/// Waits until the namespace has exactly the Machines the phase asks for, per
/// MachineDeployment, all Running and none being deleted.
async fn converge(env: &Env, phase: &BTreeMap<&'static str, usize>) -> Result<(), HarnessError> {
    let mut wanted: BTreeMap<String, (usize, usize, usize)> = phase
        .iter()
        .map(|(name, &n)| (name.to_string(), (n, n, 0)))
        .collect();
    wanted.insert("-".to_string(), (CONTROL_PLANE, CONTROL_PLANE, 0));
    wait_for(
        "the phase's Machines Running (count, Running, deleting)",
        POLL,
        PHASE_LIMIT,
        || async {
            let now = machines_by_deployment(env).await?;
            Ok(((now == wanted).then_some(()), format!("{now:?}")))
        },
    )
    .await
}

/// Waits until MAAS's side has settled (no leak, no double record), then returns the audit.
async fn settled_audit(env: &Env) -> Result<MaasAudit, HarnessError> {
    wait_for(
        "MAAS to match the MaasMachines",
        POLL,
        SETTLE_LIMIT,
        || async {
            let a = audit::audit(env, NS).await?;
            let settled = a.leaked.is_empty() && a.recorded_twice.is_empty();
            Ok((settled.then(|| a.clone()), a.to_string()))
        },
    )
    .await
}

/// The control-plane endpoint record in MAAS against the control-plane machines' addresses.
async fn dns_matches_control_plane(env: &Env) -> Result<(), HarnessError> {
    let state = env.sim.state();
    let records = audit::recorded_system_ids(&env.client, NS).await?;
    let maas: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    let mut expected: Vec<String> = Vec::new();
    for i in 0..CONTROL_PLANE {
        let mm = maas.get(&format!("{CLUSTER}-cp-{i}")).await?;
        let id = mm.data["spec"]["systemID"].as_str().unwrap_or_default();
        assert!(
            records.iter().any(|r| r == id),
            "control plane {i} recorded"
        );
        let machine = state.machine(id).expect("the control-plane machine exists");
        expected.extend(machine.ip_addresses.iter().cloned());
    }
    expected.sort();
    assert_eq!(state.dnsresources.len(), 1, "one endpoint record");
    let mut actual = state.dnsresources[0].ip_addresses.clone();
    actual.sort();
    eprintln!("endpoint record {}: {actual:?}", state.dnsresources[0].fqdn);
    assert_eq!(
        actual, expected,
        "the endpoint record is the control plane's"
    );
    Ok(())
}

/// What a campaign measured.
#[derive(Debug, Default)]
struct Report {
    phase_seconds: Vec<f64>,
    running: MaasAudit,
    after_delete: MaasAudit,
    delete_seconds: f64,
}

/// Scales through the phases, cycle after cycle, until the kills meant for scaling are spent;
/// returns the seconds each phase took to converge.
async fn scale(
    env: &Env,
    c: Campaign,
    kills_done: &watch::Receiver<usize>,
) -> Result<Vec<f64>, HarnessError> {
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &scenario::capi_resource("MachineDeployment", "machinedeployments"),
    );
    let mut seconds = Vec::new();
    for cycle in 1..=10 {
        for phase in c.phases() {
            let start = Instant::now();
            eprintln!(
                "chaos cycle {cycle}: MachineDeployments {phase:?}, {} kills so far",
                *kills_done.borrow()
            );
            apply_phase(env, &phase, &deployments).await?;
            converge(env, &phase).await?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        if *kills_done.borrow() >= c.kills_while_scaling() {
            break;
        }
    }
    Ok(seconds)
}

/// Deletes the Cluster and waits until every MaasMachine is gone and MAAS holds nothing of ours.
async fn delete_cluster(env: &Env) -> Result<MaasAudit, HarnessError> {
    scenario::delete_cluster(env, NS, CLUSTER).await?;
    audit::wait_until_free(env, NS, CLUSTER, PHASE_LIMIT).await
}

async fn campaign(
    env: &Env,
    c: Campaign,
    kills_done: watch::Receiver<usize>,
    stage: watch::Sender<Stage>,
) -> Result<Report, HarnessError> {
    let objects = manifests::parse(&cluster_manifest(), std::path::Path::new("chaos.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let phase_seconds = scale(env, c, &kills_done).await?;
    let running = settled_audit(env).await?;
    dns_matches_control_plane(env).await?;
    let start = Instant::now();
    let _ = stage.send(Stage::Deleting);
    let after_delete = delete_cluster(env).await?;
    let delete_seconds = start.elapsed().as_secs_f64();
    assert!(
        env.sim.state().dnsresources.is_empty(),
        "the endpoint record goes with the cluster"
    );
    let _ = stage.send(Stage::Done);
    Ok(Report {
        phase_seconds,
        running,
        after_delete,
        delete_seconds,
    })
}

fn print_report(env: &Env, c: Campaign, report: &Report, kills: usize, total: Duration) {
    eprintln!(
        "chaos campaign, seed {} (CHAOS_SEED={} repeats it)",
        c.seed, c.seed
    );
    eprintln!(
        "  {} machines, {} workers at most, {kills} kills (SIGKILL) of the manager, {:.0} s in all",
        c.machines,
        c.max_workers(),
        total.as_secs_f64()
    );
    eprintln!("  faults injected by kind: {:?}", env.sim.faults_injected());
    let requests = env.sim.requests();
    eprintln!("  MAAS requests: {} in all", requests.total);
    eprintln!(
        "  seconds to converge, per phase: {:?}; deletion: {:.0}",
        report
            .phase_seconds
            .iter()
            .map(|s| s.round() as u64)
            .collect::<Vec<_>>(),
        report.delete_seconds
    );
    eprintln!("  audit while running: {}", report.running);
    eprintln!(
        "  audit after the cluster was deleted: {}",
        report.after_delete
    );
}

async fn scenario(env: &mut Env, c: Campaign) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    env.sim.set_faults(fault_mix(c.seed));
    env.sim.reset_requests();
    let base = env.manager_options("capmaas-manager-chaos", &[]);
    let first = env
        .manager
        .take()
        .expect("the environment started a manager");
    let (stage_tx, stage_rx) = watch::channel(Stage::Scaling);
    let (done_tx, done_rx) = watch::channel(0usize);
    let start = Instant::now();
    let kills = killer(base, first, c, stage_rx, done_tx);
    let result = tokio::try_join!(kills, campaign(env, c, done_rx.clone(), stage_tx));
    let (manager, report) = result?;
    env.manager = Some(manager);
    print_report(env, c, &report, *done_rx.borrow(), start.elapsed());
    assert_eq!(
        report.running.defects(),
        0,
        "while running: {}",
        report.running
    );
    assert_eq!(
        report.after_delete.defects(),
        0,
        "after delete: {}",
        report.after_delete
    );
    assert!(
        report.after_delete.held.is_empty() && report.after_delete.not_free.is_empty(),
        "every machine Ready with no owner: {}",
        report.after_delete
    );
    assert!(report.running.ledger.broken >= 1, "a machine went Broken");
    Ok(())
}

#[tokio::test]
async fn chaos_campaign_loses_nothing_and_does_nothing_twice() {
    let c = Campaign::from_env();
    eprintln!("chaos campaign: {c:?}");
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: c.machines,
            gpu_machines: 0,
            deploy_seconds: DEPLOY_SECONDS,
            sim_non_admin: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let result = scenario(&mut env, c).await;
    env.finish(result.map_err(|e| format!("seed {}: {e}", c.seed)))
        .await;
}
