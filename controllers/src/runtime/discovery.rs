//! What the manager learns at start from the API server: where to watch, the Cluster API version
//! served, the contract to write, this management cluster's identity and how to write statuses.
//! Each has a fallback that needs no cluster-scoped read, so the manager runs under a namespaced
//! Role with no ClusterRole at all (HyperShift's).

use capmaas_api::capi::CapiVersion;
use capmaas_api::{Contract, MaasCluster, MaasMachine};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, ObjectMeta, PostParams, Resource};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::k8s::status_patch::StatusShape;

/// The ConfigMap whose uid is the management identity when CRDs may not be read.
pub const IDENTITY_CONFIGMAP: &str = "capmaas-management-identity";

/// Whether `error` is the API server's refusal for lack of permission.
fn forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

/// The namespace to watch: the one the flags name; else every namespace, unless listing
/// MaasMachines cluster-wide is forbidden, and then the manager's own (its ServiceAccount's, or
/// the kubeconfig context's): HyperShift's 4.21 line passes no `--namespace` and grants only a
/// Role.
pub async fn watch_scope(client: &Client, flagged: Option<&str>) -> Option<String> {
    if let Some(ns) = flagged {
        return Some(ns.to_string());
    }
    let probe = Api::<MaasMachine>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await;
    match probe {
        Err(error) if forbidden(&error) => {
            let own = client.default_namespace().to_string();
            warn!(
                namespace = %own,
                "listing MaasMachines in all namespaces is forbidden; watching this manager's own namespace only (pass --namespace to choose another)"
            );
            Some(own)
        }
        _ => None,
    }
}

/// The CAPI version to read, from API discovery (which every authenticated user may read);
/// v1beta1 when discovery fails (CAPI not installed yet), since every CAPI release serves it.
pub async fn discover_capi(client: &Client) -> CapiVersion {
    match kube::discovery::group(client, capmaas_api::capi::GROUP).await {
        Ok(group) => {
            let versions: Vec<&str> = group.versions().collect();
            CapiVersion::preferred(&versions).unwrap_or(CapiVersion::V1Beta1)
        }
        Err(error) => {
            warn!(%error, "cannot discover Cluster API versions; reading v1beta1");
            CapiVersion::V1Beta1
        }
    }
}

/// The MaasCluster CRD, read once at start: its labels give the contract and its schema the
/// status shape.
pub async fn maas_cluster_crd(client: &Client) -> kube::Result<Option<CustomResourceDefinition>> {
    let crd_name = format!("{}.{}", MaasCluster::plural(&()), capmaas_api::GROUP);
    Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(&crd_name)
        .await
}

/// The contract to write, from our CRD's labels and what CAPI serves. Without the right to read
/// CRDs, the v1beta1 contract: every Cluster API release that serves our objects reads it.
pub fn contract_for(
    crd: &kube::Result<Option<CustomResourceDefinition>>,
    capi: CapiVersion,
) -> Contract {
    match crd {
        Ok(crd) => Contract::negotiate(
            crd.as_ref().and_then(|c| c.metadata.labels.as_ref()),
            capi == CapiVersion::V1Beta2,
        ),
        Err(error) if forbidden(error) => {
            info!(
                "reading CRDs is forbidden; writing the v1beta1 contract, which every Cluster API release reads"
            );
            Contract::V1Beta1
        }
        Err(error) => {
            warn!(%error, "cannot read the MaasCluster CRD; writing the v1beta1 contract");
            Contract::V1Beta1
        }
    }
}

/// How statuses are written, from the MaasCluster CRD's status schema: by merge patch from the
/// start when it lacks what we write (HyperShift's copy of the Go provider's CRDs) or cannot be
/// read (a namespaced Role, as HyperShift grants), so the API server never has to refuse an
/// apply first; else by server-side apply, falling back on the first refusal.
pub fn status_shape_for(crd: &kube::Result<Option<CustomResourceDefinition>>) -> StatusShape {
    match crd {
        Ok(Some(crd)) if declares_our_status(crd) => StatusShape::default(),
        Ok(None) => StatusShape::default(),
        Ok(Some(_)) => {
            info!("the installed CRDs are narrower than ours; statuses are written by merge patch");
            StatusShape::narrow()
        }
        Err(_) => StatusShape::narrow(),
    }
}

/// Whether the storage version's status schema declares `initialization` and the conditions'
/// `observedGeneration`, which only our CRDs have.
fn declares_our_status(crd: &CustomResourceDefinition) -> bool {
    let Some(version) = crd.spec.versions.iter().find(|v| v.storage) else {
        return false;
    };
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    let status = schema
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("status"))
        .and_then(|s| s.properties.as_ref());
    let Some(status) = status else {
        return false;
    };
    let condition_fields = status
        .get("conditions")
        .and_then(|c| c.items.as_ref())
        .and_then(|items| match items {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => s.properties.as_ref(),
            _ => None,
        });
    status.contains_key("initialization")
        && condition_fields.is_some_and(|f| f.contains_key("observedGeneration"))
}

/// This management cluster's identity, written into owner data so the orphan sweep releases only
/// machines this cluster allocated: the uid of the MaasMachine CRD (stable across restarts and
/// upgrades, different in every management cluster). Without the right to read CRDs, the uid
/// of the `capmaas-management-identity` ConfigMap in the watched namespace, made on first
/// start. `None` when neither can be read: the sweep then releases nothing and says so.
pub async fn management_identity(client: &Client, namespace: Option<&str>) -> Option<String> {
    let crd_name = format!("{}.{}", MaasMachine::plural(&()), capmaas_api::GROUP);
    match Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(&crd_name)
        .await
    {
        Ok(Some(crd)) => crd.metadata.uid.filter(|u| !u.is_empty()),
        Ok(None) => {
            warn!(crd = %crd_name, "CRD not found; the orphan sweep stays off");
            None
        }
        Err(error) if forbidden(&error) => match namespace {
            Some(ns) => namespace_identity(client, ns).await,
            None => {
                warn!(
                    "reading CRDs is forbidden and no namespace is watched; the orphan sweep stays off"
                );
                None
            }
        },
        Err(error) => {
            warn!(%error, "cannot read the MaasMachine CRD; the orphan sweep stays off");
            None
        }
    }
}

/// The uid of the identity ConfigMap in `ns`, made when missing.
async fn namespace_identity(client: &Client, ns: &str) -> Option<String> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let made = ConfigMap {
        metadata: ObjectMeta {
            name: Some(IDENTITY_CONFIGMAP.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    let found = match api.get_opt(IDENTITY_CONFIGMAP).await {
        Ok(Some(cm)) => Ok(cm),
        Ok(None) => match api.create(&PostParams::default(), &made).await {
            Err(kube::Error::Api(status)) if status.code == 409 => {
                api.get(IDENTITY_CONFIGMAP).await
            }
            other => other,
        },
        Err(error) => Err(error),
    };
    match found {
        Ok(cm) => {
            info!(namespace = %ns, configmap = IDENTITY_CONFIGMAP, "reading CRDs is forbidden; the management identity is this ConfigMap's uid");
            cm.metadata.uid.filter(|u| !u.is_empty())
        }
        Err(error) => {
            warn!(%error, namespace = %ns, "cannot read or make the management identity ConfigMap; the orphan sweep stays off");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(status: serde_json::Value) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": "maasclusters.infrastructure.cluster.x-k8s.io"},
            "spec": {
                "group": "infrastructure.cluster.x-k8s.io",
                "names": {"kind": "MaasCluster", "plural": "maasclusters"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1beta1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "status": {"type": "object", "properties": status}
                    }}}
                }]
            }
        }))
        .unwrap()
    }

    #[test]
    fn an_unreadable_crd_means_v1beta1_and_merge_patches() {
        let forbidden: kube::Result<Option<CustomResourceDefinition>> = Err(kube::Error::Api(
            kube::core::Status::failure("crds is forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        ));
        assert_eq!(
            contract_for(&forbidden, CapiVersion::V1Beta2),
            Contract::V1Beta1
        );
        assert!(status_shape_for(&forbidden).is_narrow());
        let absent = Ok(None);
        assert!(!status_shape_for(&absent).is_narrow());
        let go_shape = Ok(Some(crd(json!({"ready": {"type": "boolean"}}))));
        assert!(status_shape_for(&go_shape).is_narrow());
    }

    #[test]
    fn only_our_status_schema_counts_as_wide() {
        let condition = |fields: serde_json::Value| json!({"type": "array", "items": {"type": "object", "properties": fields}});
        let ours = crd(json!({
            "initialization": {"type": "object"},
            "conditions": condition(json!({"type": {"type": "string"}, "observedGeneration": {"type": "integer"}}))
        }));
        let go_shape = crd(json!({
            "ready": {"type": "boolean"},
            "conditions": condition(json!({"type": {"type": "string"}}))
        }));
        let half = crd(json!({
            "initialization": {"type": "object"},
            "conditions": condition(json!({"type": {"type": "string"}}))
        }));
        assert!(declares_our_status(&ours));
        assert!(!declares_our_status(&go_shape));
        assert!(!declares_our_status(&half));
    }
}
