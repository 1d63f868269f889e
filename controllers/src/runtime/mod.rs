//! The manager process: flags, start-up discovery, leader election, HTTP servers, shutdown,
//! telemetry, metrics, the shared context and the reconcile wrapper every controller runs in.

pub mod backoff;
pub mod compat_flags;
pub mod context;
pub mod discovery;
pub mod error;
pub mod events;
pub mod flags;
pub mod leader;
pub mod lease_gate;
pub mod manager;
pub mod memo;
pub mod metrics;
pub mod reconciler;
pub mod servers;
pub mod shutdown;
pub mod telemetry;
pub mod watch_health;
