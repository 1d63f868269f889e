//! The MaasCluster and MaasMachine controllers and the pieces of the `capmaas-manager` binary.
//!
//! Decisions are pure functions in [`decide`] and the small modules beside it; the reconcilers
//! gather facts, call them, and apply the result.

pub mod addresses;
pub mod allocation;
pub mod decide;
pub mod error;
pub mod exec;
pub mod flags;
pub mod ignition;
pub mod image;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod observe;
pub mod provider_id;
pub mod reconcile;
pub mod servers;
pub mod shutdown;
pub mod status;
pub mod sweep;
pub mod telemetry;
pub mod template_status;
pub mod timing;
pub mod user_data;
