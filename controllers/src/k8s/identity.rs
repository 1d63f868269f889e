//! The identity Secret's finalizer: held while a MaasCluster names the Secret, so the credentials
//! outlive every machine allocated with them, even when the whole namespace is deleted at once.
//! The same patch labels the Secret for `clusterctl move`, which carries labelled Secrets with the
//! cluster whatever their name.

use capmaas_api::{MaasCluster, finalizers};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::k8s::objects::{finalizers_with, has_finalizer, set_finalizer};
use crate::maas::credentials::credentials_secret_names;
use crate::runtime::error::{ReconcileError, Stage};

/// The label `clusterctl move` carries an object by, whatever its name and owners.
pub const MOVE_LABEL: &str = "clusterctl.cluster.x-k8s.io/move";

/// The merge patch that gives the identity Secret its finalizer and the move label, or `None`
/// when it has both or is being deleted (a finalizer cannot be added then, and the machines are
/// released before the MaasCluster lets go of it). It carries the resourceVersion the finalizer
/// list was computed from, so a concurrent change makes it fail instead of dropping another
/// finalizer.
pub fn protection_patch(meta: &ObjectMeta) -> Option<Value> {
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let finalizers = finalizers_with(meta, finalizers::MAAS_IDENTITY, true);
    let labelled = meta
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(MOVE_LABEL));
    if finalizers.is_none() && labelled {
        return None;
    }
    let mut metadata = json!({"resourceVersion": meta.resource_version});
    if let Some(list) = finalizers {
        metadata["finalizers"] = json!(list);
    }
    if !labelled {
        metadata["labels"] = json!({ MOVE_LABEL: "" });
    }
    Some(json!({ "metadata": metadata }))
}

/// Gives the identity Secret (as the pass read it) its finalizer and move label, when it lacks
/// either.
pub async fn protect(client: &Client, ns: &str, secret: &Secret) -> Result<(), ReconcileError> {
    let name = secret.name_any();
    let Some(patch) = protection_patch(&secret.metadata) else {
        return Ok(());
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let applied = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(ReconcileError::kube(
            Stage::Store,
            "protect identity Secret",
        ));
    match applied {
        // Installed with a role that may not patch Secrets (an older manifest): the cluster works
        // as before, without the guard, and the log says so.
        Err(ReconcileError::Kube {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 403 => {
            tracing::warn!(secret = %name, "may not patch Secrets: the identity Secret is not protected from deletion");
            Ok(())
        }
        other => other,
    }
}

/// Removes the finalizer from the identity Secret `cluster` names, unless another MaasCluster of
/// the namespace that still holds its own finalizer names it too. Runs as the MaasCluster's last
/// step, when all its machines are released.
pub async fn let_go(
    client: &Client,
    ns: &str,
    cluster: &MaasCluster,
) -> Result<(), ReconcileError> {
    let (named, hosted) = credentials_secret_names(cluster);
    let name = named.clone().unwrap_or(hosted);
    let others = Api::<MaasCluster>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .map_err(ReconcileError::kube(Stage::Store, "list MaasClusters"))?;
    let still_used = others.items.iter().any(|c| {
        c.uid() != cluster.uid()
            && has_finalizer(&c.metadata, finalizers::MAAS_CLUSTER)
            && credentials_secret_names(c).0 == named
            && named.is_some()
    });
    if still_used {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match api
        .get_metadata_opt(&name)
        .await
        .map_err(ReconcileError::kube(Stage::Store, "read identity Secret"))?
    {
        Some(secret) => {
            set_finalizer(&api, &secret.metadata, finalizers::MAAS_IDENTITY, false).await
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn meta(finalizers: &[&str], labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            resource_version: Some("7".into()),
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_secret_gets_the_finalizer_and_the_move_label_in_one_patch() {
        let patch = protection_patch(&meta(&["other"], &[("team", "a")])).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {
                "resourceVersion": "7",
                "finalizers": ["other", finalizers::MAAS_IDENTITY],
                "labels": {MOVE_LABEL: ""},
            }})
        );
    }

    #[test]
    fn only_what_is_missing_is_patched() {
        let labelled = protection_patch(&meta(&[], &[(MOVE_LABEL, "")])).unwrap();
        assert_eq!(
            labelled["metadata"]["finalizers"],
            json!([finalizers::MAAS_IDENTITY])
        );
        assert!(labelled["metadata"].get("labels").is_none());
        let finalized = protection_patch(&meta(&[finalizers::MAAS_IDENTITY], &[])).unwrap();
        assert!(finalized["metadata"].get("finalizers").is_none());
        assert_eq!(finalized["metadata"]["labels"], json!({MOVE_LABEL: ""}));
        assert_eq!(
            protection_patch(&meta(&[finalizers::MAAS_IDENTITY], &[(MOVE_LABEL, "true")])),
            None
        );
    }

    #[test]
    fn a_secret_being_deleted_is_left_alone() {
        let mut deleting = meta(&[], &[]);
        deleting.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(protection_patch(&deleting), None);
    }
}
