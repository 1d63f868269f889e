//! `MaasCluster`: the infrastructure of one workload cluster (API endpoint, zones, credentials).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ApiEndpoint, Initialization};
use crate::condition::Condition;
use crate::contract::Contract;
use crate::failure_domains::{FailureDomain, FailureDomainsField};
use crate::identity::IdentityReference;

/// Desired state of a MaasCluster. Field names are those the Go provider and HyperShift write.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "MaasCluster",
    doc = "Infrastructure of a Cluster API cluster on MAAS: its API endpoint (a MAAS DNS record unless given) and the MAAS zones it may use.",
    namespaced,
    status = "MaasClusterStatus",
    derive = "PartialEq",
    category = "cluster-api",
    shortname = "maasc",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", "description": "Cluster to which this MaasCluster belongs"}"#,
    printcolumn = r#"{"name": "Ready", "type": "boolean", "jsonPath": ".status.ready", "description": "Cluster infrastructure is ready"}"#,
    printcolumn = r#"{"name": "Endpoint", "type": "string", "jsonPath": ".spec.controlPlaneEndpoint.host", "description": "API server endpoint"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MaasClusterSpec {
    /// MAAS DNS domain the cluster's API endpoint record is created in (for example `maas`).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("dnsDomain is immutable: the cluster's DNS record lives in this domain"))]
    pub dns_domain: String,

    /// API server endpoint. Left empty, the provider creates a MAAS DNS record and fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,

    /// Which machine networks (MAAS subnets, spaces or fabrics) the API endpoint's DNS record
    /// takes addresses from; by default each control-plane machine's boot interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_networks: Option<crate::network::EndpointNetworks>,

    /// MAAS zones machines of this cluster may be placed in; empty means all zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub failure_domains: Option<Vec<String>>,

    /// Secret with per-cluster MAAS credentials (keys `MAAS_ENDPOINT`, `MAAS_API_KEY`); without
    /// it the provider's own credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_ref: Option<IdentityReference>,
}

/// Observed state of a MaasCluster, written for both Cluster API contracts at once.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaasClusterStatus {
    /// v1beta1 contract: the infrastructure is ready.
    #[serde(default)]
    pub ready: bool,

    /// v1beta2 contract: the infrastructure is provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,

    /// The API endpoint's DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// MAAS zones offered to Cluster API, in the shape the contract in use asks for.
    #[serde(default, skip_serializing_if = "FailureDomainsField::is_absent")]
    pub failure_domains: FailureDomainsField,

    /// Current state of the cluster infrastructure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Network facts of the cluster.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// DNS name of the Kubernetes API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

impl MaasClusterStatus {
    /// Writes readiness for both contracts at once (`ready` and `initialization.provisioned`),
    /// so no reader sees one without the other.
    pub fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
        self.initialization = Some(Initialization::provisioned(ready));
    }

    /// Writes the failure domains in the shape `contract` asks for.
    pub fn set_failure_domains(&mut self, domains: &[FailureDomain], contract: Contract) {
        self.failure_domains = FailureDomainsField::render(domains, contract);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_always_serialized_and_written_for_both_contracts() {
        let mut status = MaasClusterStatus::default();
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

    #[test]
    fn failure_domains_follow_the_contract() {
        let zones = [FailureDomain {
            name: "z1".into(),
            ..Default::default()
        }];
        let mut status = MaasClusterStatus::default();
        status.set_failure_domains(&zones, Contract::V1Beta2);
        assert!(status.failure_domains.0.is_array());
        status.set_failure_domains(&zones, Contract::V1Beta1);
        assert!(status.failure_domains.0.is_object());
        assert_eq!(status.failure_domains.domains().unwrap(), zones);
    }
}
