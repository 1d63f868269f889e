//! Kubernetes API of the Cluster API MAAS provider: the four CRD kinds (wire-compatible with the
//! Go provider and HyperShift's MAAS fork), the Cluster API objects the controllers read, the
//! condition vocabulary and helpers both controllers share, and the CRD generator.
//!
//! CRDs are installed from [`crdgen::crds`] (or the YAML it writes), not from
//! `CustomResourceExt::crd()`: only the former carries the Cluster API contract labels.

pub mod annotations;
pub mod capi;
pub mod common;
pub mod condition;
pub mod condition_names;
pub mod contract;
pub mod crdgen;
pub mod failure_domains;
pub mod finalizers;
pub mod identity;
pub mod labels;
pub mod maas_cluster;
pub mod maas_cluster_template;
pub mod maas_machine;
pub mod maas_machine_template;
pub mod network;
mod schema_helpers;
pub mod template_meta;

pub use common::{ApiEndpoint, Initialization, MachineAddress, MachineAddressType};
pub use condition::{
    Condition, ConditionSeverity, ConditionStatus, ConditionUpdate, find_condition,
    is_condition_true, remove_condition, set_condition,
};
pub use contract::Contract;
pub use failure_domains::{FailureDomain, FailureDomainsError, FailureDomainsField};
pub use identity::IdentityReference;
pub use maas_cluster::{MaasCluster, MaasClusterSpec, MaasClusterStatus, Network};
pub use maas_cluster_template::{
    MaasClusterTemplate, MaasClusterTemplateResource, MaasClusterTemplateSpec,
};
pub use maas_machine::{
    GpuDevice, GpuRequirement, HardwareInventory, IgnitionOptions, MaasMachine, MaasMachineSpec,
    MaasMachineStatus, ReleaseOptions, UserDataFormat,
};
pub use maas_machine_template::{
    MaasMachineTemplate, MaasMachineTemplateResource, MaasMachineTemplateSpec,
    MaasMachineTemplateStatus, NodeInfo,
};
pub use network::{EndpointNetworks, InterfaceAddress, MachineInterface};
pub use template_meta::TemplateObjectMeta;

/// API group of every kind in this crate.
pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// API version of every kind in this crate.
pub const VERSION: &str = "v1beta1";
