//! Pure decisions: the next step for a MaasMachine or a MaasCluster from the facts gathered by
//! the reconcilers. No I/O here; every branch is unit-tested.

pub mod cluster;
pub mod gpu;
pub mod machine;
pub mod phase;
pub mod reasons;

pub use cluster::{ClusterAction, ClusterFacts, DnsView, decide_cluster};
pub use machine::{
    MaasView, MachineAction, MachineFacts, OwnerMachine, ReadyMachine, decide_machine,
};
pub use phase::{MaasPhase, ObservedMachine, Ownership, Power};
pub use reasons::{FailReason, WaitReason};
