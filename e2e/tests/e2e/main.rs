//! The end-to-end tests of capmaas-rs as one test binary, so kube and k8s-openapi are linked once.
//!
//! Each module is one scenario family; the `*_support` modules are helpers several of them share.
//! Modules named `sim_*` need only the MAAS simulator (no Go tools, no control plane).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clusterctl_support;
mod hypershift_gpu;
mod hypershift_support;
mod kubeadm_support;
mod rbac_support;

mod api_server_restart;
mod autoscaler_contract;
mod bad_runtime_input;
mod capi_core_smoke;
mod chaos;
mod cluster_endpoint;
mod cluster_lifecycle;
mod clusterclass;
mod clusterctl;
mod clusterctl_kubeadm;
mod clusterctl_move;
mod clusterctl_packaging;
mod crd_validation;
mod endpoint_networks;
mod existing_cluster;
mod go_provider_adoption;
mod gpu_pools;
mod hypershift;
mod identity_sites;
mod leader_failover;
mod leader_gate;
mod leak_scan;
mod lost_answers;
mod maas_calls;
mod maas_restart;
mod machine_health_check;
mod manager_restart;
mod model_serving_samples;
mod namespace_deletion;
mod node_prep;
mod pause;
mod rbac;
mod sim_client;
mod storms;
mod watch_filter;
