//! The MaasCluster controller: the control-plane endpoint (a MAAS DNS record or a given host),
//! failure domains, readiness, and the record's removal on deletion.

pub mod decide;
pub mod endpoint_addresses;
pub mod reconcile;
pub mod status;
pub mod steps;
pub mod watches;
