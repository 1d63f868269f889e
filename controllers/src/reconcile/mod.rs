//! The Kubernetes shell around the decisions: reconcilers for MaasMachine and MaasCluster.

pub mod bootstrap_index;
pub mod capi_api;
pub mod cluster;
pub mod context;
pub mod credentials;
pub mod machine;
pub mod machine_store;
pub mod no_maas;
pub mod node;
pub mod objects;
pub mod status_patch;
pub mod steady;
pub mod template;
