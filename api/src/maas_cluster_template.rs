//! `MaasClusterTemplate`: the MaasCluster a ClusterClass stamps out for each Cluster.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::maas_cluster::MaasClusterSpec;
use crate::template_meta::TemplateObjectMeta;

/// Desired state of a MaasClusterTemplate; immutable like every Cluster API template, by the
/// release's ValidatingAdmissionPolicy (config/admission).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "MaasClusterTemplate",
    doc = "Template for MaasClusters, used by ClusterClass.",
    namespaced,
    derive = "PartialEq",
    category = "cluster-api",
    shortname = "maasct"
)]
#[serde(rename_all = "camelCase")]
pub struct MaasClusterTemplateSpec {
    /// The MaasCluster to create.
    pub template: MaasClusterTemplateResource,
}

/// The object a cluster template stamps out.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaasClusterTemplateResource {
    /// Labels and annotations for the created MaasCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateObjectMeta>,
    /// Spec of the created MaasCluster.
    pub spec: MaasClusterSpec,
}
