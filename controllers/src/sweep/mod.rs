//! The orphan sweep: MAAS machines allocated by this management cluster whose MaasMachine no
//! longer exists (deleted while the manager was down, or its finalizer removed by hand) are
//! released.
//!
//! Several management clusters may share one MAAS, and `clusterctl move` hands machines from
//! one to another, so a machine is only ever released when its owner data names this
//! management cluster, no live MaasMachine names it (by uid or by `spec.systemID`), and it has
//! stayed so for a grace period (the source of a move loses its objects before the target
//! has rewritten the owner data).

pub mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use maas_client::{MaasApi, MachineFilter, ReleaseParams};
use tracing::{info, warn};

use crate::domain::maas_machine::{EraseOptions, ObservedMachine};
use crate::domain::maas_machine::{OWNER_KEY_NAME, OWNER_KEY_NAMESPACE, OWNER_KEY_UID};
use crate::domain::observe::observe;
use crate::runtime::error::ReconcileError;

/// The owner a machine's owner data names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamedOwner {
    /// MaasMachine namespace.
    pub namespace: String,
    /// MaasMachine name.
    pub name: String,
    /// MaasMachine uid.
    pub uid: String,
}

/// The owner named by a held machine's owner data, when all three keys are there. Machines
/// without them are never touched: they are someone else's, or ours in the instant between
/// allocate and set-owner-data (adoption covers those).
pub fn named_owner(m: &ObservedMachine) -> Option<NamedOwner> {
    if !m.phase().is_held() {
        return None;
    }
    let get = |k: &str| m.owner_data.get(k).filter(|v| !v.is_empty()).cloned();
    Some(NamedOwner {
        namespace: get(OWNER_KEY_NAMESPACE)?,
        name: get(OWNER_KEY_NAME)?,
        uid: get(OWNER_KEY_UID)?,
    })
}

/// What the live MaasMachines of the watched scope refer to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveSet {
    /// Their uids.
    pub uids: BTreeSet<String>,
    /// Their `spec.systemID`s: a machine one of them records is never an orphan, whatever its
    /// owner data says (a moved object not yet adopted, a restore from backup).
    pub system_ids: BTreeSet<String>,
}

/// An orphan candidate: the machine and the uid its owner data names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// MAAS system id.
    pub system_id: String,
    /// The vanished MaasMachine's uid.
    pub uid: String,
}

/// Held machines whose owner data names this management cluster (`management`) and an owner in
/// the watched namespace that no live MaasMachine matches, neither by uid nor by systemID.
/// Without a known management identity nothing is an orphan.
pub fn orphans(
    machines: &[ObservedMachine],
    live: &LiveSet,
    namespace: Option<&str>,
    management: Option<&str>,
) -> Vec<Orphan> {
    let Some(management) = management.filter(|m| !m.is_empty()) else {
        return Vec::new();
    };
    machines
        .iter()
        .filter(|m| m.management() == Some(management))
        .filter(|m| !live.system_ids.contains(&m.system_id))
        .filter_map(|m| named_owner(m).map(|o| (m, o)))
        .filter(|(_, o)| namespace.is_none_or(|ns| ns == o.namespace))
        .filter(|(_, o)| !live.uids.contains(&o.uid))
        .map(|(m, o)| Orphan {
            system_id: m.system_id.clone(),
            uid: o.uid,
        })
        .collect()
}

/// Orphans first seen by an earlier sweep: system id to (uid, when first seen).
pub type Suspects = BTreeMap<String, (String, Instant)>;

/// The orphans to release now: those seen orphaned with the same owner uid for at least
/// `grace`. `suspects` is updated to hold exactly this sweep's candidates, so a machine that
/// was adopted or whose owner came back in between starts over.
pub fn due(
    suspects: &mut Suspects,
    candidates: Vec<Orphan>,
    now: Instant,
    grace: Duration,
) -> Vec<String> {
    let mut next = Suspects::new();
    let mut release = Vec::new();
    for o in candidates {
        let since = match suspects.get(&o.system_id) {
            Some((uid, since)) if *uid == o.uid => *since,
            _ => now,
        };
        if now.saturating_duration_since(since) >= grace {
            release.push(o.system_id.clone());
        }
        next.insert(o.system_id, (o.uid, since));
    }
    *suspects = next;
    release
}

/// Lists what the live MaasMachines refer to.
pub trait LiveMachines: Send + Sync {
    /// Uids and system ids of all MaasMachines in the watched scope.
    fn live(&self) -> impl Future<Output = Result<LiveSet, ReconcileError>> + Send;
}

/// The sweep's settings and its memory between runs.
#[derive(Clone, Debug)]
pub struct Sweeper {
    namespace: Option<String>,
    management: Option<String>,
    grace: Duration,
    suspects: Suspects,
}

impl Sweeper {
    /// A sweep of `namespace` (`None` for all) for machines naming `management`, releasing
    /// those orphaned for at least `grace`.
    pub fn new(namespace: Option<String>, management: Option<String>, grace: Duration) -> Self {
        Self {
            namespace,
            management,
            grace,
            suspects: Suspects::new(),
        }
    }

    /// One sweep: list MAAS machines, then the live MaasMachines (in this order, so a
    /// MaasMachine created in between is seen as live), release the orphans that are due.
    /// Returns the released ids.
    pub async fn sweep_once<M: MaasApi, L: LiveMachines>(
        &mut self,
        maas: &M,
        live: &L,
        now: Instant,
    ) -> Result<Vec<String>, ReconcileError> {
        if self.management.is_none() {
            return Ok(Vec::new());
        }
        let machines: Vec<ObservedMachine> = maas
            .list_machines(&MachineFilter::default())
            .await?
            .iter()
            .map(observe)
            .collect();
        let live = live.live().await?;
        let candidates = orphans(
            &machines,
            &live,
            self.namespace.as_deref(),
            self.management.as_deref(),
        );
        let options: BTreeMap<String, EraseOptions> = machines
            .iter()
            .map(|m| (m.system_id.clone(), m.release_options()))
            .collect();
        let targets = due(&mut self.suspects, candidates, now, self.grace);
        let mut released = Vec::new();
        for id in targets {
            let params = ReleaseParams {
                comment: Some("capmaas: owner MaasMachine is gone".into()),
                ..options
                    .get(&id)
                    .copied()
                    .unwrap_or_default()
                    .release_params()
            };
            match maas.release(&id, &params).await {
                Ok(_) => {
                    info!(system_id = %id, "released an orphaned machine");
                    self.suspects.remove(&id);
                    released.push(id);
                }
                Err(error) => warn!(system_id = %id, %error, "cannot release an orphaned machine"),
            }
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::owner_data_for;

    const MGMT: &str = "mgmt-a";

    fn m(id: &str, status: i64, owner: Option<(&str, &str, &str)>) -> ObservedMachine {
        ObservedMachine {
            system_id: id.into(),
            status_code: status,
            owner_data: owner
                .map(|(u, ns, n)| owner_data_for(u, ns, n, Some(MGMT)))
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn live_uids(uids: &[&str]) -> LiveSet {
        LiveSet {
            uids: uids.iter().map(|u| u.to_string()).collect(),
            system_ids: BTreeSet::new(),
        }
    }

    fn ids(orphans: Vec<Orphan>) -> Vec<String> {
        orphans.into_iter().map(|o| o.system_id).collect()
    }

    #[test]
    fn only_held_machines_of_vanished_owners_in_scope() {
        let machines = vec![
            m("live", 6, Some(("u-live", "ns", "a"))),
            m("gone", 6, Some(("u-gone", "ns", "b"))),
            m("gone-alloc", 10, Some(("u-gone2", "ns", "c"))),
            m("other-ns", 6, Some(("u-x", "other", "d"))),
            m("unmarked", 10, None),
            m("released", 4, Some(("u-old", "ns", "e"))),
        ];
        let live = live_uids(&["u-live"]);
        assert_eq!(
            ids(orphans(&machines, &live, Some("ns"), Some(MGMT))),
            ["gone", "gone-alloc"]
        );
        assert_eq!(
            ids(orphans(&machines, &live, None, Some(MGMT))),
            ["gone", "gone-alloc", "other-ns"]
        );
        let mut partial = m("partial", 6, None);
        partial
            .owner_data
            .insert(OWNER_KEY_UID.into(), "u-p".into());
        assert_eq!(named_owner(&partial), None);
    }

    #[test]
    fn machines_of_another_or_no_management_cluster_are_never_orphans() {
        let mut other = m("other-mgmt", 6, None);
        other.owner_data = owner_data_for("u-1", "ns", "a", Some("mgmt-b"));
        let mut none = m("no-mgmt", 6, None);
        none.owner_data = owner_data_for("u-2", "ns", "b", None);
        let ours = m("ours", 6, Some(("u-3", "ns", "c")));
        let machines = vec![other, none, ours];
        let live = LiveSet::default();
        assert_eq!(ids(orphans(&machines, &live, None, Some(MGMT))), ["ours"]);
        assert_eq!(
            ids(orphans(&machines, &live, None, Some("mgmt-b"))),
            ["other-mgmt"]
        );
        assert!(orphans(&machines, &live, None, None).is_empty());
        assert!(orphans(&machines, &live, None, Some("")).is_empty());
    }

    #[test]
    fn a_machine_recorded_by_a_live_maas_machine_is_never_an_orphan() {
        let machines = vec![
            m("recorded", 6, Some(("u-gone", "ns", "a"))),
            m("unrecorded", 6, Some(("u-gone2", "ns", "b"))),
        ];
        let live = LiveSet {
            uids: BTreeSet::new(),
            system_ids: BTreeSet::from(["recorded".to_string()]),
        };
        let found = orphans(&machines, &live, None, Some(MGMT));
        assert_eq!(
            found,
            [Orphan {
                system_id: "unrecorded".into(),
                uid: "u-gone2".into()
            }]
        );
    }

    fn orphan(id: &str, uid: &str) -> Orphan {
        Orphan {
            system_id: id.into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn orphans_are_released_only_after_the_grace_period() {
        let grace = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut suspects = Suspects::new();
        assert!(due(&mut suspects, vec![orphan("a", "u1")], t0, grace).is_empty());
        assert_eq!(suspects.len(), 1);
        let t1 = t0 + Duration::from_secs(30);
        assert!(due(&mut suspects, vec![orphan("a", "u1")], t1, grace).is_empty());
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(
            due(
                &mut suspects,
                vec![orphan("a", "u1"), orphan("b", "u2")],
                t2,
                grace
            ),
            ["a"]
        );
        // "b" was first seen at t2.
        assert_eq!(suspects["b"].1, t2);
    }

    #[test]
    fn an_adopted_or_re_owned_machine_starts_over() {
        let grace = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut suspects = Suspects::new();
        due(&mut suspects, vec![orphan("a", "u1")], t0, grace);
        // Not a candidate in the next sweep (the target adopted it): forgotten.
        due(
            &mut suspects,
            Vec::new(),
            t0 + Duration::from_secs(10),
            grace,
        );
        assert!(suspects.is_empty());
        let t2 = t0 + Duration::from_secs(120);
        assert!(due(&mut suspects, vec![orphan("a", "u1")], t2, grace).is_empty());
        // Another owner uid on the same machine restarts the clock too.
        let t3 = t2 + Duration::from_secs(90);
        assert!(due(&mut suspects, vec![orphan("a", "u9")], t3, grace).is_empty());
        assert_eq!(suspects["a"], ("u9".to_string(), t3));
    }

    #[test]
    fn no_grace_releases_at_first_sight() {
        let mut suspects = Suspects::new();
        assert_eq!(
            due(
                &mut suspects,
                vec![orphan("a", "u1")],
                Instant::now(),
                Duration::ZERO
            ),
            ["a"]
        );
    }
}
