//! Kubernetes object helpers the controllers share: CAPI objects at the served version, merge
//! patches and finalizers, status writes that survive narrow CRDs, shared conditions.

pub mod capi_api;
pub mod conditions;
pub mod identity;
pub mod objects;
pub mod status_patch;
