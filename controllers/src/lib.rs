//! The MaasMachine, MaasCluster and MaasMachineTemplate controllers, the orphan sweep, and the
//! pieces of the `capmaas-manager` binary.
//!
//! One folder per controller ([`machine`], [`cluster`], [`template`], [`sweep`]), each with its
//! facts, decisions, steps, status and reconciler; [`domain`] holds the pure knowledge they share
//! (allocation constraints, Ignition, user data, provider IDs, addresses, timing, MAAS machine
//! phases); [`maas`] is how the controllers reach MAAS (credentials, the observer of machines in
//! transit); [`k8s`] the Kubernetes object helpers; [`runtime`] the manager process around them
//! (flags, leader election, servers, shutdown, telemetry, metrics, the shared reconcile wrapper).

pub mod cluster;
pub mod domain;
pub mod k8s;
pub mod maas;
pub mod machine;
pub mod runtime;
pub mod sweep;
pub mod template;
