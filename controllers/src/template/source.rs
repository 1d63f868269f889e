//! Which MAAS a template's machines come from, and what that MAAS has free for it: the Cluster
//! the template belongs to (its cluster-name label, else a Cluster owner reference, else the
//! namespace's only MaasCluster), that Cluster's MaasCluster and its credentials, else the
//! provider-wide credentials.

use capmaas_api::capi::{Cluster, cluster_name_label};
use capmaas_api::condition_names::reasons;
use capmaas_api::{MaasCluster, MaasMachineSpec, MaasMachineTemplate};
use kube::Api;

use crate::domain::inventory::{Constraint, InventoryMachine, Wanted};
use crate::k8s::capi_api::{CapiKind, get_capi};
use crate::maas::credentials::{MaasCredentials, identity_secret};
use crate::maas::inventory::INVENTORY_MAX_AGE;
use crate::machine::facts::requirements;
use crate::runtime::context::Context;
use crate::runtime::error::{ReconcileError, Stage};

/// Where the template's machines come from.
#[derive(Clone, Debug)]
pub enum TemplateSource {
    /// Its Cluster is paused: nothing is reconciled.
    Paused,
    /// The MaasCluster whose credentials apply; `None`: the provider-wide credentials.
    Cluster(Box<Option<MaasCluster>>),
    /// The template names a Cluster or MaasCluster that does not exist (yet).
    Unknown(String),
}

/// What the template's MAAS has free, or why it could not be asked (condition reason and
/// message); and the zone an allocation would name.
#[derive(Clone, Debug)]
pub struct InventoryRead {
    /// The Ready machines.
    pub machines: Result<Vec<InventoryMachine>, (&'static str, String)>,
    /// The zone: the spec's, else the credentials Secret's, else the provider-wide default.
    pub zone: Option<String>,
}

/// The Cluster a template belongs to: its label, else a Cluster owner reference.
pub fn owning_cluster(obj: &MaasMachineTemplate) -> Option<String> {
    if let Some(name) = cluster_name_label(&obj.metadata) {
        return Some(name.to_string());
    }
    obj.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Cluster" && o.api_version.starts_with("cluster.x-k8s.io/"))
        .map(|o| o.name.clone())
}

/// The template's Cluster and MaasCluster, read.
pub async fn template_source(
    ctx: &Context,
    ns: &str,
    obj: &MaasMachineTemplate,
) -> Result<TemplateSource, ReconcileError> {
    let Some(name) = owning_cluster(obj) else {
        return only_maas_cluster(ctx, ns).await;
    };
    let Some(cluster) =
        get_capi::<Cluster>(&ctx.client, CapiKind::Cluster, ctx.capi, ns, &name).await?
    else {
        return Ok(TemplateSource::Unknown(format!(
            "Cluster {ns}/{name} not found"
        )));
    };
    if cluster.paused() {
        return Ok(TemplateSource::Paused);
    }
    let infra = cluster
        .spec
        .infrastructure_ref
        .as_ref()
        .and_then(|r| r.name.clone());
    let Some(infra) = infra else {
        return Ok(TemplateSource::Cluster(Box::new(None)));
    };
    let api: Api<MaasCluster> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .get_opt(&infra)
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "read MaasCluster"))?
    {
        Some(mc) => Ok(TemplateSource::Cluster(Box::new(Some(mc)))),
        None => Ok(TemplateSource::Unknown(format!(
            "MaasCluster {ns}/{infra} not found"
        ))),
    }
}

/// A template that names no Cluster (HyperShift's NodePool templates carry only an annotation,
/// and Cluster API versions before the owner reference set none): the namespace's only
/// MaasCluster when there is exactly one, as in a HyperShift control-plane namespace or any
/// namespace per cluster; else the provider-wide credentials.
async fn only_maas_cluster(ctx: &Context, ns: &str) -> Result<TemplateSource, ReconcileError> {
    let api: Api<MaasCluster> = Api::namespaced(ctx.client.clone(), ns);
    let mut listed = api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "list MaasClusters"))?
        .items;
    let only = (listed.len() == 1).then(|| listed.pop()).flatten();
    Ok(TemplateSource::Cluster(Box::new(only)))
}

/// Reads the template's MAAS inventory through the endpoint's shared cache. GPUs are read only
/// for machines that meet every other constraint of a template that selects GPU machines (it
/// asks for GPUs, or names tags: HyperShift's NodePools can only select GPU machines by tag).
pub async fn read_inventory(
    ctx: &Context,
    source: &TemplateSource,
    spec: &MaasMachineSpec,
) -> InventoryRead {
    let (creds, secret_zone) = match credentials(ctx, source).await {
        Ok(found) => found,
        Err((reason, why)) => return unavailable(reason, &why, None),
    };
    let zone = non_blank(spec.failure_domain.as_deref())
        .or(secret_zone)
        .or_else(|| ctx.default_zone.clone());
    let (maas, inventory) = match ctx.connector.inventory(creds.as_ref()) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            let why = "no MAAS credentials: the template's MaasCluster names none and the manager has none of its own";
            return unavailable(reasons::CREDENTIALS_MISSING, why, zone);
        }
        Err(e) => return unavailable(reasons::CREDENTIALS_INVALID, &e.to_string(), zone),
    };
    let req = requirements(spec);
    let selects_gpus = req.gpu.is_some() || !req.tags.is_empty();
    let wanted = Wanted {
        req: &req,
        zone: zone.as_deref(),
    };
    let wants_gpus = |m: &InventoryMachine| {
        selects_gpus
            && Constraint::ALL
                .iter()
                .filter(|c| **c != Constraint::Gpus)
                .all(|c| wanted.meets(*c, m))
    };
    let machines = match inventory
        .ready_machines(&maas, INVENTORY_MAX_AGE, wants_gpus)
        .await
    {
        Ok((machines, reads)) => {
            tracing::debug!(
                lists = reads.lists,
                devices = reads.devices,
                "inventory read"
            );
            Ok(machines)
        }
        Err(e) => Err((
            reasons::MAAS_UNAVAILABLE,
            format!("reading MAAS's Ready machines: {e}"),
        )),
    };
    InventoryRead { machines, zone }
}

/// The credentials (and the zone their Secret names) of the template's cluster; `None`: the
/// manager's own.
async fn credentials(
    ctx: &Context,
    source: &TemplateSource,
) -> Result<(Option<MaasCredentials>, Option<String>), (&'static str, String)> {
    let cluster = match source {
        TemplateSource::Cluster(c) => c.as_ref().as_ref(),
        TemplateSource::Unknown(why) => return Err((reasons::CREDENTIALS_MISSING, why.clone())),
        TemplateSource::Paused => None,
    };
    let hosted_fallback = !ctx.connector.has_default();
    let ns = namespace_of(cluster);
    match identity_secret(&ctx.client, &ns, cluster, hosted_fallback).await {
        Ok(Some(identity)) => Ok((Some(identity.creds), identity.zone)),
        Ok(None) => Ok((None, None)),
        Err(e) => Err((reasons::CREDENTIALS_INVALID, e.to_string())),
    }
}

fn namespace_of(cluster: Option<&MaasCluster>) -> String {
    cluster
        .and_then(|c| c.metadata.namespace.clone())
        .unwrap_or_default()
}

fn unavailable(reason: &'static str, why: &str, zone: Option<String>) -> InventoryRead {
    InventoryRead {
        machines: Err((reason, why.to_string())),
        zone,
    }
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
