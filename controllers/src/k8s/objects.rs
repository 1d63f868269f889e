//! Small helpers on Kubernetes objects: owners, finalizers, annotation and spec patches.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::runtime::error::{ReconcileError, Stage};

/// An `Api` over the watched namespace, or over all namespaces when none is set.
pub fn scoped<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The name of the owner of `kind` in the Cluster API group, when there is one.
pub fn capi_owner(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == kind && o.api_version.starts_with("cluster.x-k8s.io/"))
        .map(|o| o.name.clone())
}

/// Whether the object holds `finalizer`.
pub fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The annotation clusterctl move puts on source objects right before deleting them: the
/// object lives on in another management cluster, so its MAAS resources must stay.
pub const DELETE_FOR_MOVE: &str = "clusterctl.cluster.x-k8s.io/delete-for-move";

/// Whether the object carries the annotation.
pub fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// An annotation's value.
pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The finalizer list with `finalizer` added or removed; `None` when nothing changes.
pub fn finalizers_with(meta: &ObjectMeta, finalizer: &str, present: bool) -> Option<Vec<String>> {
    let current = meta.finalizers.clone().unwrap_or_default();
    let has = current.iter().any(|f| f == finalizer);
    match (has, present) {
        (false, true) => Some(current.into_iter().chain([finalizer.to_string()]).collect()),
        (true, false) => Some(current.into_iter().filter(|f| f != finalizer).collect()),
        _ => None,
    }
}

/// Adds or removes a finalizer. The patch carries the resourceVersion the list was computed
/// from, so a concurrent change to the list makes it fail (and the next pass recomputes)
/// instead of dropping someone else's finalizer.
pub async fn set_finalizer<K>(
    api: &Api<K>,
    meta: &ObjectMeta,
    finalizer: &str,
    present: bool,
) -> Result<(), ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(list) = finalizers_with(meta, finalizer, present) else {
        return Ok(());
    };
    let name = meta.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"finalizers": list, "resourceVersion": meta.resource_version}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ReconcileError::kube(Stage::Store, "update finalizers"))?;
    Ok(())
}

/// Applies a JSON merge patch (annotations, spec fields).
pub async fn merge_patch<K>(
    api: &Api<K>,
    name: &str,
    patch: Value,
    action: &'static str,
) -> Result<(), ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ReconcileError::kube(Stage::Store, action))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn finalizer_lists() {
        let meta = ObjectMeta {
            finalizers: Some(vec!["other".into()]),
            ..Default::default()
        };
        assert_eq!(
            finalizers_with(&meta, "ours", true),
            Some(vec!["other".to_string(), "ours".to_string()])
        );
        assert_eq!(finalizers_with(&meta, "ours", false), None);
        let with = ObjectMeta {
            finalizers: Some(vec!["ours".into(), "other".into()]),
            ..Default::default()
        };
        assert_eq!(
            finalizers_with(&with, "ours", false),
            Some(vec!["other".to_string()])
        );
        assert_eq!(finalizers_with(&with, "ours", true), None);
        assert!(has_finalizer(&with, "ours"));
        assert!(!has_finalizer(&ObjectMeta::default(), "ours"));
    }

    #[test]
    fn owners_are_found_by_kind_and_group() {
        let owner = |kind: &str, api: &str, name: &str| OwnerReference {
            kind: kind.into(),
            api_version: api.into(),
            name: name.into(),
            uid: "u".into(),
            ..Default::default()
        };
        let meta = ObjectMeta {
            owner_references: Some(vec![
                owner("Machine", "other.io/v1", "wrong"),
                owner("MachineSet", "cluster.x-k8s.io/v1beta2", "ms"),
                owner("Machine", "cluster.x-k8s.io/v1beta1", "m-0"),
            ]),
            ..Default::default()
        };
        assert_eq!(capi_owner(&meta, "Machine").as_deref(), Some("m-0"));
        assert_eq!(capi_owner(&meta, "Cluster"), None);
    }
}
