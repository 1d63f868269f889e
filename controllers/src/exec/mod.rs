//! Executors: perform decided steps against MAAS and a Kubernetes-side store.

pub mod cluster;
pub mod machine;

pub use cluster::{ClusterPassEnd, run_cluster_pass};
pub use machine::{BootstrapData, MachineStore, PassEnd, PassReport, run_machine_pass};
