//! The MaasCluster decision: endpoint, DNS resource, failure domains, deletion.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::domain::reasons::{FailReason, WaitReason};

/// The API server port when the MaasCluster names none.
pub const DEFAULT_API_PORT: u16 = 6443;
/// How often a MaasCluster being deleted looks again for remaining MaasMachines.
pub const DELETE_POLL: Duration = Duration::from_secs(10);

/// What is known of the cluster's MAAS DNS resource in this pass.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum DnsView {
    /// Not looked up yet.
    #[default]
    Unread,
    /// No DNS resource with our name.
    Absent,
    /// The DNS resource.
    Present {
        /// MAAS id.
        id: i64,
        /// Its current addresses.
        ips: BTreeSet<String>,
    },
}

/// Everything the decision reads about one MaasCluster.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClusterFacts {
    /// MaasCluster name (the Cluster's name in practice).
    pub name: String,
    /// MaasCluster uid.
    pub uid: String,
    /// Carries `cluster.x-k8s.io/managed-by`.
    pub managed_by: bool,
    /// The Cluster is paused or the MaasCluster carries the paused annotation.
    pub paused: bool,
    /// Has a deletion timestamp.
    pub deleting: bool,
    /// Carries clusterctl's delete-for-move annotation: the object lives on in another
    /// management cluster, which keeps the DNS record.
    pub moving: bool,
    /// The owner Cluster was found.
    pub has_owner: bool,
    /// Carries `spectrocloud.com/custom-dns-provided`.
    pub custom_dns: bool,
    /// `spec.controlPlaneEndpoint.host`, when the user gave one.
    pub spec_endpoint_host: Option<String>,
    /// `spec.controlPlaneEndpoint.port`.
    pub spec_endpoint_port: Option<u16>,
    /// `spec.dnsDomain`.
    pub dns_domain: String,
    /// `spec.failureDomains`.
    pub failure_domains: Vec<String>,
    /// MAAS zone names, once read.
    pub zones: Option<BTreeSet<String>>,
    /// The DNS resource.
    pub dns: DnsView,
    /// Our DNS name as an earlier pass wrote it into the endpoint, possibly under another uid
    /// (the cluster was moved from another management cluster): it stays the name we manage.
    pub recorded_dns_name: Option<String>,
    /// IPs of deployed, powered-on control-plane machines.
    pub control_plane_ips: BTreeSet<String>,
    /// MaasMachines of this cluster still present (for deletion).
    pub remaining_machines: usize,
}

impl ClusterFacts {
    /// Whether this cluster's endpoint is a MAAS DNS resource we manage.
    pub fn uses_maas_dns(&self) -> bool {
        !self.custom_dns && self.user_endpoint().is_none()
    }

    fn user_endpoint(&self) -> Option<&str> {
        self.spec_endpoint_host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
    }
}

/// The endpoint and failure domains once the cluster infrastructure is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyCluster {
    /// Control-plane endpoint host.
    pub host: String,
    /// Control-plane endpoint port.
    pub port: u16,
    /// The MAAS DNS name, when we manage one (`status.network.dnsName`).
    pub dns_name: Option<String>,
    /// Failure domains to publish.
    pub failure_domains: Vec<String>,
}

/// The next step for a MaasCluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterAction {
    /// Another controller manages this cluster: no write at all, not even status.
    Untouched,
    /// Nothing to do until something changes or `after` passes.
    Wait {
        /// Why.
        reason: WaitReason,
        /// When to look again by itself.
        after: Option<Duration>,
    },
    /// Read MAAS zones to check the failure domains.
    ReadZones,
    /// Look up the DNS resource by name.
    LookupDns {
        /// Its FQDN.
        fqdn: String,
    },
    /// Create the DNS resource.
    CreateDns {
        /// Its FQDN.
        fqdn: String,
        /// Its addresses.
        ips: BTreeSet<String>,
    },
    /// Replace the DNS resource's addresses.
    UpdateDns {
        /// MAAS id.
        id: i64,
        /// New addresses.
        ips: BTreeSet<String>,
    },
    /// Delete the DNS resource.
    DeleteDns {
        /// MAAS id.
        id: i64,
    },
    /// A terminal problem with the spec.
    Fail {
        /// Stable reason.
        reason: FailReason,
        /// Human message.
        message: String,
    },
    /// Write endpoint, failure domains, ready and provisioned.
    Ready(ReadyCluster),
    /// Deletion finished: drop the finalizer.
    RemoveFinalizer,
}

/// The DNS name of a cluster's API endpoint: `<cluster>-<first 5 of uid>.<dnsDomain>`, unique
/// across clusters of the same name created one after another.
pub fn dns_name(cluster: &str, uid: &str, dns_domain: &str) -> String {
    let short: String = uid.chars().filter(|c| *c != '-').take(5).collect();
    let domain = dns_domain.trim().trim_matches('.');
    format!("{cluster}-{short}.{domain}").to_ascii_lowercase()
}

/// Whether an endpoint host has the shape of a DNS name this provider writes for the cluster
/// (`<cluster>-<5 hex digits>.<domain>`), whatever uid the hex came from: after `clusterctl
/// move` the MaasCluster has a new uid but the endpoint, and its MAAS record, stay.
pub fn is_our_dns_name(host: &str, cluster: &str, dns_domain: &str) -> bool {
    let domain = dns_domain.trim().trim_matches('.').to_ascii_lowercase();
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let prefix = format!("{}-", cluster.to_ascii_lowercase());
    let Some(rest) = host.strip_prefix(&prefix) else {
        return false;
    };
    let Some(short) = rest.strip_suffix(&format!(".{domain}")) else {
        return false;
    };
    short.len() == 5 && short.chars().all(|c| c.is_ascii_hexdigit())
}

/// The next step for a MaasCluster.
pub fn decide_cluster(f: &ClusterFacts) -> ClusterAction {
    if f.managed_by {
        return ClusterAction::Untouched;
    }
    if f.deleting && f.moving {
        return ClusterAction::RemoveFinalizer;
    }
    if f.paused {
        return ClusterAction::Wait {
            reason: WaitReason::Paused,
            after: None,
        };
    }
    let fqdn = f
        .recorded_dns_name
        .clone()
        .unwrap_or_else(|| dns_name(&f.name, &f.uid, &f.dns_domain));
    if f.deleting {
        return decide_deletion(f, fqdn);
    }
    if !f.has_owner {
        return ClusterAction::Wait {
            reason: WaitReason::WaitingForOwner,
            after: None,
        };
    }
    if let Some(step) = check_failure_domains(f) {
        return step;
    }
    let port = f
        .spec_endpoint_port
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_API_PORT);
    if !f.uses_maas_dns() {
        let host = f.user_endpoint().unwrap_or_default().to_string();
        return ClusterAction::Ready(ReadyCluster {
            host,
            port,
            dns_name: None,
            failure_domains: f.failure_domains.clone(),
        });
    }
    if let Some(step) = sync_dns(f, &fqdn) {
        return step;
    }
    ClusterAction::Ready(ReadyCluster {
        host: fqdn.clone(),
        port,
        dns_name: Some(fqdn),
        failure_domains: f.failure_domains.clone(),
    })
}

/// Deletion: wait for the machines to go, then remove our DNS record, then the finalizer.
fn decide_deletion(f: &ClusterFacts, fqdn: String) -> ClusterAction {
    if f.remaining_machines > 0 {
        return ClusterAction::Wait {
            reason: WaitReason::WaitingForMachines,
            after: Some(DELETE_POLL),
        };
    }
    if !f.uses_maas_dns() {
        return ClusterAction::RemoveFinalizer;
    }
    match &f.dns {
        DnsView::Unread => ClusterAction::LookupDns { fqdn },
        DnsView::Present { id, .. } => ClusterAction::DeleteDns { id: *id },
        DnsView::Absent => ClusterAction::RemoveFinalizer,
    }
}

/// The failure domains must be MAAS zones: read the zones, or fail naming the unknown ones.
fn check_failure_domains(f: &ClusterFacts) -> Option<ClusterAction> {
    if f.failure_domains.is_empty() {
        return None;
    }
    let Some(zones) = &f.zones else {
        return Some(ClusterAction::ReadZones);
    };
    let unknown: Vec<&str> = f
        .failure_domains
        .iter()
        .map(String::as_str)
        .filter(|d| !zones.contains(*d))
        .collect();
    (!unknown.is_empty()).then(|| ClusterAction::Fail {
        reason: FailReason::UnknownFailureDomain,
        message: format!(
            "failure domains not known to MAAS as zones: {}",
            unknown.join(", ")
        ),
    })
}

/// Keeps our DNS record's addresses equal to the control-plane IPs: look it up, create it,
/// update it; never write an empty set over a non-empty one.
fn sync_dns(f: &ClusterFacts, fqdn: &str) -> Option<ClusterAction> {
    let desired = &f.control_plane_ips;
    match &f.dns {
        DnsView::Unread => Some(ClusterAction::LookupDns {
            fqdn: fqdn.to_string(),
        }),
        DnsView::Absent if !desired.is_empty() => Some(ClusterAction::CreateDns {
            fqdn: fqdn.to_string(),
            ips: desired.clone(),
        }),
        DnsView::Present { id, ips } if ips != desired && !desired.is_empty() => {
            Some(ClusterAction::UpdateDns {
                id: *id,
                ips: desired.clone(),
            })
        }
        _ => None,
    }
}

/// A control-plane MaasMachine as the DNS decision sees it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ControlPlaneMachine {
    /// MAAS says Deployed.
    pub deployed: bool,
    /// MAAS says the power is on.
    pub powered_on: bool,
    /// Not being deleted.
    pub deleting: bool,
    /// Its IP addresses.
    pub ips: Vec<String>,
}

/// The addresses the endpoint DNS resource should hold: every IP of a deployed, powered-on
/// control-plane machine that is not being deleted.
pub fn control_plane_ips(machines: &[ControlPlaneMachine]) -> BTreeSet<String> {
    machines
        .iter()
        .filter(|m| m.deployed && m.powered_on && !m.deleting)
        .flat_map(|m| m.ips.iter().map(|ip| ip.trim().to_string()))
        .filter(|ip| !ip.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClusterFacts {
        ClusterFacts {
            name: "c1".into(),
            uid: "4f2a9c1e-0000-1111".into(),
            has_owner: true,
            dns_domain: "maas.local".into(),
            ..Default::default()
        }
    }

    fn ips(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn label(a: &ClusterAction) -> String {
        match a {
            ClusterAction::Untouched => "Untouched".into(),
            ClusterAction::Wait { reason, after } => format!(
                "Wait({}, {:?})",
                reason.as_str(),
                after.map(|d| d.as_secs())
            ),
            ClusterAction::ReadZones => "ReadZones".into(),
            ClusterAction::LookupDns { fqdn } => format!("LookupDns({fqdn})"),
            ClusterAction::CreateDns { fqdn, ips } => format!("CreateDns({fqdn}, {ips:?})"),
            ClusterAction::UpdateDns { id, ips } => format!("UpdateDns({id}, {ips:?})"),
            ClusterAction::DeleteDns { id } => format!("DeleteDns({id})"),
            ClusterAction::Fail { reason, .. } => format!("Fail({})", reason.as_str()),
            ClusterAction::Ready(r) => format!(
                "Ready({}:{}, dns={:?}, fd={:?})",
                r.host, r.port, r.dns_name, r.failure_domains
            ),
            ClusterAction::RemoveFinalizer => "RemoveFinalizer".into(),
        }
    }

    fn check(rows: Vec<(&str, ClusterFacts, &str)>) {
        for (name, facts, want) in rows {
            assert_eq!(label(&decide_cluster(&facts)), want, "case: {name}");
        }
    }

    #[test]
    fn dns_name_is_cluster_short_uid_domain() {
        assert_eq!(
            dns_name("c1", "4f2a9c1e-0000", "maas.local"),
            "c1-4f2a9.maas.local"
        );
        assert_eq!(
            dns_name("Prod", "ab-cdef", ".Example.COM."),
            "prod-abcde.example.com"
        );
    }

    #[test]
    fn gates() {
        check(vec![
            (
                "managed-by touches nothing",
                ClusterFacts {
                    managed_by: true,
                    paused: true,
                    deleting: true,
                    ..base()
                },
                "Untouched",
            ),
            (
                "paused",
                ClusterFacts {
                    paused: true,
                    ..base()
                },
                "Wait(Paused, None)",
            ),
            (
                "no owner",
                ClusterFacts {
                    has_owner: false,
                    ..base()
                },
                "Wait(WaitingForOwner, None)",
            ),
        ]);
    }

    #[test]
    fn endpoints_given_by_others_need_no_dns() {
        check(vec![
            (
                "hypershift custom dns",
                ClusterFacts {
                    custom_dns: true,
                    spec_endpoint_host: Some("api.hc.example".into()),
                    spec_endpoint_port: Some(443),
                    ..base()
                },
                "Ready(api.hc.example:443, dns=None, fd=[])",
            ),
            (
                "user endpoint, default port",
                ClusterFacts {
                    spec_endpoint_host: Some("10.0.0.100".into()),
                    ..base()
                },
                "Ready(10.0.0.100:6443, dns=None, fd=[])",
            ),
            (
                "blank user endpoint means ours",
                ClusterFacts {
                    spec_endpoint_host: Some(" ".into()),
                    ..base()
                },
                "LookupDns(c1-4f2a9.maas.local)",
            ),
        ]);
    }

    #[test]
    fn dns_follows_control_plane_ips() {
        let present = |list: &[&str]| DnsView::Present {
            id: 7,
            ips: ips(list),
        };
        check(vec![
            ("unread: look up", base(), "LookupDns(c1-4f2a9.maas.local)"),
            (
                "absent, no machine yet: ready on the name, nothing written",
                ClusterFacts {
                    dns: DnsView::Absent,
                    ..base()
                },
                "Ready(c1-4f2a9.maas.local:6443, dns=Some(\"c1-4f2a9.maas.local\"), fd=[])",
            ),
            (
                "absent, first machine: create",
                ClusterFacts {
                    dns: DnsView::Absent,
                    control_plane_ips: ips(&["10.0.0.5"]),
                    ..base()
                },
                "CreateDns(c1-4f2a9.maas.local, {\"10.0.0.5\"})",
            ),
            (
                "present, same set: no write",
                ClusterFacts {
                    dns: present(&["10.0.0.5"]),
                    control_plane_ips: ips(&["10.0.0.5"]),
                    ..base()
                },
                "Ready(c1-4f2a9.maas.local:6443, dns=Some(\"c1-4f2a9.maas.local\"), fd=[])",
            ),
            (
                "present, set changed: update",
                ClusterFacts {
                    dns: present(&["10.0.0.5"]),
                    control_plane_ips: ips(&["10.0.0.5", "10.0.0.6"]),
                    ..base()
                },
                "UpdateDns(7, {\"10.0.0.5\", \"10.0.0.6\"})",
            ),
            (
                "present, desired empty: never empty over non-empty",
                ClusterFacts {
                    dns: present(&["10.0.0.5"]),
                    ..base()
                },
                "Ready(c1-4f2a9.maas.local:6443, dns=Some(\"c1-4f2a9.maas.local\"), fd=[])",
            ),
        ]);
    }

    #[test]
    fn failure_domains_are_checked_against_zones() {
        let fd = vec!["az1".to_string(), "az2".to_string()];
        check(vec![
            (
                "zones unread",
                ClusterFacts {
                    failure_domains: fd.clone(),
                    custom_dns: true,
                    ..base()
                },
                "ReadZones",
            ),
            (
                "unknown zone",
                ClusterFacts {
                    failure_domains: fd.clone(),
                    zones: Some(ips(&["az1", "default"])),
                    custom_dns: true,
                    ..base()
                },
                "Fail(UnknownFailureDomain)",
            ),
            (
                "all known",
                ClusterFacts {
                    failure_domains: fd.clone(),
                    zones: Some(ips(&["az1", "az2"])),
                    spec_endpoint_host: Some("h".into()),
                    ..base()
                },
                "Ready(h:6443, dns=None, fd=[\"az1\", \"az2\"])",
            ),
        ]);
    }

    #[test]
    fn deletion() {
        let del = |f: ClusterFacts| ClusterFacts {
            deleting: true,
            ..f
        };
        check(vec![
            (
                "machines remain",
                del(ClusterFacts {
                    remaining_machines: 2,
                    ..base()
                }),
                "Wait(WaitingForMachines, Some(10))",
            ),
            ("look up dns", del(base()), "LookupDns(c1-4f2a9.maas.local)"),
            (
                "delete dns",
                del(ClusterFacts {
                    dns: DnsView::Present {
                        id: 3,
                        ips: ips(&[]),
                    },
                    ..base()
                }),
                "DeleteDns(3)",
            ),
            (
                "dns gone",
                del(ClusterFacts {
                    dns: DnsView::Absent,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
            (
                "custom dns: nothing to delete",
                del(ClusterFacts {
                    custom_dns: true,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
            (
                "deletion without owner",
                del(ClusterFacts {
                    has_owner: false,
                    custom_dns: true,
                    ..base()
                }),
                "RemoveFinalizer",
            ),
        ]);
    }

    #[test]
    fn desired_ips_only_from_deployed_powered_live_machines() {
        let m = |deployed, powered_on, deleting, ip: &str| ControlPlaneMachine {
            deployed,
            powered_on,
            deleting,
            ips: vec![ip.into()],
        };
        let set = control_plane_ips(&[
            m(true, true, false, "10.0.0.1"),
            m(true, false, false, "10.0.0.2"),
            m(false, true, false, "10.0.0.3"),
            m(true, true, true, "10.0.0.4"),
            m(true, true, false, " "),
        ]);
        assert_eq!(set, ips(&["10.0.0.1"]));
    }

    #[test]
    fn deleting_for_move_keeps_the_dns_record() {
        let f = ClusterFacts {
            deleting: true,
            moving: true,
            paused: true,
            ..base()
        };
        assert_eq!(decide_cluster(&f), ClusterAction::RemoveFinalizer);
        let f = ClusterFacts {
            moving: false,
            paused: false,
            ..f
        };
        assert!(matches!(
            decide_cluster(&f),
            ClusterAction::LookupDns { .. }
        ));
    }

    #[test]
    fn our_dns_name_is_recognised_under_any_uid() {
        let ours = dns_name("c1", "9b3e4d00-1111", "maas.local");
        assert!(is_our_dns_name(&ours, "c1", "maas.local"));
        assert!(is_our_dns_name("C1-ABCDE.maas.local.", "c1", ".maas.local"));
        for other in [
            "c1.maas.local",
            "c1-abcd.maas.local",
            "c1-abcdef.maas.local",
            "c1-zzzzz.maas.local",
            "c2-abcde.maas.local",
            "c1-abcde.other.local",
            "10.0.0.1",
        ] {
            assert!(!is_our_dns_name(other, "c1", "maas.local"), "{other}");
        }
    }

    #[test]
    fn a_moved_cluster_manages_the_recorded_dns_name() {
        let recorded = "c1-aaaaa.maas.local".to_string();
        let f = ClusterFacts {
            recorded_dns_name: Some(recorded.clone()),
            ..base()
        };
        assert_eq!(
            decide_cluster(&f),
            ClusterAction::LookupDns {
                fqdn: recorded.clone()
            }
        );
        let deleting = ClusterFacts {
            deleting: true,
            ..f
        };
        assert_eq!(
            decide_cluster(&deleting),
            ClusterAction::LookupDns { fqdn: recorded }
        );
    }
}
