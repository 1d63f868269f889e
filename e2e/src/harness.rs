//! The local control plane for end-to-end tests: real etcd, kube-apiserver,
//! kube-controller-manager and Cluster API binaries as child processes on loopback, plus the
//! MAAS simulator and our manager.

pub mod audit;
pub mod capi;
pub mod certs;
pub mod cluster_yaml;
pub mod control_plane;
pub mod crds;
pub mod env;
pub mod error;
pub mod leaks;
pub mod manager;
pub mod manifests;
pub mod observe;
pub mod process;
pub mod scenario;
pub mod shared;
pub mod test_env;
pub mod tls_front;
pub mod tools;

pub use capi::CapiCore;
pub use control_plane::{ControlPlane, ControlPlaneOptions, client_from_kubeconfig};
pub use env::{Env, EnvOptions};
pub use error::HarnessError;
pub use manager::{Manager, ManagerOptions};
pub use test_env::{TestEnv, TestRun};
