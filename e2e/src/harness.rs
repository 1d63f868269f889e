//! The local control plane for end-to-end tests: real etcd, kube-apiserver,
//! kube-controller-manager and Cluster API binaries as child processes on loopback.

pub mod capi;
pub mod certs;
pub mod control_plane;
pub mod crds;
pub mod error;
pub mod process;
pub mod tools;

pub use capi::CapiCore;
pub use control_plane::{ControlPlane, ControlPlaneOptions, client_from_kubeconfig};
pub use error::HarnessError;
