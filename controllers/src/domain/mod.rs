//! Pure domain knowledge shared by the controllers: no I/O, no Kubernetes client.

pub mod addresses;
pub mod allocation;
pub mod ignition;
pub mod image;
pub mod inventory;
pub mod maas_machine;
pub mod observe;
pub mod provider_id;
pub mod reasons;
pub mod timing;
pub mod user_data;
