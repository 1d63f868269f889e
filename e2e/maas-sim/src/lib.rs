//! A MAAS 2.0 API simulator that real MAAS clients cannot tell from MAAS, for tests and the
//! quickstart.
//!
//! It serves the same paths, methods, `op`s, form and multipart parameters, OAuth checks
//! (PLAINTEXT and HMAC-SHA1, nonce replay, a 300-second timestamp window), status codes and
//! error bodies as MAAS, with the machine state machine on a scaled clock, AUTO IP assignment,
//! owner data, GPUs as node devices, DNS resources, fault injection and an admin view.
//!
//! In-process use:
//!
//! ```no_run
//! # async fn demo() -> Result<(), maas_sim::SimError> {
//! let sim = maas_sim::Simulator::start(maas_sim::SimConfig {
//!     machines: 4,
//!     gpu_machines: 1,
//!     ..Default::default()
//! })
//! .await?;
//! let url = sim.url(); // http://127.0.0.1:PORT/MAAS/
//! let key = sim.api_key().to_string();
//! # let _ = (url, key);
//! let deployed = sim.state().machines.iter().filter(|m| m.status == "Deployed").count();
//! # let _ = deployed;
//! sim.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Admin endpoints (JSON, no auth): `GET /_sim/state`, `GET /_sim/requests`,
//! `POST /_sim/requests/reset`, `GET|POST /_sim/faults`.

#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod boot_hook;
pub mod bootstrap_data;
pub mod cli;
pub mod config;
pub mod constraints;
pub mod describe;
pub mod dispatch;
pub mod error;
pub mod faults;
pub mod inventory;
pub mod kubeadm_config;
pub mod ledger;
pub mod lifecycle;
pub mod machine_update;
pub mod node_facts;
pub mod node_object;
pub mod oauth;
pub mod params;
pub mod render;
pub mod reply;
pub mod requests;
pub mod routes;
pub mod server;
pub mod shared;
pub mod snapshot;
pub mod status;
pub mod world;

pub use config::{ApiKey, SimConfig, SimUser};
pub use error::SimError;
pub use faults::{BreakMachine, FaultConfig, FaultRule};
pub use inventory::{GpuSpec, Inventory, MachineSpec};
pub use ledger::{LedgerAudit, LedgerEntry, LedgerEvent};
pub use requests::{RequestEntry, RequestStats};
pub use server::{SimHandle, Simulator};
pub use shared::{DnsView, MachineView, StateView};
pub use status::{NodeStatus, PowerState};
