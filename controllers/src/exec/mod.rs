//! Executors: perform decided steps against MAAS and a Kubernetes-side store.

pub mod cluster;
pub mod machine;

pub use cluster::{ClusterPassEnd, ClusterPassReport, run_cluster_pass, run_cluster_pass_report};
pub use machine::{
    BootstrapData, MachineStore, PassEnd, PassReport, UserDataOptions, run_machine_pass,
    run_machine_pass_with,
};
