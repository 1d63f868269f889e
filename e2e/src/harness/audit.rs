//! The audit of a run from MAAS's side: which machines the simulator says our MAAS user holds,
//! against the machines the namespace's live MaasMachines record, and what the simulator's
//! ledger says about double allocations and double deployments. A provider that lost track of
//! a machine cannot hide it here: the simulator's state is the truth.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use maas_sim::config::OTHER_USER;
use maas_sim::{LedgerAudit, LedgerEntry, LedgerEvent, StateView, ledger};

use super::env::Env;
use super::error::HarnessError;
use super::observe::{self, wait_for};
use super::scenario;

/// How often [`wait_until_free`] looks.
const POLL: Duration = Duration::from_millis(500);

/// What the simulator and the namespace say at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaasAudit {
    /// Machines held by our MAAS user (any owner but the other user's).
    pub held: BTreeSet<String>,
    /// Machines the live MaasMachines record.
    pub recorded: BTreeSet<String>,
    /// Held and recorded by no live MaasMachine.
    pub leaked: BTreeSet<String>,
    /// Machines recorded by more than one MaasMachine.
    pub recorded_twice: BTreeSet<String>,
    /// Machines not Ready, or with an owner, other than the other user's.
    pub not_free: BTreeSet<String>,
    /// The ledger's double actions and totals.
    pub ledger: LedgerAudit,
}

impl MaasAudit {
    /// Leaks plus double records plus the ledger's double actions: zero when nothing was lost
    /// or done twice.
    pub fn defects(&self) -> usize {
        self.leaked.len() + self.recorded_twice.len() + self.ledger.double_actions()
    }
}

impl fmt::Display for MaasAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.ledger;
        write!(
            f,
            "held {}, recorded {}, leaked {}, recorded twice {}, not free {}; ledger: {} \
             acquisitions ({} released undeployed), {} deployments, {} releases, {} broken, {} \
             double allocations, {} double deployments",
            self.held.len(),
            self.recorded.len(),
            self.leaked.len(),
            self.recorded_twice.len(),
            self.not_free.len(),
            l.acquisitions,
            l.undeployed,
            l.deployments,
            l.releases,
            l.broken,
            l.overlapping_holdings.len(),
            l.repeated_deployments.len(),
        )?;
        for line in l.overlapping_holdings.iter().chain(&l.repeated_deployments) {
            write!(f, "\n  {line}")?;
        }
        for id in &self.leaked {
            write!(f, "\n  leaked: {id}")?;
        }
        for id in &self.recorded_twice {
            write!(f, "\n  recorded twice: {id}")?;
        }
        Ok(())
    }
}

/// Audits MAAS's state against what `records` (system id per MaasMachine) say.
pub fn audit_state(
    state: &StateView,
    ledger_entries: &[LedgerEntry],
    records: &[String],
) -> MaasAudit {
    let mine = state
        .machines
        .iter()
        .filter(|m| m.owner.as_deref() != Some(OTHER_USER));
    let held: BTreeSet<String> = mine
        .clone()
        .filter(|m| m.owner.is_some())
        .map(|m| m.system_id.clone())
        .collect();
    let not_free = mine
        .filter(|m| m.owner.is_some() || m.status != "Ready")
        .map(|m| m.system_id.clone())
        .collect();
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for id in records {
        *counts.entry(id).or_default() += 1;
    }
    let recorded: BTreeSet<String> = records.iter().cloned().collect();
    MaasAudit {
        leaked: held.difference(&recorded).cloned().collect(),
        recorded_twice: counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, _)| id.clone())
            .collect(),
        held,
        recorded,
        not_free,
        ledger: ledger::audit(&ours(ledger_entries)),
    }
}

/// The ledger without the machines the other user was given at the start (they never change
/// hands), so the totals count our MAAS user's machines only.
fn ours(entries: &[LedgerEntry]) -> Vec<LedgerEntry> {
    let others: BTreeSet<&str> = entries
        .iter()
        .filter(|e| matches!(&e.event, LedgerEvent::Acquired { user, .. } if user == OTHER_USER))
        .map(|e| e.system_id.as_str())
        .collect();
    entries
        .iter()
        .filter(|e| !others.contains(e.system_id.as_str()))
        .cloned()
        .collect()
}

/// The system ids the live MaasMachines of `namespace` record, one per MaasMachine that has one.
pub async fn recorded_system_ids(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<String>, HarnessError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &observe::maas_machines_resource(),
    );
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|m| m.data["spec"]["systemID"].as_str().map(str::to_string))
        .collect())
}

/// Audits the environment's simulator against the MaasMachines of `namespace` now.
pub async fn audit(env: &Env, namespace: &str) -> Result<MaasAudit, HarnessError> {
    let records = recorded_system_ids(&env.client, namespace).await?;
    Ok(audit_state(&env.sim.state(), &env.sim.ledger(), &records))
}

/// Waits, after the Cluster `cluster` of `namespace` was deleted, until it is gone, no
/// MaasMachine records a machine, every MAAS machine of our user is Ready with no owner and no
/// DNS record of the cluster is left; returns the audit then.
pub async fn wait_until_free(
    env: &Env,
    namespace: &str,
    cluster: &str,
    limit: Duration,
) -> Result<MaasAudit, HarnessError> {
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        namespace,
        &scenario::capi_resource("Cluster", "clusters"),
    );
    let record_prefix = format!("{cluster}-");
    wait_for("the cluster's machines to be free", POLL, limit, || async {
        let a = audit(env, namespace).await?;
        let gone = clusters.get_opt(cluster).await?.is_none();
        let records = env
            .sim
            .state()
            .dnsresources
            .iter()
            .filter(|d| d.fqdn.starts_with(&record_prefix))
            .count();
        let done = gone && a.recorded.is_empty() && a.not_free.is_empty() && records == 0;
        let progress = format!("Cluster gone: {gone}; {records} DNS records; {a}");
        Ok((done.then(|| a.clone()), progress))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use maas_sim::MachineView;

    fn machine(id: &str, owner: Option<&str>, status: &str) -> MachineView {
        MachineView {
            system_id: id.into(),
            hostname: id.into(),
            status: status.into(),
            status_code: 0,
            owner: owner.map(str::to_string),
            owner_data: Default::default(),
            agent_name: None,
            power_state: "off".into(),
            ip_addresses: vec![],
            user_data: None,
            distro_series: String::new(),
            zone: "default".into(),
            pool: "default".into(),
            tags: vec![],
        }
    }

    #[test]
    fn leaks_double_records_and_ledger_defects_are_counted() {
        let state = StateView {
            machines: vec![
                machine("a", Some("user"), "Deployed"),
                machine("b", Some("user"), "Deployed"),
                machine("c", Some(OTHER_USER), "Deployed"),
                machine("d", None, "Ready"),
                machine("e", None, "Releasing"),
            ],
            dnsresources: vec![],
        };
        let ledger = vec![
            LedgerEntry {
                system_id: "c".into(),
                event: LedgerEvent::Acquired {
                    user: OTHER_USER.into(),
                    agent_name: None,
                },
            },
            LedgerEntry {
                system_id: "a".into(),
                event: LedgerEvent::DeployStarted,
            },
            LedgerEntry {
                system_id: "a".into(),
                event: LedgerEvent::DeployStarted,
            },
        ];
        let records = vec!["a".to_string(), "a".to_string()];
        let audit = audit_state(&state, &ledger, &records);
        assert_eq!(audit.leaked, BTreeSet::from(["b".to_string()]));
        assert_eq!(audit.recorded_twice, BTreeSet::from(["a".to_string()]));
        assert_eq!(
            audit.not_free,
            BTreeSet::from(["a".to_string(), "b".to_string(), "e".to_string()])
        );
        // The deploys belong to no holding the ledger saw start, so they are not counted twice.
        assert_eq!(audit.ledger.deployments, 2);
        assert_eq!(
            audit.ledger.acquisitions, 0,
            "the other user's machine is not counted"
        );
        assert_eq!(audit.defects(), 2);
    }
}
