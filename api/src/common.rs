//! Small types shared by several kinds, with the JSON shapes Cluster API expects of providers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the workload cluster's API server answers; Cluster API copies it into the Cluster.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiEndpoint {
    /// Host name or IP address of the API server.
    pub host: String,
    /// TCP port of the API server.
    pub port: i32,
}

impl ApiEndpoint {
    /// A zero endpoint is what Go writers serialize for "not set" (their struct has no omitempty).
    pub fn is_set(&self) -> bool {
        !self.host.is_empty() && self.port != 0
    }
}

/// The v1beta2 contract's way to say "infrastructure provisioned"; written together with the
/// v1beta1 `status.ready` so both contracts read the same truth.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Initialization {
    /// True once the infrastructure is provisioned; never goes back to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<bool>,
}

impl Initialization {
    /// The value both contracts agree on for a given readiness.
    pub fn provisioned(done: bool) -> Self {
        Self {
            provisioned: Some(done),
        }
    }
}

/// The kinds of address Cluster API copies from a machine to its Machine (and HyperShift's
/// CRDs allow no others).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MachineAddressType {
    /// The machine's host name.
    Hostname,
    /// An address reachable from outside the cluster network.
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    /// An address reachable inside the cluster network.
    #[serde(rename = "InternalIP")]
    InternalIp,
    /// A DNS name reachable from outside the cluster network.
    #[serde(rename = "ExternalDNS")]
    ExternalDns,
    /// A DNS name reachable inside the cluster network.
    #[serde(rename = "InternalDNS")]
    InternalDns,
}

/// One address of a machine, in the Cluster API `MachineAddress` shape.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct MachineAddress {
    /// What kind of address this is.
    #[serde(rename = "type")]
    pub type_: MachineAddressType,
    /// The address itself (IP or DNS name).
    pub address: String,
}

impl MachineAddress {
    /// Builds an address; a shorthand for the many places the controller lists them.
    pub fn new(type_: MachineAddressType, address: impl Into<String>) -> Self {
        Self {
            type_,
            address: address.into(),
        }
    }
}
