//! Status writes that survive CRDs narrower than our types.
//!
//! HyperShift installs the Go provider's base-shape CRDs, whose status schema lacks fields we
//! write (`initialization`, `hardware`, condition `observedGeneration`, ...). A JSON merge patch
//! is pruned silently by the API server, but a server-side apply carrying an undeclared field is
//! refused whatever the field validation asks (the API server types the patch before pruning).
//! So statuses go by server-side apply, and once the API server refuses one for undeclared
//! fields, by merge patch for the rest of the process's life, with explicit nulls for whatever
//! the previous status had and the new one drops (what apply would have removed).

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::info;

use crate::runtime::error::{ReconcileError, Stage};

/// Whether the installed CRDs are narrower than our types. Set once the API server refused an
/// apply for undeclared fields: every CRD of this provider comes from the same install, so they
/// are all narrow. One per manager (in its context), so tests and processes never share it.
#[derive(Debug, Default)]
pub struct StatusShape {
    narrow: AtomicBool,
}

impl StatusShape {
    /// A shape known to be narrow from the start (status by merge patch).
    pub fn narrow() -> Self {
        let shape = StatusShape::default();
        shape.mark_narrow();
        shape
    }

    /// Whether an apply was refused for undeclared fields.
    pub fn is_narrow(&self) -> bool {
        self.narrow.load(Ordering::Relaxed)
    }

    fn mark_narrow(&self) {
        self.narrow.store(true, Ordering::Relaxed);
    }
}

/// The API server's words when an apply carries a field the CRD schema does not declare.
const UNDECLARED: &str = "field not declared in schema";

/// Whether an error is the API server refusing an apply for undeclared fields.
pub fn is_undeclared_field_error(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.message.contains(UNDECLARED))
}

/// The merge patch that turns `prev` into `new`: `new` itself, plus `null` for every key of an
/// object in `prev` that `new` no longer has (recursively through objects present in both).
pub fn merge_patch(prev: &Value, new: &Value) -> Value {
    match (prev, new) {
        (Value::Object(p), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, v) in n {
                let patched = match p.get(k) {
                    Some(pv) => merge_patch(pv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), patched);
            }
            for k in p.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

/// Writes `status` of object `name`: server-side apply with `manager`, or a merge patch from
/// `prev` when the CRD is narrower than our types.
pub async fn write_status<K>(
    shape: &StatusShape,
    api: &Api<K>,
    name: &str,
    manager: &str,
    prev: Option<Value>,
    status: Value,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if !shape.is_narrow() {
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        match api
            .patch_status(
                name,
                &PatchParams::apply(manager).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_undeclared_field_error(&e) => {
                info!(
                    kind = %K::kind(&()),
                    "the installed CRD is narrower than this provider's types: status by merge patch from now on"
                );
                shape.mark_narrow();
            }
            Err(e) => return Err(e),
        }
    }
    let prev = prev.unwrap_or(Value::Object(Map::new()));
    let patch = json!({"status": merge_patch(&prev, &status)});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// [`write_status`] for a typed status, with errors labelled by `action` (e.g.
/// `write MaasMachine status`): the one path both reconcilers write status through.
pub async fn write_typed_status<K, S>(
    shape: &StatusShape,
    api: &Api<K>,
    name: &str,
    action: &'static str,
    prev: Option<&S>,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: serde::Serialize,
{
    let kube_err = |source| ReconcileError::Kube {
        stage: Stage::Status,
        action,
        source,
    };
    let to_value =
        |s: &S| serde_json::to_value(s).map_err(|e| kube_err(kube::Error::SerdeError(e)));
    let prev = prev.map(to_value).transpose()?;
    write_status(
        shape,
        api,
        name,
        crate::runtime::context::FIELD_MANAGER,
        prev,
        to_value(status)?,
    )
    .await
    .map_err(kube_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_keys_become_nulls_recursively() {
        let prev = json!({
            "ready": false,
            "failureReason": "CreateError",
            "network": {"dnsName": "a.maas", "other": 1},
            "conditions": [{"type": "Ready", "status": "False"}]
        });
        let new = json!({
            "ready": true,
            "network": {"other": 2},
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
        });
        assert_eq!(
            merge_patch(&prev, &new),
            json!({
                "ready": true,
                "failureReason": null,
                "network": {"dnsName": null, "other": 2},
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
            })
        );
    }

    #[test]
    fn no_previous_status_is_the_new_status() {
        let new = json!({"ready": true});
        assert_eq!(merge_patch(&json!({}), &new), new);
        assert_eq!(merge_patch(&Value::Null, &new), new);
    }

    #[test]
    fn recognises_the_refusal() {
        let refusal = kube::Error::Api(Box::new(kube::core::Status {
            message: "failed to create typed patch object (/; infrastructure.cluster.x-k8s.io/v1beta1, Kind=MaasMachine): .status.initialization: field not declared in schema".into(),
            code: 500,
            ..Default::default()
        }));
        assert!(is_undeclared_field_error(&refusal));
        let other = kube::Error::Api(Box::new(kube::core::Status {
            message: "conflict".into(),
            code: 409,
            ..Default::default()
        }));
        assert!(!is_undeclared_field_error(&other));
    }
}
