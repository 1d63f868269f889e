//! Typed async client for the Canonical MAAS 2.0 REST API.
//!
//! Build a [`MaasClient`] from a [`MaasConfig`] and call the operations of the [`MaasApi`]
//! trait. Controllers depend on the trait so they can be tested against a fake; the client speaks
//! MAAS's wire rules (OAuth 1.0 PLAINTEXT with a fresh nonce per attempt, `op` in the query,
//! trailing slashes, form bodies with repeated keys) and retries only transient failures.
//!
//! # Errors and retries
//!
//! Every failure is a [`MaasError`]; [`MaasError::kind`] gives a stable label for metrics and
//! events. Only [`MaasError::Retryable`] failures (409 or 503 with `Retry-After`, 503, connection
//! failures, timeouts) are retried, inside the bounds of [`RetryConfig`] (attempts and total
//! delay); `Retry-After` replaces the client's own backoff. Each attempt is signed anew. A
//! timeout on a `POST` is retried too, so an allocate may have happened without an answer: the
//! provider tags allocations with `agent_name` and adopts such machines instead of leaking them.
//!
//! # Observing requests
//!
//! [`MaasClient::with_observer`] takes a [`RequestObserver`] (or a closure
//! `Fn(Operation, &str)`) that sees every attempt with its outcome, for the
//! `capmaas_maas_requests_total{op,code}` metric. Requests are also logged at `debug` with the
//! operation, status and duration; the API key and user data are never logged.
//!
//! # Example
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
pub use error::{MaasError, MaasErrorClass};
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
