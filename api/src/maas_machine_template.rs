//! `MaasMachineTemplate`: what MachineDeployments, KubeadmControlPlane and HyperShift NodePools
//! stamp MaasMachines from; its status lets autoscalers scale a pool from zero.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::maas_machine::MaasMachineSpec;
use crate::template_meta::TemplateObjectMeta;

/// Capacity key for NVIDIA GPUs, as the device plugin advertises them on Nodes.
pub const CAPACITY_NVIDIA_GPU: &str = "nvidia.com/gpu";
/// Capacity key for CPU cores.
pub const CAPACITY_CPU: &str = "cpu";
/// Capacity key for memory.
pub const CAPACITY_MEMORY: &str = "memory";
/// Capacity key for the local disk.
pub const CAPACITY_EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// Desired state of a MaasMachineTemplate. Immutable like every Cluster API template: a change
/// is made by creating a new template and pointing the owner at it (HyperShift does so). The
/// release's ValidatingAdmissionPolicy enforces it (config/admission), not a CRD rule, so that
/// Cluster API's topology dry-runs can compare templates.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "MaasMachineTemplate",
    doc = "Template for MaasMachines; Cluster API and HyperShift create MaasMachines from it.",
    namespaced,
    status = "MaasMachineTemplateStatus",
    derive = "PartialEq",
    category = "cluster-api",
    shortname = "maasmt",
    printcolumn = r#"{"name": "Available", "type": "integer", "jsonPath": ".status.availableMachines", "description": "Ready MAAS machines that match the template now"}"#,
    printcolumn = r#"{"name": "GPUs", "type": "integer", "jsonPath": ".status.availableGPUs", "description": "GPUs those machines hold"}"#,
    printcolumn = r#"{"name": "CPU", "type": "string", "jsonPath": ".status.capacity.cpu", "description": "CPUs of one machine of the pool"}"#,
    printcolumn = r#"{"name": "Memory", "type": "string", "jsonPath": ".status.capacity.memory", "description": "Memory of one machine of the pool"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MaasMachineTemplateSpec {
    /// The MaasMachine to create.
    pub template: MaasMachineTemplateResource,
}

/// The object a template stamps out.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaasMachineTemplateResource {
    /// Labels and annotations for the created MaasMachines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateObjectMeta>,
    /// Spec of the created MaasMachines.
    pub spec: MaasMachineSpec,
}

/// What a machine from this template will offer, read by cluster-autoscaler and HyperShift to
/// scale a pool up from zero.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaasMachineTemplateStatus {
    /// Resources of one machine: `cpu`, `memory` and, when the template asks for GPUs,
    /// `nvidia.com/gpu`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema_helpers::resource_list")]
    pub capacity: BTreeMap<String, Quantity>,
    /// Operating system facts of the Nodes machines from this template become.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeInfo>,
    /// Ready MAAS machines that match the template's constraints now: how far the pool can
    /// grow before an allocation finds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_machines: Option<i32>,
    /// GPUs those machines hold, counted in MAAS's node devices.
    #[serde(
        default,
        rename = "availableGPUs",
        skip_serializing_if = "Option::is_none"
    )]
    pub available_gpus: Option<i32>,
    /// `MachinesAvailable`: whether the capacity comes from a machine MAAS has (True), from
    /// the spec's minimums because none matches (False), or MAAS could not be read (Unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
}

/// Node facts of the Cluster API `nodeInfo` template status.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Operating system family (`linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
}
