//! Switching from spectrocloud's Go provider without re-provisioning. MAAS holds what the Go
//! provider leaves behind: machines allocated and deployed under our MAAS user with no agent
//! name and no owner data, and a control-plane DNS record named `<cluster>-<6 characters>`.
//! The cluster's objects are in the Go provider's shapes, once as its spectro branches and v0.8
//! write them (v1beta1 conditions, the map form of `status.failureDomains`) and once as v0.9
//! does (`metav1.Condition`s with reasons, the list form, `initialization.provisioned`). Our manager
//! then starts in its place: it writes its owner data on every machine and adopts the DNS
//! record, and MAAS's ledger shows nothing allocated, deployed or released. Deleting the
//! cluster later releases every machine and removes the record, which the Go provider never did.

use std::collections::BTreeMap;
use std::time::Duration;

use capmaas_controllers::domain::maas_machine::OWNER_KEY_UID;
use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, audit, manifests, scenario};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use maas_client::{
    AllocateParams, DeployParams, DnsResourceParams, MaasApi, MaasClient, MaasConfig,
};
use serde_json::{Value, json};

const NS: &str = "go-adoption";
const CLUSTER: &str = "legacy";
/// The Go provider names the record `<cluster>-<6 random characters>.<domain>`.
const DNS_NAME: &str = "legacy-x7k2qp.maas";
const MACHINES: usize = 3;
const LIMIT: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(500);
const SINCE: &str = "2026-11-01T10:00:00Z";

/// A machine the Go provider deployed: its system id, host name, zone and address.
struct Deployed {
    system_id: String,
    hostname: String,
    zone: String,
    ip: String,
}

/// Allocates and deploys as the Go provider does: no agent name, no owner data.
async fn deploy_as_the_go_provider(env: &Env) -> Result<Vec<Deployed>, HarnessError> {
    let maas = MaasClient::new(MaasConfig::new(env.sim.url(), env.sim.api_key()))
        .map_err(|e| HarnessError::Tools(e.to_string()))?;
    let maas_err = |e: maas_client::MaasError| HarnessError::Tools(e.to_string());
    let mut ids = Vec::new();
    for _ in 0..MACHINES {
        let params = AllocateParams {
            cpu_count: Some(1),
            ..Default::default()
        };
        let m = maas.allocate(&params).await.map_err(maas_err)?;
        let deploy = DeployParams {
            distro_series: Some("jammy".into()),
            user_data: Some(b"#cloud-config\n".to_vec()),
            ..Default::default()
        };
        maas.deploy(&m.system_id, &deploy).await.map_err(maas_err)?;
        ids.push(m.system_id);
    }
    let deployed = wait_for(
        "the Go provider's machines Deployed",
        POLL,
        LIMIT,
        || async {
            let state = env.sim.state();
            let done: Vec<Deployed> = ids
                .iter()
                .filter_map(|id| state.machine(id))
                .filter(|m| m.status == "Deployed")
                .map(|m| Deployed {
                    system_id: m.system_id.clone(),
                    hostname: m.hostname.clone(),
                    zone: m.zone.clone(),
                    ip: m.ip_addresses.first().cloned().unwrap_or_default(),
                })
                .collect();
            let n = done.len();
            Ok(((n == MACHINES).then_some(done), format!("{n} deployed")))
        },
    )
    .await?;
    let record = DnsResourceParams {
        fqdn: Some(DNS_NAME.into()),
        ip_addresses: Some(vec![deployed[0].ip.clone()]),
        ..Default::default()
    };
    maas.create_dns_resource(&record).await.map_err(maas_err)?;
    Ok(deployed)
}

fn name_of(i: usize) -> String {
    if i == 0 {
        format!("{CLUSTER}-control-plane-0")
    } else {
        format!("{CLUSTER}-md-0-{i}")
    }
}

/// The objects, as the Go provider's users have them (spec side).
fn manifest(machines: &[Deployed]) -> String {
    let mut text = format!(
        r##"---
apiVersion: v1
kind: Secret
metadata:
  name: {CLUSTER}-bootstrap
  labels: {{cluster.x-k8s.io/cluster-name: {CLUSTER}}}
type: cluster.x-k8s.io/secret
stringData: {{format: cloud-config, value: "#cloud-config\n"}}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata: {{name: {CLUSTER}}}
spec:
  controlPlaneEndpoint: {{host: {DNS_NAME}, port: 6443}}
  infrastructureRef: {{apiGroup: infrastructure.cluster.x-k8s.io, kind: MaasCluster, name: {CLUSTER}}}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasCluster
metadata:
  name: {CLUSTER}
  labels: {{cluster.x-k8s.io/cluster-name: {CLUSTER}}}
  finalizers: [maascluster.infrastructure.cluster.x-k8s.io]
spec:
  dnsDomain: maas
  controlPlaneEndpoint: {{host: {DNS_NAME}, port: 6443}}
"##
    );
    for (i, m) in machines.iter().enumerate() {
        let name = name_of(i);
        let role = if i == 0 {
            "\n    cluster.x-k8s.io/control-plane: \"\""
        } else {
            ""
        };
        let (id, zone) = (&m.system_id, &m.zone);
        text.push_str(&format!(
            r#"---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasMachine
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {CLUSTER}{role}
  finalizers: [maasmachine.infrastructure.cluster.x-k8s.io]
spec:
  image: ubuntu/jammy
  minCPU: 1
  minMemory: 1024
  systemID: {id}
  providerID: maas:///{zone}/{id}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {CLUSTER}{role}
spec:
  clusterName: {CLUSTER}
  bootstrap: {{dataSecretName: {CLUSTER}-bootstrap}}
  infrastructureRef: {{apiGroup: infrastructure.cluster.x-k8s.io, kind: MaasMachine, name: {name}}}
"#
        ));
    }
    text
}

/// Which release of the Go provider left the statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoShape {
    /// Its spectro branches and v0.8: v1beta1 conditions, the map form of failure domains.
    Spectro,
    /// v0.9 (the v1beta2 contract): `metav1.Condition`s, the list form, `initialization`.
    V09,
}

/// A condition of type `type_` as `shape` writes it: v1beta1 (no reason when True) or
/// `metav1.Condition` (reason and observed generation always).
fn go_condition(shape: GoShape, type_: &str) -> Value {
    match shape {
        GoShape::Spectro => json!({"type": type_, "status": "True", "lastTransitionTime": SINCE}),
        GoShape::V09 => json!({
            "type": type_, "status": "True", "reason": type_, "message": "",
            "lastTransitionTime": SINCE, "observedGeneration": 1
        }),
    }
}

/// The MaasCluster status `shape` writes.
fn cluster_status(shape: GoShape) -> Value {
    let conditions: Vec<Value> = ["Ready", "LoadBalancerReady", "APIServerAvailable"]
        .into_iter()
        .map(|t| go_condition(shape, t))
        .collect();
    let mut status = json!({
        "ready": true,
        "network": {"dnsName": DNS_NAME},
        "conditions": conditions,
    });
    status["failureDomains"] = match shape {
        GoShape::Spectro => json!({"az1": {"controlPlane": true}, "az2": {"controlPlane": true}}),
        GoShape::V09 => {
            status["initialization"] = json!({"provisioned": true});
            json!([{"name": "az1", "controlPlane": true}, {"name": "az2", "controlPlane": true}])
        }
    };
    status
}

/// The statuses the Go provider wrote.
async fn write_go_statuses(
    env: &Env,
    machines: &[Deployed],
    shape: GoShape,
) -> Result<(), HarnessError> {
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    let pp = PatchParams::default();
    let status = json!({"status": cluster_status(shape)});
    clusters
        .patch_status(CLUSTER, &pp, &Patch::Merge(&status))
        .await?;
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    for (i, m) in machines.iter().enumerate() {
        let fqdn = format!("{}.maas", m.hostname);
        let mut conditions = vec![
            go_condition(shape, "Ready"),
            go_condition(shape, "MachineDeployed"),
        ];
        if i == 0 {
            conditions.push(go_condition(shape, "DNSAttached"));
        }
        let mut status = json!({
            "ready": true, "machineState": "Deployed", "machinePowered": true,
            "hostname": m.hostname, "dnsAttached": i == 0,
            "addresses": [{"type": "ExternalIP", "address": m.ip}, {"type": "InternalIP", "address": m.ip},
                          {"type": "ExternalDNS", "address": fqdn}, {"type": "InternalDNS", "address": fqdn}],
            "conditions": conditions,
        });
        if shape == GoShape::V09 {
            status["initialization"] = json!({"provisioned": true});
        }
        maas_machines
            .patch_status(&name_of(i), &pp, &Patch::Merge(&json!({"status": status})))
            .await?;
    }
    Ok(())
}

/// Machines of ours (by owner data) in MAAS.
fn adopted(env: &Env) -> usize {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner_data.contains_key(OWNER_KEY_UID))
        .count()
}

/// What MAAS did since `from`, by kind.
fn ledger_since(env: &Env, from: usize) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for e in env.sim.ledger().iter().skip(from) {
        *kinds.entry(e.event.kind()).or_default() += 1;
    }
    kinds
}

async fn scenario(env: &mut Env, shape: GoShape) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    env.workload_kubeconfig_secret(NS, CLUSTER).await?;
    let machines = deploy_as_the_go_provider(env).await?;
    let objects = manifests::parse(&manifest(&machines), std::path::Path::new("go.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    write_go_statuses(env, &machines, shape).await?;
    let before = env.sim.state().dnsresources;
    let from = env.sim.ledger().len();
    env.sim.reset_requests();

    env.manager = Some(env.start_manager("capmaas-manager", &[]).await?);
    observe::wait_machines_running(&env.client, NS, MACHINES, LIMIT).await?;
    wait_for("our owner data on every machine", POLL, LIMIT, || async {
        let n = adopted(env);
        Ok(((n == MACHINES).then_some(()), format!("{n} adopted")))
    })
    .await?;
    let requests = env.sim.requests();
    let after = env.sim.state().dnsresources;
    eprintln!(
        "{shape:?} shapes taken over: MAAS requests by op {:?}; since our start MAAS did {:?}; DNS before {before:?}, after {after:?}",
        requests.counts,
        ledger_since(env, from)
    );
    assert!(
        ledger_since(env, from).is_empty(),
        "nothing allocated, deployed or released"
    );
    assert_eq!(after, before, "the Go provider's record is kept as it was");
    let running = audit::audit(env, NS).await?;
    assert_eq!(running.defects(), 0, "{running}");
    delete_and_check(env, from).await
}

/// Deletes the cluster; every machine must be released once since ledger entry `from`.
async fn delete_and_check(env: &Env, from: usize) -> Result<(), HarnessError> {
    scenario::delete_cluster(env, NS, CLUSTER).await?;
    let after = audit::wait_until_free(env, NS, CLUSTER, LIMIT).await?;
    assert_eq!(after.defects(), 0, "{after}");
    assert!(
        env.sim.state().dnsresources.is_empty(),
        "the adopted record goes with the cluster"
    );
    assert_eq!(
        ledger_since(env, from).get("release_started").copied(),
        Some(MACHINES),
        "each machine released once"
    );
    Ok(())
}

#[tokio::test]
async fn a_go_provider_cluster_is_taken_over_without_reprovisioning() {
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            start_manager: false,
            machines: MACHINES + 1,
            gpu_machines: 0,
            deploy_seconds: 1.0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    // One after the other in the same namespace: the first leaves every machine free.
    let mut result = scenario(&mut env, GoShape::Spectro).await;
    if result.is_ok() {
        if let Some(manager) = env.manager.take() {
            manager.stop().await;
        }
        result = scenario(&mut env, GoShape::V09).await;
    }
    env.finish(result).await;
}
