//! `MaasMachine`: one MAAS machine allocated and deployed for one Cluster API Machine.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Initialization, MachineAddress};
use crate::condition::Condition;

/// Desired state of a MaasMachine; also the spec inside a MaasMachineTemplate. The first ten
/// fields are the Go provider's (HyperShift writes the first eight); the rest are optional
/// extensions, so objects from older writers stay valid.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "MaasMachine",
    doc = "A bare-metal machine from MAAS backing one Cluster API Machine.",
    namespaced,
    status = "MaasMachineStatus",
    derive = "PartialEq",
    category = "cluster-api",
    shortname = "maasm",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", "description": "Cluster to which this MaasMachine belongs"}"#,
    printcolumn = r#"{"name": "State", "type": "string", "jsonPath": ".status.machineState", "description": "MAAS machine state"}"#,
    printcolumn = r#"{"name": "SystemID", "type": "string", "jsonPath": ".spec.systemID", "description": "MAAS system ID"}"#,
    printcolumn = r#"{"name": "ProviderID", "type": "string", "jsonPath": ".spec.providerID", "description": "Provider ID of the Node"}"#,
    printcolumn = r#"{"name": "Ready", "type": "boolean", "jsonPath": ".status.ready", "description": "Machine is deployed and running"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MaasMachineSpec {
    /// `maas:///<zone>/<system_id>`, set by the controller once the machine is deployed.
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,

    /// MAAS system ID, set by the controller when the machine is allocated.
    #[serde(default, rename = "systemID", skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,

    /// MAAS zone to allocate from; the Machine's failureDomain takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domain: Option<String>,

    /// MAAS resource pool to allocate from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_pool: Option<String>,

    /// Minimum CPU cores of the machine. Immutable, as in the Go provider: the machine was
    /// chosen for it.
    #[serde(default, rename = "minCPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("minCPU is immutable: create a new MaasMachineTemplate to change it"))]
    pub min_cpu: Option<i32>,

    /// Minimum memory of the machine in MiB. Immutable, as in the Go provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("minMemory is immutable: create a new MaasMachineTemplate to change it"))]
    pub min_memory: Option<i32>,

    /// MAAS tags the machine must carry, every one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(validation = Rule::new("self.all(t, t.matches('^[a-zA-Z0-9_-]+$'))").message("tags: a MAAS tag name may only contain letters, digits, '_' and '-'"))]
    pub tags: Option<Vec<String>>,

    /// Image to deploy: `ubuntu/jammy`, `jammy` or a custom image name.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("image is immutable: create a new MaasMachineTemplate to change it"))]
    pub image: String,

    /// Minimum disk size in GB (the MAAS `storage` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_disk_size: Option<i32>,

    /// Deploy the OS into memory (MAAS ephemeral deployment) instead of onto disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_in_memory: Option<bool>,

    /// MAAS tags the machine must not carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(validation = Rule::new("self.all(t, t.matches('^[a-zA-Z0-9_-]+$'))").message("notTags: a MAAS tag name may only contain letters, digits, '_' and '-'"))]
    pub not_tags: Option<Vec<String>>,

    /// GPUs the machine must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuRequirement>,

    /// Format of the bootstrap data; detected from its content when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data_format: Option<UserDataFormat>,

    /// How the machine's disks are erased when it goes back to MAAS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseOptions>,

    /// Ignition patching options (HyperShift and other Ignition users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignition: Option<IgnitionOptions>,

    /// CPU architecture in MAAS's spelling (`amd64/generic`, `arm64/generic`, `ppc64el`,
    /// `s390x`), sent as the allocate `arch` constraint; absent: any. Immutable: the machine was
    /// chosen for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^(amd64|arm64|armhf|i386|ppc64el|s390x|riscv64)(/[a-z0-9_.-]+)?$')").message("architecture: a MAAS architecture such as amd64/generic, arm64/generic, ppc64el or s390x (MAAS spells ppc64le as ppc64el)"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("architecture is immutable: create a new MaasMachineTemplate to change it"))]
    pub architecture: Option<String>,

    /// Kernel MAAS deploys (`hwe_kernel`), such as `hwe-22.04`, `ga-24.04` or
    /// `hwe-24.04-lowlatency`: GPU drivers often need the hardware-enablement kernel. Absent:
    /// the image's default. Immutable, like the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^(hwe|ga)-([0-9]{2}[.][0-9]{2}|[a-z])(-[a-z0-9]+)*$')").message("hweKernel: a MAAS kernel name such as hwe-22.04, ga-24.04 or hwe-24.04-lowlatency"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("hweKernel is immutable: create a new MaasMachineTemplate to change it"))]
    pub hwe_kernel: Option<String>,
}

/// GPU constraint, turned into the MAAS allocate `devices` filter.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GpuRequirement {
    /// Vendor name (`nvidia`, `amd`, `intel`) or PCI vendor ID (`10de`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub vendor: Option<String>,
    /// Product name as MAAS reports it (substring match), for example `A100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub product: Option<String>,
    /// Minimum number of matching GPUs; absent means one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_count: Option<i32>,
}

/// Bootstrap data format.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserDataFormat {
    /// cloud-init user data (kubeadm bootstrap).
    #[serde(rename = "cloud-config")]
    CloudConfig,
    /// An Ignition config (HyperShift, Flatcar, Fedora CoreOS).
    #[serde(rename = "ignition")]
    Ignition,
}

/// Disk erasure on release, the MAAS `erase`, `quick_erase` and `secure_erase` options.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!((has(self.quickErase) && self.quickErase) || (has(self.secureErase) && self.secureErase)) || (has(self.erase) && self.erase)").message("release: quickErase and secureErase only apply with erase: true"))]
pub struct ReleaseOptions {
    /// Erase the disks before the machine returns to the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase: Option<bool>,
    /// Wipe only the start and end of each disk (fast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_erase: Option<bool>,
    /// Use the disks' secure-erase feature where they have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_erase: Option<bool>,
}

/// Changes made to an Ignition config before it is sent to MAAS.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IgnitionOptions {
    /// Partition numbers of the install disk to wipe first (stale partitions of an earlier OS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128), inner(range(min = 1)))]
    pub wipe_partitions: Option<Vec<i32>>,
}

/// Observed state of a MaasMachine, written for both Cluster API contracts at once.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaasMachineStatus {
    /// v1beta1 contract: the machine is deployed and running.
    #[serde(default)]
    pub ready: bool,

    /// v1beta2 contract: the machine is provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,

    /// MAAS status name (`Deploying`, `Deployed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_state: Option<String>,

    /// Whether MAAS reports the machine powered on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_powered: Option<bool>,

    /// MAAS host name of the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,

    /// Addresses of the machine, copied by Cluster API to the Machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MachineAddress>,

    /// The machine's network interfaces and which address is on which MAAS subnet, space and
    /// fabric; the boot interface is marked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub interfaces: Vec<crate::network::MachineInterface>,

    /// Hardware MAAS found on the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareInventory>,

    /// Current state of the machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Terminal problem, machine-readable (v1beta1 contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,

    /// Terminal problem, human-readable (v1beta1 contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

/// Hardware of the deployed machine, from MAAS.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HardwareInventory {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i32>,
    /// Memory in MiB.
    #[serde(default, rename = "memoryMiB", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    /// Total storage in GB.
    #[serde(default, rename = "storageGB", skip_serializing_if = "Option::is_none")]
    pub storage_gb: Option<i64>,
    /// GPUs found by MAAS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuDevice>,
}

/// One GPU of a machine, as the MAAS node devices API reports it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GpuDevice {
    /// PCI vendor ID, for example `10de`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// Vendor name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_name: Option<String>,
    /// PCI product ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// PCI address, for example `0000:3b:00.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    /// NUMA node the device is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_node: Option<i32>,
}

impl MaasMachineStatus {
    /// Writes readiness for both contracts at once (`ready` and `initialization.provisioned`),
    /// so no reader sees one without the other.
    pub fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
        self.initialization = Some(Initialization::provisioned(ready));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_always_serialized_and_written_for_both_contracts() {
        let mut status = MaasMachineStatus::default();
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"ready": false})
        );
        status.set_ready(true);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"ready": true, "initialization": {"provisioned": true}})
        );
    }
}
