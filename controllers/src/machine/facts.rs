//! The facts of a MaasMachine pass, built by one pure constructor from the objects the fetch
//! stage read; nothing here does I/O, so the gathering is tested from YAML fixtures.

use capmaas_api::capi::{Cluster, Machine, has_paused_annotation};
use capmaas_api::{
    MaasCluster, MaasMachine, MaasMachineSpec, MaasMachineStatus, annotations, condition_names,
};
use kube::ResourceExt;

use crate::domain::allocation::{GpuRequest, MachineRequirements};
use crate::domain::timing::DeployFailures;
use crate::k8s::objects::{DELETE_FOR_MOVE, annotation, has_annotation};
use crate::maas::observer::{Observation, Transit};
use crate::machine::decide::{EraseOptions, MaasView, MachineFacts, OwnerMachine, PassNotes};
use crate::machine::source::gpu::{GPU_REJECTED, GpuFacts};
use crate::runtime::error::ReconcileError;

/// What the fetch stage read for one MaasMachine: its owner Machine, the Cluster and the
/// MaasCluster, each `None` when absent.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// The owner Machine.
    pub machine: Option<Machine>,
    /// The cluster name (from the Machine, else the MaasMachine's label).
    pub cluster_name: Option<String>,
    /// The Cluster.
    pub cluster: Option<Cluster>,
    /// The Cluster's MaasCluster (for its identity Secret).
    pub maas_cluster: Option<MaasCluster>,
}

/// Whose MAAS credentials a MaasMachine's pass may use.
#[derive(Clone, Debug, PartialEq)]
pub enum CredentialScope<'a> {
    /// Those of this MaasCluster (its identity Secret, else the provider-wide ones).
    Cluster(&'a MaasCluster),
    /// The MaasMachine belongs to no cluster: the provider-wide ones.
    ProviderWide,
    /// The MaasMachine names a cluster whose Cluster or MaasCluster was not found: that cluster
    /// may have credentials of its own, for another MAAS, so none are used (the provider-wide
    /// ones might answer "not found" for its machine, and that would drop the finalizer).
    Unknown(String),
}

impl Fetched {
    /// Whether the Cluster or the MaasMachine is paused.
    pub fn paused(&self, obj: &MaasMachine) -> bool {
        self.cluster.as_ref().is_some_and(Cluster::paused) || has_paused_annotation(&obj.metadata)
    }

    /// Whose credentials the pass may use.
    pub fn credential_scope(&self, ns: &str) -> CredentialScope<'_> {
        let Some(cluster_name) = &self.cluster_name else {
            return CredentialScope::ProviderWide;
        };
        let Some(cluster) = &self.cluster else {
            return CredentialScope::Unknown(format!("Cluster {ns}/{cluster_name} not found"));
        };
        let infrastructure = cluster
            .spec
            .infrastructure_ref
            .as_ref()
            .and_then(|r| r.name.as_deref());
        match (infrastructure, &self.maas_cluster) {
            (_, Some(maas_cluster)) => CredentialScope::Cluster(maas_cluster),
            (None, None) => CredentialScope::ProviderWide,
            (Some(name), None) => {
                CredentialScope::Unknown(format!("MaasCluster {ns}/{name} not found"))
            }
        }
    }
}

/// Provider-wide settings the facts carry.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// This management cluster's identity, for owner data.
    pub management: Option<String>,
    /// `MAAS_ZONE`.
    pub default_zone: Option<String>,
}

/// The allocation constraints of a MaasMachine spec.
pub fn requirements(spec: &MaasMachineSpec) -> MachineRequirements {
    let pos_u32 = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    let pos_u64 = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok());
    MachineRequirements {
        min_cpu: pos_u32(spec.min_cpu),
        min_memory_mib: pos_u64(spec.min_memory),
        tags: spec.tags.clone().unwrap_or_default(),
        not_tags: spec.not_tags.clone().unwrap_or_default(),
        failure_domain: spec.failure_domain.clone(),
        resource_pool: spec.resource_pool.clone(),
        min_disk_gb: pos_u64(spec.min_disk_size),
        gpu: spec.gpu.as_ref().map(|g| GpuRequest {
            vendor: g.vendor.clone(),
            product: g.product.clone(),
            min_count: pos_u32(g.min_count),
        }),
        architecture: spec.architecture.clone(),
    }
}

/// The kernel a MaasMachine spec asks for; blank means the image's default.
fn hwe_kernel(spec: &MaasMachineSpec) -> Option<String> {
    let kernel = spec.hwe_kernel.as_deref().map(str::trim)?;
    (!kernel.is_empty()).then(|| kernel.to_string())
}

/// The release options of a MaasMachine spec.
pub fn erase_options(spec: &MaasMachineSpec) -> EraseOptions {
    let r = spec.release.clone().unwrap_or_default();
    EraseOptions {
        erase: r.erase.unwrap_or(false),
        quick_erase: r.quick_erase.unwrap_or(false),
        secure_erase: r.secure_erase.unwrap_or(false),
    }
}

/// The machine the spec records: `systemID`, else the last segment of `providerID`
/// (`maas:///<zone>/<system id>`), which is all some writers of the Go provider's era kept.
fn recorded_system_id(spec: &MaasMachineSpec) -> Option<String> {
    let from_provider_id = || {
        spec.provider_id
            .as_deref()
            .and_then(|p| p.strip_prefix("maas://"))
            .and_then(|p| p.rsplit('/').next())
            .map(str::to_string)
    };
    spec.system_id
        .clone()
        .or_else(from_provider_id)
        .filter(|s| !s.is_empty())
}

/// Whether the status is the Go provider's and none of ours: its `MachineDeployed` condition
/// without our `MachineProvisioned`. Our first status write adds ours, and comes after the owner
/// data that adopts the machine, so a pass killed in between still sees the Go provider's.
fn made_by_go_provider(status: Option<&MaasMachineStatus>) -> bool {
    let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let has = |t: &str| conditions.iter().any(|c| c.type_ == t);
    has(GO_PROVIDER_MACHINE_DEPLOYED) && !has(condition_names::types::MACHINE_PROVISIONED)
}

/// The Go provider's condition on a MaasMachine whose machine it deployed.
const GO_PROVIDER_MACHINE_DEPLOYED: &str = "MachineDeployed";

/// The facts of a pass over `obj`. `observed` is the observer's latest word on the recorded
/// machine, if it was watching it: the pass then starts from it instead of reading MAAS.
pub fn machine_facts(
    obj: &MaasMachine,
    fetched: &Fetched,
    settings: &Settings,
    observed: Option<&Observation>,
    now: jiff::Timestamp,
) -> Result<MachineFacts, ReconcileError> {
    let meta = &obj.metadata;
    let namespace = obj
        .namespace()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachine without namespace".into()))?;
    let uid = obj
        .uid()
        .ok_or_else(|| ReconcileError::Invalid("MaasMachine without uid".into()))?;
    let spec = &obj.spec;
    Ok(MachineFacts {
        uid,
        namespace,
        name: obj.name_any(),
        deleting: meta.deletion_timestamp.is_some(),
        moving: has_annotation(meta, DELETE_FOR_MOVE),
        management: settings.management.clone(),
        paused: fetched.paused(obj),
        owner: fetched.machine.as_ref().map(|m| OwnerMachine {
            bootstrap_data_secret: m.bootstrap_data_secret_name().map(str::to_string),
            failure_domain: m.failure_domain().map(str::to_string),
        }),
        cluster_infrastructure_ready: fetched
            .cluster
            .as_ref()
            .map(Cluster::infrastructure_provisioned),
        system_id: recorded_system_id(spec),
        attempt_marked: has_annotation(meta, annotations::ALLOCATION_ATTEMPT),
        release_intent: has_annotation(meta, annotations::RELEASE_INTENT),
        failures: annotation(meta, annotations::DEPLOY_ATTEMPTS)
            .map(DeployFailures::parse)
            .unwrap_or_default(),
        requirements: requirements(spec),
        image: spec.image.clone(),
        deploy_in_memory: spec.deploy_in_memory.unwrap_or(false),
        hwe_kernel: hwe_kernel(spec),
        erase: erase_options(spec),
        default_zone: settings.default_zone.clone(),
        was_ready: spec.provider_id.as_deref().is_some_and(|p| !p.is_empty()),
        // Memory of this manager, not of the object: the reconciler fills it in.
        released_in_state: None,
        capacity_refused_for: None,
        power_ons: None,
        ready_confirmed: false,
        deploying_for: observed
            .filter(|o| o.transit == Transit::Deploying)
            .map(|o| o.since.elapsed()),
        maas: observed.map_or(MaasView::Unread, |o| MaasView::Found(o.machine.clone())),
        gpu: GpuFacts::from_annotation(annotation(meta, GPU_REJECTED)),
        made_by_go_provider: made_by_go_provider(obj.status.as_ref()),
        pass: PassNotes::default(),
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::ObservedMachine;
    use capmaas_api::{GpuRequirement, ReleaseOptions};
    use std::time::Instant;

    /// The objects of one MaasMachine, as `kubectl get -o yaml` shows them.
    const FIXTURE: &str = r#"
maasMachine:
  apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
  kind: MaasMachine
  metadata:
    name: workers-abc12
    namespace: team-a
    uid: 5d0c7a57-0b1c-4a8e-9a51-0d6f2f9c1e11
    labels:
      cluster.x-k8s.io/cluster-name: c1
    annotations:
      infrastructure.cluster.x-k8s.io/maas-allocation-attempt: "2026-11-30T10:00:00Z"
      infrastructure.cluster.x-k8s.io/maas-deploy-attempts: "1@2026-11-30T10:05:00Z"
      infrastructure.cluster.x-k8s.io/maas-gpu-rejected: "s-small"
  spec:
    image: ubuntu/jammy
    minCPU: 8
    minMemory: 16384
    tags: [gpu, fast]
    resourcePool: gpu-pool
    systemID: s-big
    gpu: {vendor: nvidia, minCount: 2}
    release: {erase: true, quickErase: true}
machine:
  apiVersion: cluster.x-k8s.io/v1beta2
  kind: Machine
  metadata: {name: workers-abc12, namespace: team-a}
  spec:
    clusterName: c1
    failureDomain: az2
    bootstrap: {dataSecretName: workers-abc12-bootstrap}
    infrastructureRef: {kind: MaasMachine, name: workers-abc12, apiGroup: infrastructure.cluster.x-k8s.io}
cluster:
  apiVersion: cluster.x-k8s.io/v1beta2
  kind: Cluster
  metadata: {name: c1, namespace: team-a}
  spec:
    paused: false
  status:
    initialization: {infrastructureProvisioned: true}
"#;

    struct Objects {
        obj: MaasMachine,
        fetched: Fetched,
    }

    fn objects(yaml: &str) -> Objects {
        let doc: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        let obj: MaasMachine = serde_json::from_value(doc["maasMachine"].clone()).unwrap();
        let machine: Machine = serde_json::from_value(doc["machine"].clone()).unwrap();
        let cluster: Cluster = serde_json::from_value(doc["cluster"].clone()).unwrap();
        Objects {
            obj,
            fetched: Fetched {
                machine: Some(machine),
                cluster_name: Some("c1".into()),
                cluster: Some(cluster),
                maas_cluster: None,
            },
        }
    }

    fn now() -> jiff::Timestamp {
        "2026-11-30T10:10:00Z".parse().unwrap()
    }

    /// A worker as the Go provider leaves it (its spectro branches: v1beta1 Conditions with a
    /// severity, no reason on True; only the providerID recorded).
    const GO_PROVIDER_WORKER: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasMachine
metadata: {name: w-0, namespace: team-a, uid: 0b9c2f0e-1111-4c3a-9d7e-222233334444}
spec:
  image: ubuntu/jammy
  minCPU: 2
  minMemory: 4096
  providerID: maas:///az1/k3x8qa
status:
  ready: true
  machineState: Deployed
  machinePowered: true
  conditions:
  - {type: Ready, status: "True", lastTransitionTime: "2026-11-01T10:00:00Z"}
  - {type: MachineDeployed, status: "True", lastTransitionTime: "2026-11-01T10:00:00Z"}
"#;

    #[test]
    fn a_go_provider_worker_is_recognised_and_its_machine_read_from_the_provider_id() {
        let mut o = objects(FIXTURE);
        o.obj = serde_saphyr::from_str(GO_PROVIDER_WORKER).unwrap();
        let settings = Settings::default();
        let f = machine_facts(&o.obj, &o.fetched, &settings, None, now()).unwrap();
        assert!(f.made_by_go_provider);
        assert_eq!(f.system_id.as_deref(), Some("k3x8qa"));
        assert!(f.was_ready);
        // Once our status is written, the object is ours like any other.
        let status = o.obj.status.as_mut().unwrap();
        status.conditions.push(capmaas_api::Condition {
            type_: condition_names::types::MACHINE_PROVISIONED.into(),
            ..status.conditions[0].clone()
        });
        let f = machine_facts(&o.obj, &o.fetched, &settings, None, now()).unwrap();
        assert!(!f.made_by_go_provider);
        let ours = objects(FIXTURE);
        let f = machine_facts(&ours.obj, &ours.fetched, &settings, None, now()).unwrap();
        assert!(!f.made_by_go_provider, "our own objects never are");
    }

    #[test]
    fn facts_from_the_objects_of_a_gpu_worker() {
        let o = objects(FIXTURE);
        let settings = Settings {
            management: Some("mgmt-1".into()),
            default_zone: Some("az9".into()),
        };
        let f = machine_facts(&o.obj, &o.fetched, &settings, None, now()).unwrap();
        assert_eq!(
            (f.namespace.as_str(), f.name.as_str()),
            ("team-a", "workers-abc12")
        );
        assert_eq!(f.uid, "5d0c7a57-0b1c-4a8e-9a51-0d6f2f9c1e11");
        assert!(!f.deleting && !f.moving && !f.paused);
        assert_eq!(f.management.as_deref(), Some("mgmt-1"));
        assert_eq!(f.default_zone.as_deref(), Some("az9"));
        let owner = f.owner.as_ref().unwrap();
        assert_eq!(
            owner.bootstrap_data_secret.as_deref(),
            Some("workers-abc12-bootstrap")
        );
        assert_eq!(owner.failure_domain.as_deref(), Some("az2"));
        assert_eq!(f.cluster_infrastructure_ready, Some(true));
        assert_eq!(f.system_id.as_deref(), Some("s-big"));
        assert!(f.attempt_marked && !f.release_intent);
        assert_eq!(f.failures.count, 1);
        assert_eq!(f.requirements.min_cpu, Some(8));
        assert_eq!(f.requirements.min_memory_mib, Some(16384));
        assert_eq!(f.requirements.tags, vec!["gpu", "fast"]);
        assert_eq!(f.requirements.resource_pool.as_deref(), Some("gpu-pool"));
        assert_eq!(f.requirements.gpu.as_ref().unwrap().min_count, Some(2));
        assert!(f.erase.erase && f.erase.quick_erase && !f.erase.secure_erase);
        assert_eq!(f.gpu.rejected, vec!["s-small"]);
        assert_eq!(
            f.maas,
            MaasView::Unread,
            "nothing observed: the pass reads MAAS"
        );
        assert_eq!(f.deploying_for, None);
        assert_eq!(f.now, now());
    }

    #[test]
    fn credentials_are_never_guessed_for_a_cluster_that_is_not_found() {
        let mut o = objects(FIXTURE);
        assert_eq!(
            o.fetched.credential_scope("team-a"),
            CredentialScope::ProviderWide,
            "a Cluster without infrastructure has no credentials of its own"
        );
        o.fetched.cluster = Some(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "Cluster",
                "metadata": {"name": "c1", "namespace": "team-a"},
                "spec": {"infrastructureRef": {
                    "apiGroup": "infrastructure.cluster.x-k8s.io",
                    "kind": "MaasCluster",
                    "name": "c1"
                }}
            }))
            .unwrap(),
        );
        assert!(
            matches!(o.fetched.credential_scope("team-a"), CredentialScope::Unknown(m) if m == "MaasCluster team-a/c1 not found"),
            "the Cluster names a MaasCluster that is not there"
        );
        let maas_cluster: MaasCluster = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c1", "namespace": "team-a"},
            "spec": {"dnsDomain": "maas"}
        }))
        .unwrap();
        o.fetched.maas_cluster = Some(maas_cluster.clone());
        assert_eq!(
            o.fetched.credential_scope("team-a"),
            CredentialScope::Cluster(&maas_cluster)
        );
        o.fetched.cluster = None;
        assert!(matches!(
            o.fetched.credential_scope("team-a"),
            CredentialScope::Unknown(m) if m == "Cluster team-a/c1 not found"
        ));
        let standalone = Fetched::default();
        assert_eq!(
            standalone.credential_scope("team-a"),
            CredentialScope::ProviderWide
        );
    }

    #[test]
    fn an_observed_machine_is_where_the_pass_starts() {
        let o = objects(FIXTURE);
        let seen = Observation {
            machine: ObservedMachine {
                system_id: "s-big".into(),
                status_code: 9,
                ..Default::default()
            },
            transit: Transit::Deploying,
            since: Instant::now(),
            due: Instant::now(),
        };
        let f =
            machine_facts(&o.obj, &o.fetched, &Settings::default(), Some(&seen), now()).unwrap();
        assert_eq!(f.maas, MaasView::Found(seen.machine.clone()));
        assert!(f.deploying_for.is_some());
        let releasing = Observation {
            transit: Transit::Releasing,
            ..seen
        };
        let f = machine_facts(
            &o.obj,
            &o.fetched,
            &Settings::default(),
            Some(&releasing),
            now(),
        )
        .unwrap();
        assert_eq!(f.deploying_for, None, "only a deployment has a deploy time");
    }

    #[test]
    fn a_paused_cluster_a_deletion_and_a_move_show_in_the_facts() {
        let yaml = FIXTURE
            .replace("paused: false", "paused: true")
            .replace(
                "  metadata:\n    name: workers-abc12\n",
                "  metadata:\n    name: workers-abc12\n    deletionTimestamp: \"2026-11-30T10:09:00Z\"\n",
            )
            .replace(
                "    annotations:\n",
                "    annotations:\n      clusterctl.cluster.x-k8s.io/delete-for-move: \"\"\n",
            );
        let o = objects(&yaml);
        let f = machine_facts(&o.obj, &o.fetched, &Settings::default(), None, now()).unwrap();
        assert!(f.paused && f.deleting && f.moving);
    }

    #[test]
    fn spec_to_requirements() {
        let spec = MaasMachineSpec {
            min_cpu: Some(4),
            min_memory: Some(-1),
            min_disk_size: Some(100),
            tags: Some(vec!["a".into()]),
            gpu: Some(GpuRequirement {
                vendor: Some("nvidia".into()),
                product: None,
                min_count: Some(2),
            }),
            release: Some(ReleaseOptions {
                erase: Some(true),
                quick_erase: None,
                secure_erase: Some(true),
            }),
            ..Default::default()
        };
        let r = requirements(&spec);
        assert_eq!(r.min_cpu, Some(4));
        assert_eq!(r.min_memory_mib, None, "negative values are not sent");
        assert_eq!(r.min_disk_gb, Some(100));
        assert_eq!(r.gpu.unwrap().min_count, Some(2));
        assert_eq!(
            erase_options(&spec),
            EraseOptions {
                erase: true,
                quick_erase: false,
                secure_erase: true
            }
        );
    }

    #[test]
    fn an_object_without_namespace_or_uid_is_refused() {
        let mut o = objects(FIXTURE);
        o.obj.metadata.uid = None;
        let err = machine_facts(&o.obj, &o.fetched, &Settings::default(), None, now());
        assert!(matches!(err, Err(ReconcileError::Invalid(_))));
    }
}
