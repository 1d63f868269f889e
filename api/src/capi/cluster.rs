//! Cluster API `Cluster`, the fields the MAAS controllers read, in both versions' shapes.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

use super::{CapiVersion, GROUP, ObjectReference};
use crate::common::ApiEndpoint;

/// A Cluster API Cluster (partial).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The fields of `spec` we read.
    #[serde(default)]
    pub spec: ClusterSpec,
    /// The fields of `status` we read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

/// `Cluster.spec` (partial): `paused` is a bool in v1beta1 and a pointer in v1beta2; both read
/// as an optional bool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Stops every controller from reconciling the cluster's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// The endpoint CAPI copied from the infrastructure cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
    /// The infrastructure cluster (our MaasCluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ref: Option<ObjectReference>,
}

/// `Cluster.status` (partial), union of both versions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// v1beta1: the infrastructure cluster is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ready: Option<bool>,
    /// v1beta1: the control plane is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_ready: Option<bool>,
    /// v1beta2: initialization milestones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<ClusterInitialization>,
    /// Lifecycle phase (`Provisioning`, `Provisioned`, `Deleting`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// v1beta2 `Cluster.status.initialization`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInitialization {
    /// The infrastructure cluster reported provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_provisioned: Option<bool>,
    /// The control plane is initialized (the first control-plane node answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_initialized: Option<bool>,
}

impl Cluster {
    /// Whether reconciliation of this cluster's objects must stop: `spec.paused` or the paused
    /// annotation on the Cluster.
    pub fn paused(&self) -> bool {
        self.spec.paused == Some(true) || super::has_paused_annotation(&self.metadata)
    }

    /// Whether the infrastructure cluster counts as provisioned, whichever version wrote it.
    pub fn infrastructure_provisioned(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.initialization
                .as_ref()
                .and_then(|i| i.infrastructure_provisioned)
                .or(s.infrastructure_ready)
                == Some(true)
        })
    }

    /// Whether the control plane is up (v1beta1 `controlPlaneReady`, v1beta2
    /// `initialization.controlPlaneInitialized`).
    pub fn control_plane_initialized(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.initialization
                .as_ref()
                .and_then(|i| i.control_plane_initialized)
                .or(s.control_plane_ready)
                == Some(true)
        })
    }
}

impl Resource for Cluster {
    type DynamicType = CapiVersion;
    type Scope = NamespaceResourceScope;

    fn kind(_: &CapiVersion) -> Cow<'_, str> {
        Cow::Borrowed("Cluster")
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
        Cow::Borrowed("clusters")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
