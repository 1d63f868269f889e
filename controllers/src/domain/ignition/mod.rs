//! Bootstrap data on its way to MAAS: Ignition configs get what bare metal needs (host name,
//! kubelet provider ID, optionally a wipe of stale partitions) without touching the pointer to
//! the real config (merge source, its headers, the CA); cloud-config passes through unchanged,
//! since MAAS's own datasource already gives cloud-init the host name.
//!
//! Known 3.x versions go through the ignition-config types, so a config that does not match its
//! schema is refused before any deploy. Newer 3.x versions, and configs with keys the typed
//! schema would drop, are patched at the JSON level instead so nothing is lost.

pub mod additions;
pub mod error;
pub mod typed;
pub mod value;

pub use additions::{DeployTarget, IgnitionPatchOptions, additions_for};
pub use error::IgnitionError;

use ignition_config::Config;
use serde_json::Value;

use crate::domain::user_data::UserDataFormat;

/// How a config was patched, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchPath {
    /// Through the typed ignition-config structures.
    Typed,
    /// At the JSON level (unknown 3.x version or keys outside the schema).
    Json,
}

/// A patched config ready for MAAS.
#[derive(Clone, PartialEq, Eq)]
pub struct PatchedIgnition {
    /// The serialized config.
    pub bytes: Vec<u8>,
    /// Its `ignition.version`.
    pub version: String,
    /// How it was patched.
    pub path: PatchPath,
}

impl std::fmt::Debug for PatchedIgnition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config carries a bearer token: never print it.
        f.debug_struct("PatchedIgnition")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("version", &self.version)
            .field("path", &self.path)
            .finish()
    }
}

/// The user data to deploy for bootstrap data of `format`: Ignition is patched for `target`,
/// cloud-config is returned as it is.
pub fn prepare_user_data(
    format: UserDataFormat,
    value: &[u8],
    target: &DeployTarget,
    options: &IgnitionPatchOptions,
) -> Result<Vec<u8>, IgnitionError> {
    match format {
        UserDataFormat::CloudConfig => Ok(value.to_vec()),
        UserDataFormat::Ignition => patch_ignition(value, target, options).map(|p| p.bytes),
    }
}

/// Checks and patches an Ignition config.
pub fn patch_ignition(
    value: &[u8],
    target: &DeployTarget,
    options: &IgnitionPatchOptions,
) -> Result<PatchedIgnition, IgnitionError> {
    let mut doc: Value = serde_json::from_slice(value).map_err(|e| IgnitionError::not_json(&e))?;
    let version = doc
        .get("ignition")
        .and_then(|i| i.get("version"))
        .and_then(Value::as_str)
        .ok_or(IgnitionError::NoVersion)?
        .to_string();
    check_version(&version)?;
    let add = additions_for(target, options);

    let typed = match Config::parse_slice(value) {
        Ok((config, warnings)) if warnings.is_empty() => Some(config),
        // Keys outside the schema: the typed structures would drop them.
        Ok(_) => None,
        Err(ignition_config::Error::Serialization(e)) => {
            return Err(IgnitionError::schema(&version, &e));
        }
        Err(ignition_config::Error::InvalidVersion(_)) => {
            return Err(IgnitionError::BadVersion(version));
        }
        // A 3.x version newer than the crate.
        Err(_) => None,
    };
    if let Some(mut config) = typed {
        let applied =
            typed::apply(&mut config, &add).map_err(|e| IgnitionError::schema(&version, &e))?;
        if matches!(applied, typed::TypedPatch::Done) {
            // The typed structures write unset options as `null`; Ignition reads both alike,
            // and without them the result is the same JSON the value patcher writes.
            let value = serde_json::to_value(&config).map_err(|_| IgnitionError::Serialize)?;
            let bytes =
                serde_json::to_vec(&without_nulls(value)).map_err(|_| IgnitionError::Serialize)?;
            return Ok(PatchedIgnition {
                bytes,
                version,
                path: PatchPath::Typed,
            });
        }
    }
    let Some(map) = doc.as_object_mut() else {
        return Err(IgnitionError::NotJson { line: 0, column: 0 });
    };
    value::apply(map, &add);
    let bytes = serde_json::to_vec(&doc).map_err(|_| IgnitionError::Serialize)?;
    Ok(PatchedIgnition {
        bytes,
        version,
        path: PatchPath::Json,
    })
}

/// `v` with every `null` object member removed, recursively.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Accepts `3.<minor>.<patch>` only: Ignition 3 refuses 2.x configs and pre-release versions
/// are experimental specs no stable Ignition reads.
fn check_version(version: &str) -> Result<(), IgnitionError> {
    let bad = || IgnitionError::BadVersion(version.to_string());
    let (core, pre) = match version.split_once(['-', '+']) {
        Some((core, rest)) => (core, Some(rest)),
        None => (version, None),
    };
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [major, _, _] = parts[..] else {
        return Err(bad());
    };
    if major != 3 || pre.is_some() {
        return Err(IgnitionError::UnsupportedVersion(version.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
