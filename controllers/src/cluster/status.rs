//! The MaasCluster status a pass leads to, as pure functions.

use capmaas_api::condition_names::{reasons, types as conditions};
use capmaas_api::{
    ConditionSeverity, ConditionUpdate, Contract, FailureDomain, MaasClusterStatus, Network,
    set_condition,
};
use jiff::Timestamp;

use super::steps::ClusterPassEnd;
use crate::domain::reasons::WaitReason;
use crate::k8s::conditions::{mark_paused, set_error_conditions};

/// The MaasCluster status after a failed pass, like `machine_status_on_error`.
pub fn cluster_status_on_error(
    prev: Option<&MaasClusterStatus>,
    label: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> MaasClusterStatus {
    let mut s = prev.cloned().unwrap_or_default();
    set_error_conditions(&mut s.conditions, label, message, generation, now);
    s
}

/// The MaasCluster status after a pass; `None` when nothing may be written (managed by
/// another controller, or deletion finished).
pub fn cluster_status(
    prev: Option<&MaasClusterStatus>,
    end: &ClusterPassEnd,
    contract: Contract,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<MaasClusterStatus> {
    let mut s = prev.cloned().unwrap_or_default();
    let mut cond = |u: ConditionUpdate| {
        set_condition(&mut s.conditions, u, generation, now);
    };
    match end {
        ClusterPassEnd::Untouched | ClusterPassEnd::Finalized => return None,
        ClusterPassEnd::Ready(r) => {
            cond(ConditionUpdate::true_(conditions::READY, reasons::READY));
            s.set_ready(true);
            s.network = Some(Network {
                dns_name: r.dns_name.clone(),
            })
            .filter(|n| n.dns_name.is_some())
            .or(s.network);
            let domains: Vec<FailureDomain> = r
                .failure_domains
                .iter()
                .map(|name| FailureDomain {
                    name: name.clone(),
                    control_plane: true,
                    attributes: Default::default(),
                })
                .collect();
            s.set_failure_domains(&domains, contract);
        }
        ClusterPassEnd::Waiting { reason, .. } => {
            cond(ConditionUpdate::false_(
                conditions::READY,
                reason.as_str(),
                ConditionSeverity::Info,
                "",
            ));
        }
        ClusterPassEnd::Failed { reason, message } => {
            cond(ConditionUpdate::false_(
                conditions::READY,
                reason.as_str(),
                ConditionSeverity::Error,
                message.clone(),
            ));
        }
    }
    let paused = matches!(
        end,
        ClusterPassEnd::Waiting {
            reason: WaitReason::Paused,
            ..
        }
    );
    mark_paused(&mut s.conditions, paused, generation, now);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capmaas_api::{ConditionStatus, find_condition};

    fn now() -> Timestamp {
        "2026-05-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn paused_condition_follows_the_pause() {
        let cluster_paused = ClusterPassEnd::Waiting {
            reason: WaitReason::Paused,
            after: None,
        };
        let s = cluster_status(None, &cluster_paused, Contract::V1Beta2, None, now()).unwrap();
        assert_eq!(
            find_condition(&s.conditions, conditions::PAUSED).map(|c| c.status),
            Some(ConditionStatus::True)
        );
    }

    #[test]
    fn cluster_status_per_contract() {
        use crate::cluster::decide::ReadyCluster;
        let end = ClusterPassEnd::Ready(ReadyCluster {
            host: "c1-abcde.maas".into(),
            port: 6443,
            dns_name: Some("c1-abcde.maas".into()),
            failure_domains: vec!["az2".into(), "az1".into()],
        });
        let v1 = cluster_status(None, &end, Contract::V1Beta1, None, now()).unwrap();
        assert!(v1.ready);
        assert_eq!(
            v1.initialization.as_ref().and_then(|i| i.provisioned),
            Some(true)
        );
        assert_eq!(
            v1.network.as_ref().and_then(|n| n.dns_name.as_deref()),
            Some("c1-abcde.maas")
        );
        assert!(v1.failure_domains.0.is_object(), "{:?}", v1.failure_domains);
        let v2 = cluster_status(None, &end, Contract::V1Beta2, None, now()).unwrap();
        assert_eq!(v2.failure_domains.0[0]["name"], "az1");
        assert_eq!(
            cluster_status(Some(&v2), &end, Contract::V1Beta2, None, now()).unwrap(),
            v2,
            "stable"
        );
        assert_eq!(
            cluster_status(
                None,
                &ClusterPassEnd::Untouched,
                Contract::V1Beta1,
                None,
                now()
            ),
            None
        );
        let waiting = ClusterPassEnd::Waiting {
            reason: WaitReason::WaitingForOwner,
            after: None,
        };
        let w = cluster_status(None, &waiting, Contract::V1Beta1, None, now()).unwrap();
        assert!(!w.ready);
        assert_eq!(
            find_condition(&w.conditions, conditions::READY)
                .unwrap()
                .reason
                .as_deref(),
            Some("WaitingForOwner")
        );
    }

    #[test]
    fn auth_errors_show_on_the_credentials_condition() {
        let s = cluster_status_on_error(None, "MaasAuthFailed", "401", None, now());
        let c = find_condition(&s.conditions, conditions::MAAS_CREDENTIALS).unwrap();
        assert_eq!(c.reason.as_deref(), Some("CredentialsInvalid"));
    }
}
