//! The ledger: what MAAS did to machines, in order, kept with the state (and in the state file,
//! so it outlives a restart). It is the record a chaos run is audited from: who held which
//! machine when, and how many deployments each holding started. The audit reads MAAS's side
//! only, never the provider's objects, so a provider that forgets what it did cannot hide it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One thing MAAS did to a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The machine.
    pub system_id: String,
    /// What happened.
    pub event: LedgerEvent,
}

/// The events that open and close a holding, and what happens inside one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerEvent {
    /// A user took the machine (allocate, or deploy of an unowned machine).
    Acquired {
        /// The user.
        user: String,
        /// The `agent_name` it was taken under, if any.
        agent_name: Option<String>,
    },
    /// A deployment started.
    DeployStarted,
    /// A release started: the holding ends for its agent (MAAS clears the agent name), though
    /// the owner stays until the machine is Ready.
    ReleaseStarted,
    /// The machine went Broken.
    Broken,
    /// The machine is Ready without an owner.
    Freed,
}

impl LedgerEvent {
    /// The event's name, as the JSON form spells it (`deploy_started`).
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerEvent::Acquired { .. } => "acquired",
            LedgerEvent::DeployStarted => "deploy_started",
            LedgerEvent::ReleaseStarted => "release_started",
            LedgerEvent::Broken => "broken",
            LedgerEvent::Freed => "freed",
        }
    }
}

/// What the ledger says about double actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerAudit {
    /// Machines acquired, in all.
    pub acquisitions: usize,
    /// Deployments started, in all.
    pub deployments: usize,
    /// Releases started, in all.
    pub releases: usize,
    /// Machines that went Broken.
    pub broken: usize,
    /// Agent names that held two machines at once (a resent allocation): one line each.
    pub overlapping_holdings: Vec<String>,
    /// Holdings in which more than one deployment started (a resent deploy): one line each.
    pub repeated_deployments: Vec<String>,
    /// Holdings that ended without a deployment (allocated, then released: a scale-down
    /// before the deploy, a duplicate released): not a defect, but the cost of one.
    pub undeployed: usize,
}

impl LedgerAudit {
    /// Double allocations and double deployments together.
    pub fn double_actions(&self) -> usize {
        self.overlapping_holdings.len() + self.repeated_deployments.len()
    }
}

/// A machine's current holding.
struct Holding {
    agent_name: Option<String>,
    deployments: usize,
}

/// Audits a ledger: a holding runs from `Acquired` to `ReleaseStarted` (or `Freed`); within one,
/// one agent name holds one machine and starts at most one deployment.
pub fn audit(entries: &[LedgerEntry]) -> LedgerAudit {
    let mut result = LedgerAudit::default();
    let mut holdings: BTreeMap<&str, Holding> = BTreeMap::new();
    let mut held_by_agent: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for entry in entries {
        let id = entry.system_id.as_str();
        match &entry.event {
            LedgerEvent::Acquired { agent_name, .. } => {
                result.acquisitions += 1;
                if let Some(agent) = agent_name {
                    let held = held_by_agent.entry(agent.clone()).or_default();
                    if !held.is_empty() {
                        result.overlapping_holdings.push(format!(
                            "{agent} took {id} while holding {}",
                            held.iter().copied().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    held.insert(id);
                }
                holdings.insert(
                    id,
                    Holding {
                        agent_name: agent_name.clone(),
                        deployments: 0,
                    },
                );
            }
            LedgerEvent::DeployStarted => {
                result.deployments += 1;
                if let Some(holding) = holdings.get_mut(id) {
                    holding.deployments += 1;
                    if holding.deployments == 2 {
                        result.repeated_deployments.push(format!(
                            "{id} deployed twice for {}",
                            holding.agent_name.as_deref().unwrap_or("no agent name")
                        ));
                    }
                }
            }
            LedgerEvent::ReleaseStarted | LedgerEvent::Freed => {
                if matches!(entry.event, LedgerEvent::ReleaseStarted) {
                    result.releases += 1;
                }
                if end_holding(&mut holdings, &mut held_by_agent, id) {
                    result.undeployed += 1;
                }
            }
            LedgerEvent::Broken => result.broken += 1,
        }
    }
    result
}

/// Ends the holding of `id`, if one is open; returns whether it saw no deployment.
fn end_holding(
    holdings: &mut BTreeMap<&str, Holding>,
    held_by_agent: &mut BTreeMap<String, BTreeSet<&str>>,
    id: &str,
) -> bool {
    let Some(holding) = holdings.remove(id) else {
        return false;
    };
    if let Some(agent) = &holding.agent_name
        && let Some(held) = held_by_agent.get_mut(agent)
    {
        held.remove(id);
    }
    holding.deployments == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, event: LedgerEvent) -> LedgerEntry {
        LedgerEntry {
            system_id: id.to_string(),
            event,
        }
    }

    fn acquired(id: &str, agent: &str) -> LedgerEntry {
        e(
            id,
            LedgerEvent::Acquired {
                user: "user".into(),
                agent_name: Some(agent.into()),
            },
        )
    }

    #[test]
    fn a_clean_lifecycle_and_a_retry_on_another_machine_are_no_double_action() {
        let ledger = vec![
            acquired("a", "capmaas:1"),
            e("a", LedgerEvent::DeployStarted),
            // Failed deployment: released, then another machine for the same object.
            e("a", LedgerEvent::ReleaseStarted),
            acquired("b", "capmaas:1"),
            e("a", LedgerEvent::Freed),
            e("b", LedgerEvent::DeployStarted),
            // The same machine again, in a new holding.
            e("b", LedgerEvent::ReleaseStarted),
            e("b", LedgerEvent::Freed),
            acquired("b", "capmaas:1"),
            e("b", LedgerEvent::DeployStarted),
        ];
        let audit = audit(&ledger);
        assert_eq!(audit.double_actions(), 0, "{audit:?}");
        assert_eq!(
            (audit.acquisitions, audit.deployments, audit.releases),
            (3, 3, 2)
        );
        assert_eq!(audit.undeployed, 0);
    }

    #[test]
    fn a_resent_allocate_and_a_resent_deploy_are_caught() {
        let ledger = vec![
            acquired("a", "capmaas:1"),
            acquired("b", "capmaas:1"),
            e("b", LedgerEvent::DeployStarted),
            e("b", LedgerEvent::DeployStarted),
            e("b", LedgerEvent::DeployStarted),
        ];
        let audit = audit(&ledger);
        assert_eq!(
            audit.overlapping_holdings,
            vec!["capmaas:1 took b while holding a"]
        );
        assert_eq!(
            audit.repeated_deployments,
            vec!["b deployed twice for capmaas:1"]
        );
        assert_eq!(audit.double_actions(), 2);
    }

    #[test]
    fn machines_taken_without_an_agent_name_never_overlap() {
        let ledger = vec![
            e(
                "a",
                LedgerEvent::Acquired {
                    user: "other".into(),
                    agent_name: None,
                },
            ),
            e(
                "b",
                LedgerEvent::Acquired {
                    user: "other".into(),
                    agent_name: None,
                },
            ),
            e("b", LedgerEvent::Broken),
        ];
        let audit = audit(&ledger);
        assert_eq!(audit.double_actions(), 0);
        assert_eq!(audit.broken, 1);
    }

    #[test]
    fn kinds_are_the_json_tags() {
        for event in [
            LedgerEvent::Acquired {
                user: "u".into(),
                agent_name: None,
            },
            LedgerEvent::DeployStarted,
            LedgerEvent::ReleaseStarted,
            LedgerEvent::Broken,
            LedgerEvent::Freed,
        ] {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["kind"], event.kind());
        }
    }
}
