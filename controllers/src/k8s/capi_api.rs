//! Reads Cluster API objects at the version the API server serves.
//!
//! The api crate's `Machine` and `Cluster` carry the version as their dynamic type but declare a
//! static namespaced scope, which `Api::namespaced_with` does not accept; reading them as
//! `DynamicObject`s with an explicit `ApiResource` and decoding into the typed structs keeps the
//! version choice at run time.

use capmaas_api::capi::{CapiVersion, GROUP};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::runtime::error::{ReconcileError, Stage};

/// A Cluster API kind we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapiKind {
    /// `Machine`.
    Machine,
    /// `Cluster`.
    Cluster,
}

impl CapiKind {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            CapiKind::Machine => ("Machine", "machines"),
            CapiKind::Cluster => ("Cluster", "clusters"),
        }
    }
}

/// The API resource of a CAPI kind at a version.
pub fn capi_resource(kind: CapiKind, version: CapiVersion) -> ApiResource {
    let (kind, plural) = kind.names();
    ApiResource {
        group: GROUP.to_string(),
        version: version.as_str().to_string(),
        api_version: format!("{GROUP}/{}", version.as_str()),
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// A dynamic API for a CAPI kind; namespaced when `namespace` is given.
pub fn capi_api(
    client: &Client,
    kind: CapiKind,
    version: CapiVersion,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = capi_resource(kind, version);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Decodes a dynamic object into a typed CAPI struct.
pub fn decode<T: DeserializeOwned>(obj: DynamicObject) -> Result<T, ReconcileError> {
    let value = serde_json::to_value(obj)
        .map_err(|e| ReconcileError::Invalid(format!("CAPI object: {e}")))?;
    serde_json::from_value(value).map_err(|e| ReconcileError::Invalid(format!("CAPI object: {e}")))
}

/// Reads one CAPI object.
pub async fn get_capi<T: DeserializeOwned>(
    client: &Client,
    kind: CapiKind,
    version: CapiVersion,
    namespace: &str,
    name: &str,
) -> Result<Option<T>, ReconcileError> {
    capi_api(client, kind, version, Some(namespace))
        .get_opt(name)
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "read CAPI object"))?
        .map(decode)
        .transpose()
}

/// Lists CAPI objects of a namespace matching a label selector.
pub async fn list_capi<T: DeserializeOwned>(
    client: &Client,
    kind: CapiKind,
    version: CapiVersion,
    namespace: &str,
    selector: &str,
) -> Result<Vec<T>, ReconcileError> {
    capi_api(client, kind, version, Some(namespace))
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "list CAPI objects"))?
        .items
        .into_iter()
        .map(decode)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capmaas_api::capi::Machine;

    #[test]
    fn resources_and_decoding() {
        let ar = capi_resource(CapiKind::Cluster, CapiVersion::V1Beta1);
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("cluster.x-k8s.io/v1beta1", "clusters")
        );
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "metadata": {"name": "m", "namespace": "ns", "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
            "spec": {"bootstrap": {"dataSecretName": "boot"}, "failureDomain": "az1"}
        }))
        .unwrap();
        let m: Machine = decode(obj).unwrap();
        assert_eq!(m.bootstrap_data_secret_name(), Some("boot"));
        assert_eq!(m.cluster_name(), Some("c"));
    }
}
