//! The identity Secret's finalizer: held while a MaasCluster names the Secret, so the credentials
//! outlive every machine allocated with them, even when the whole namespace is deleted at once.

use capmaas_api::{MaasCluster, finalizers};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::k8s::objects::{has_finalizer, set_finalizer};
use crate::maas::credentials::credentials_secret_names;
use crate::runtime::error::{ReconcileError, Stage};

/// Adds the finalizer to the identity Secret (as the pass read it), when it lacks it. A Secret
/// already being deleted is left alone: the finalizer cannot be added then, and the machines are
/// released before the MaasCluster lets go of it.
pub async fn protect(client: &Client, ns: &str, secret: &Secret) -> Result<(), ReconcileError> {
    let meta = &secret.metadata;
    let name = secret.name_any();
    if meta.deletion_timestamp.is_some() || has_finalizer(meta, finalizers::MAAS_IDENTITY) {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match set_finalizer(&api, meta, finalizers::MAAS_IDENTITY, true).await {
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
