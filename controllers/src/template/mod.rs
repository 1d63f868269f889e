//! The MaasMachineTemplate controller: capacity and node facts for scale from zero.

pub mod reconcile;
pub mod status;
