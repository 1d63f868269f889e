//! Typed async client for the Canonical MAAS 2.0 REST API.
//!
//! Build a [`MaasClient`] from a [`MaasConfig`] and call the operations of the [`MaasApi`]
//! trait. Controllers depend on the trait so they can be tested against a fake; the client speaks
//! MAAS's wire rules (OAuth 1.0 PLAINTEXT with a fresh nonce per attempt, `op` in the query,
//! trailing slashes, form bodies with repeated keys) and retries only transient failures.
//!
//! ```no_run
//! use maas_client::{AllocateParams, MaasApi, MaasClient, MaasConfig};
//!
//! # async fn example() -> Result<(), maas_client::MaasError> {
//! let client = MaasClient::new(MaasConfig::new("http://maas:5240/MAAS", "ck:tk:secret"))?;
//! let machine = client
//!     .allocate(&AllocateParams { cpu_count: Some(4), tags: vec!["gpu".into()], ..Default::default() })
//!     .await?;
//! println!("{} is {}", machine.system_id, machine.status);
//! # Ok(())
//! # }
//! ```

mod api;
mod auth;
mod classify;
mod client;
mod config;
mod endpoint;
mod error;
mod observer;
mod operation;
mod params;
mod retry;
mod types;

pub use api::MaasApi;
pub use auth::{ApiKey, authorization_header};
pub use classify::{classify_failure, parse_field_errors, parse_retry_after};
pub use client::MaasClient;
pub use config::{MaasConfig, RetryConfig, TlsConfig};
pub use endpoint::normalize_endpoint;
pub use error::MaasError;
pub use observer::{NoopObserver, RequestObserver, SharedObserver};
pub use operation::Operation;
pub use params::{
    AllocateParams, DeployParams, DeviceConstraint, DnsResourceFilter, DnsResourceParams,
    MachineFilter, Pairs, ReleaseParams, owner_data_pairs,
};
pub use retry::next_delay;
pub use types::{
    BootResource, DnsResource, Domain, Interface, InterfaceLink, Machine, MachineStatus,
    NodeDevice, NumaNode, PowerState, PowerStateReply, ResourcePool, SubnetRef, Tag, Version, Zone,
};
