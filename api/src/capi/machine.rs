//! Cluster API `Machine`, the fields the MaasMachine controller reads, in both versions' shapes.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

use super::{CapiVersion, GROUP, ObjectReference};
use crate::labels;

/// A Cluster API Machine (partial).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The fields of `spec` we read.
    #[serde(default)]
    pub spec: MachineSpec,
    /// The fields of `status` we read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MachineStatus>,
}

/// `Machine.spec` (partial); the same names in both versions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MachineSpec {
    /// Name of the Cluster the Machine belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Where the bootstrap data comes from.
    #[serde(default)]
    pub bootstrap: Bootstrap,
    /// The infrastructure machine (our MaasMachine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ref: Option<ObjectReference>,
    /// Provider ID CAPI copied from the infrastructure machine.
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    /// Failure domain (MAAS zone) CAPI chose for the Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domain: Option<String>,
    /// Kubernetes version of the Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `Machine.spec.bootstrap` (partial).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    /// Secret holding the bootstrap data (key `value`), set once the bootstrap provider is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_secret_name: Option<String>,
}

/// `Machine.status` (partial), union of both versions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MachineStatus {
    /// The workload Node, once CAPI has matched it (v1beta1 adds kind/uid/apiVersion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<MachineNodeReference>,
    /// Lifecycle phase (`Pending`, `Provisioning`, `Provisioned`, `Running`, `Deleting`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// v1beta1: the bootstrap data is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_ready: Option<bool>,
    /// v1beta1: the infrastructure machine is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ready: Option<bool>,
    /// v1beta2: initialization milestones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<MachineInitialization>,
}

/// `Machine.status.nodeRef`: v1beta2 keeps only the name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MachineNodeReference {
    /// Name of the Node.
    #[serde(default)]
    pub name: String,
}

/// v1beta2 `Machine.status.initialization`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MachineInitialization {
    /// The bootstrap data secret exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_data_secret_created: Option<bool>,
    /// The infrastructure machine reported provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_provisioned: Option<bool>,
}

impl Machine {
    /// The Cluster this Machine belongs to: the cluster-name label, else `spec.clusterName`.
    pub fn cluster_name(&self) -> Option<&str> {
        super::cluster_name_label(&self.metadata)
            .or_else(|| self.spec.cluster_name.as_deref().filter(|s| !s.is_empty()))
    }

    /// Whether this is a control-plane Machine (label `cluster.x-k8s.io/control-plane`).
    pub fn is_control_plane(&self) -> bool {
        super::label(&self.metadata, labels::CONTROL_PLANE).is_some()
    }

    /// The bootstrap data secret, once the bootstrap provider has written it.
    pub fn bootstrap_data_secret_name(&self) -> Option<&str> {
        self.spec
            .bootstrap
            .data_secret_name
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// The failure domain CAPI chose for this Machine, if any.
    pub fn failure_domain(&self) -> Option<&str> {
        self.spec
            .failure_domain
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// The Node name CAPI matched, if any.
    pub fn node_name(&self) -> Option<&str> {
        self.status
            .as_ref()
            .and_then(|s| s.node_ref.as_ref())
            .map(|r| r.name.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Whether CAPI saw the infrastructure machine as provisioned, whichever version wrote it.
    pub fn infrastructure_provisioned(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.initialization
                .as_ref()
                .and_then(|i| i.infrastructure_provisioned)
                .or(s.infrastructure_ready)
                == Some(true)
        })
    }

    /// Whether the Machine is paused through its own annotation (the Cluster's pause is read
    /// from the Cluster).
    pub fn paused(&self) -> bool {
        super::has_paused_annotation(&self.metadata)
    }
}

impl Resource for Machine {
    type DynamicType = CapiVersion;
    type Scope = NamespaceResourceScope;

    fn kind(_: &CapiVersion) -> Cow<'_, str> {
        Cow::Borrowed("Machine")
    }
    fn group(_: &CapiVersion) -> Cow<'_, str> {
        Cow::Borrowed(GROUP)
    }
    fn version(v: &CapiVersion) -> Cow<'_, str> {
        Cow::Borrowed(v.as_str())
    }
    fn api_version(v: &CapiVersion) -> Cow<'_, str> {
        v.api_version()
    }
    fn plural(_: &CapiVersion) -> Cow<'_, str> {
        Cow::Borrowed("machines")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
