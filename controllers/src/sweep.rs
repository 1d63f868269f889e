//! The orphan sweep: MAAS machines allocated by this provider whose MaasMachine no longer
//! exists (deleted while the manager was down, or its finalizer removed by hand) are released.

use std::collections::BTreeSet;
use std::future::Future;

use maas_client::{MaasApi, MachineFilter, ReleaseParams};
use tracing::{info, warn};

use crate::decide::ObservedMachine;
use crate::decide::phase::{OWNER_KEY_NAME, OWNER_KEY_NAMESPACE, OWNER_KEY_UID};
use crate::error::ReconcileError;
use crate::observe::observe;

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

/// System ids to release: held machines whose named owner is in a watched namespace and whose
/// uid is not among the live MaasMachine uids.
pub fn orphans(
    machines: &[ObservedMachine],
    live_uids: &BTreeSet<String>,
    namespace: Option<&str>,
) -> Vec<String> {
    machines
        .iter()
        .filter_map(|m| named_owner(m).map(|o| (m, o)))
        .filter(|(_, o)| namespace.is_none_or(|ns| ns == o.namespace))
        .filter(|(_, o)| !live_uids.contains(&o.uid))
        .map(|(m, _)| m.system_id.clone())
        .collect()
}

/// Lists the MaasMachine uids that exist now.
pub trait LiveMachines: Send + Sync {
    /// Uids of all MaasMachines in the watched scope.
    fn live_uids(&self) -> impl Future<Output = Result<BTreeSet<String>, ReconcileError>> + Send;
}

/// One sweep: list MAAS machines, then the live MaasMachines (in this order, so a MaasMachine
/// created in between is seen as live), release the orphans. Returns the released ids.
pub async fn sweep_once<M: MaasApi, L: LiveMachines>(
    maas: &M,
    live: &L,
    namespace: Option<&str>,
) -> Result<Vec<String>, ReconcileError> {
    let machines: Vec<ObservedMachine> = maas
        .list_machines(&MachineFilter::default())
        .await?
        .iter()
        .map(observe)
        .collect();
    let uids = live.live_uids().await?;
    let targets = orphans(&machines, &uids, namespace);
    let mut released = Vec::new();
    for id in targets {
        let params = ReleaseParams {
            comment: Some("capmaas: owner MaasMachine is gone".into()),
            ..Default::default()
        };
        match maas.release(&id, &params).await {
            Ok(_) => {
                info!(system_id = %id, "released an orphaned machine");
                released.push(id);
            }
            Err(error) => warn!(system_id = %id, %error, "cannot release an orphaned machine"),
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::phase::owner_data_for;

    fn m(id: &str, status: i64, owner: Option<(&str, &str, &str)>) -> ObservedMachine {
        ObservedMachine {
            system_id: id.into(),
            status_code: status,
            owner_data: owner
                .map(|(u, ns, n)| owner_data_for(u, ns, n))
                .unwrap_or_default(),
            ..Default::default()
        }
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
        let live = BTreeSet::from(["u-live".to_string()]);
        assert_eq!(
            orphans(&machines, &live, Some("ns")),
            ["gone", "gone-alloc"]
        );
        assert_eq!(
            orphans(&machines, &live, None),
            ["gone", "gone-alloc", "other-ns"]
        );
        let mut partial = m("partial", 6, None);
        partial
            .owner_data
            .insert(OWNER_KEY_UID.into(), "u-p".into());
        assert_eq!(named_owner(&partial), None);
    }
}
