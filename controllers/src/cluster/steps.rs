//! Runs the MaasCluster decisions against MAAS.

use std::future::Future;
use std::time::Duration;

use maas_client::{DnsResourceFilter, DnsResourceParams, MaasApi, MaasError};
use tracing::info;

use crate::cluster::decide::ClusterAction;
use crate::cluster::decide::ClusterFacts;
use crate::cluster::decide::DnsView;
use crate::cluster::decide::ReadyCluster;
use crate::cluster::decide::decide_cluster;
use crate::domain::reasons::FailReason;
use crate::domain::reasons::WaitReason;
use crate::runtime::error::ReconcileError;

/// TTL of the endpoint record: short, so clients follow control-plane changes quickly.
pub const DNS_TTL_SECONDS: u32 = 10;
/// Bound on steps in one pass.
pub const MAX_STEPS: usize = 8;

/// The Kubernetes write a MaasCluster pass may need.
pub trait ClusterStore: Send + Sync {
    /// Whether a MAAS step may start now (this replica's hold on the leader Lease lasts).
    fn may_act(&self) -> bool {
        true
    }
    /// Drop the finalizer.
    fn remove_finalizer(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
}

/// How a MaasCluster pass ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterPassEnd {
    /// Managed by another controller: write nothing.
    Untouched,
    /// Waiting.
    Waiting {
        /// Why.
        reason: WaitReason,
        /// When to look again.
        after: Option<Duration>,
    },
    /// Ready: write endpoint, failure domains, ready.
    Ready(ReadyCluster),
    /// Terminal failure.
    Failed {
        /// Reason.
        reason: FailReason,
        /// Message.
        message: String,
    },
    /// Finalizer removed.
    Finalized,
}

fn dns_view(found: Vec<maas_client::DnsResource>, fqdn: &str) -> DnsView {
    found
        .into_iter()
        .find(|r| r.fqdn.eq_ignore_ascii_case(fqdn))
        .and_then(|r| {
            Some(DnsView::Present {
                id: r.id?,
                ips: r.ip_addresses.into_iter().collect(),
            })
        })
        .unwrap_or(DnsView::Absent)
}

/// Runs one pass for a MaasCluster.
pub async fn run_cluster_pass<M: MaasApi, S: ClusterStore>(
    maas: &M,
    store: &S,
    facts: ClusterFacts,
) -> Result<ClusterPassEnd, ReconcileError> {
    run_cluster_pass_report(maas, store, facts)
        .await
        .map(|r| r.end)
}

/// What a MaasCluster pass ended with and what it learnt of MAAS, so the reconciler can skip
/// reading the same zones and DNS record again on the next pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPassReport {
    /// How the pass ended.
    pub end: ClusterPassEnd,
    /// The DNS resource as last seen or written.
    pub dns: DnsView,
    /// MAAS zones, when read.
    pub zones: Option<std::collections::BTreeSet<String>>,
}

fn report(facts: ClusterFacts, end: ClusterPassEnd) -> ClusterPassReport {
    ClusterPassReport {
        end,
        dns: facts.dns,
        zones: facts.zones,
    }
}

/// Runs one pass for a MaasCluster and reports what it learnt.
pub async fn run_cluster_pass_report<M: MaasApi, S: ClusterStore>(
    maas: &M,
    store: &S,
    mut facts: ClusterFacts,
) -> Result<ClusterPassReport, ReconcileError> {
    for _ in 0..MAX_STEPS {
        match decide_cluster(&facts) {
            ClusterAction::Untouched => return Ok(report(facts, ClusterPassEnd::Untouched)),
            ClusterAction::Wait { reason, after } => {
                return Ok(report(facts, ClusterPassEnd::Waiting { reason, after }));
            }
            ClusterAction::Fail { reason, message } => {
                return Ok(report(facts, ClusterPassEnd::Failed { reason, message }));
            }
            ClusterAction::Ready(r) => return Ok(report(facts, ClusterPassEnd::Ready(r))),
            ClusterAction::RemoveFinalizer => {
                store.remove_finalizer().await?;
                return Ok(report(facts, ClusterPassEnd::Finalized));
            }
            _ if !store.may_act() => return Err(ReconcileError::NotLeader),
            step => perform_maas(maas, &mut facts, step).await?,
        }
    }
    Err(ReconcileError::TooManySteps(MAX_STEPS))
}

/// Performs a MAAS step of the pass (zones, the DNS record) and folds MAAS's answer into the
/// facts.
async fn perform_maas<M: MaasApi>(
    maas: &M,
    facts: &mut ClusterFacts,
    action: ClusterAction,
) -> Result<(), ReconcileError> {
    match action {
        ClusterAction::ReadZones => {
            facts.zones = Some(maas.zones().await?.into_iter().map(|z| z.name).collect());
        }
        ClusterAction::LookupDns { fqdn } => {
            let (name, domain) = fqdn.split_once('.').unwrap_or((fqdn.as_str(), ""));
            let filter = DnsResourceFilter {
                name: Some(name.to_string()),
                domain: (!domain.is_empty()).then(|| domain.to_string()),
            };
            facts.dns = dns_view(maas.list_dns_resources(&filter).await?, &fqdn);
        }
        ClusterAction::CreateDns { fqdn, ips } => {
            let params = DnsResourceParams {
                fqdn: Some(fqdn.clone()),
                ip_addresses: Some(ips.iter().cloned().collect()),
                address_ttl: Some(DNS_TTL_SECONDS),
            };
            let created = maas.create_dns_resource(&params).await?;
            info!(%fqdn, addresses = ips.len(), "created the endpoint DNS resource");
            facts.dns = DnsView::Present {
                id: created.id.unwrap_or_default(),
                ips,
            };
        }
        ClusterAction::UpdateDns { id, ips } => {
            let params = DnsResourceParams {
                ip_addresses: Some(ips.iter().cloned().collect()),
                ..Default::default()
            };
            maas.update_dns_resource(id, &params).await?;
            info!(
                id,
                addresses = ips.len(),
                "updated the endpoint DNS resource"
            );
            facts.dns = DnsView::Present { id, ips };
        }
        ClusterAction::DeleteDns { id } => {
            match maas.delete_dns_resource(id).await {
                Ok(()) | Err(MaasError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            info!(id, "deleted the endpoint DNS resource");
            facts.dns = DnsView::Absent;
        }
        other => {
            return Err(ReconcileError::Invalid(format!(
                "{other:?} is not a MAAS step"
            )));
        }
    }
    Ok(())
}
