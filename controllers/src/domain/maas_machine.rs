//! The coarse view of a MAAS machine that the decisions work on.
//!
//! The decisions never see the client's wire types: the reconcilers translate a MAAS machine
//! into these few facts, so the decision table stays small and testable without a client.

use std::collections::BTreeMap;

/// What a MAAS status code means for the provider.
///
/// Several MAAS statuses lead to the same next step, so the decisions match on this grouping
/// instead of on twenty-odd codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaasPhase {
    /// Free and not held by anyone (Ready, New, and the other statuses outside an allocation).
    Free,
    /// Held by a user and not yet deploying (Allocated).
    Allocated,
    /// The operating system is being installed (Deploying).
    Deploying,
    /// Deployment finished (Deployed).
    Deployed,
    /// Deployment failed (Failed deployment).
    FailedDeployment,
    /// Marked broken by an operator or by MAAS.
    Broken,
    /// On its way back to the free pool (Releasing, Disk erasing).
    Releasing,
    /// Returning to the free pool failed (Releasing failed, Failed disk erasing).
    FailedReleasing,
    /// A state an operator put the machine in (rescue mode, testing, commissioning, missing,
    /// retired, reserved): wait for them.
    OperatorHeld,
}

impl MaasPhase {
    /// The phase of a MAAS status code (DESIGN.md 5 lists them); unknown codes are treated as
    /// operator-held so the provider waits instead of acting on something it does not understand.
    pub fn from_status_code(code: i64) -> Self {
        match code {
            0 | 4 => MaasPhase::Free,
            10 => MaasPhase::Allocated,
            9 => MaasPhase::Deploying,
            6 => MaasPhase::Deployed,
            11 => MaasPhase::FailedDeployment,
            8 => MaasPhase::Broken,
            12 | 14 => MaasPhase::Releasing,
            13 | 15 => MaasPhase::FailedReleasing,
            _ => MaasPhase::OperatorHeld,
        }
    }

    /// Whether MAAS still counts the machine as held by its owner in this phase.
    pub fn is_held(self) -> bool {
        matches!(
            self,
            MaasPhase::Allocated
                | MaasPhase::Deploying
                | MaasPhase::Deployed
                | MaasPhase::FailedDeployment
                | MaasPhase::Broken
        )
    }
}

/// Power state as far as the decisions care: only an exact `off` justifies a power-on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Power {
    /// MAAS reports `on`.
    On,
    /// MAAS reports exactly `off`.
    Off,
    /// `unknown`, `error` or anything else: never act on it.
    #[default]
    Unknown,
}

impl Power {
    /// Reads MAAS's power state word.
    pub fn from_word(word: &str) -> Self {
        match word {
            "on" => Power::On,
            "off" => Power::Off,
            _ => Power::Unknown,
        }
    }
}

/// Owner data key holding the MaasMachine uid; with the agent name it ties a MAAS machine to
/// exactly one Kubernetes object, which is what adoption and the orphan sweep rely on.
pub const OWNER_KEY_UID: &str = "capmaas-uid";
/// Owner data key holding the MaasMachine namespace, so the orphan sweep can look it up.
pub const OWNER_KEY_NAMESPACE: &str = "capmaas-namespace";
/// Owner data key holding the MaasMachine name, so the orphan sweep can look it up.
pub const OWNER_KEY_NAME: &str = "capmaas-name";
/// Owner data key holding the identity of the management cluster that allocated (or adopted)
/// the machine: several management clusters may share one MAAS, and only the one named here may
/// ever release the machine as an orphan.
pub const OWNER_KEY_MANAGEMENT: &str = "capmaas-management";

/// Owner data key holding the release options the MaasMachine asked for (`erase`,
/// `erase,quick`, `erase,secure`, `erase,quick,secure`; absent for a plain release), so that the
/// orphan sweep releases a machine whose object is gone the way its owner wanted.
pub const OWNER_KEY_RELEASE: &str = "capmaas-release";

/// The release options asked for on a MaasMachine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EraseOptions {
    /// Erase the disks.
    pub erase: bool,
    /// Quick erase (wipe the start and end of each disk).
    pub quick_erase: bool,
    /// Secure erase where the disk supports it.
    pub secure_erase: bool,
}

impl EraseOptions {
    /// The options as an owner data value; `None` for a plain release. Quick or secure erase
    /// imply erase, as MAAS's release reads them.
    pub fn owner_data_value(self) -> Option<String> {
        if !(self.erase || self.quick_erase || self.secure_erase) {
            return None;
        }
        let mut words = vec!["erase"];
        if self.quick_erase {
            words.push("quick");
        }
        if self.secure_erase {
            words.push("secure");
        }
        Some(words.join(","))
    }

    /// The client's release parameters for these options.
    pub fn release_params(self) -> maas_client::ReleaseParams {
        maas_client::ReleaseParams {
            erase: self.erase || self.quick_erase || self.secure_erase,
            quick_erase: self.quick_erase,
            secure_erase: self.secure_erase,
            ..Default::default()
        }
    }

    /// The options an owner data value names; unknown words are ignored, so a value written by
    /// a later version still erases at least as asked.
    pub fn from_owner_data_value(value: Option<&str>) -> Self {
        let words: Vec<&str> = value
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let has = |w: &str| words.contains(&w);
        EraseOptions {
            erase: has("erase") || has("quick") || has("secure"),
            quick_erase: has("quick"),
            secure_erase: has("secure"),
        }
    }
}

/// The facts of one MAAS machine that the machine decision reads.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ObservedMachine {
    /// MAAS system id.
    pub system_id: String,
    /// MAAS status code.
    pub status_code: i64,
    /// MAAS status label, for messages.
    pub status_name: String,
    /// Power state.
    pub power: Power,
    /// Zone name, when MAAS sent one.
    pub zone: Option<String>,
    /// Short host name.
    pub hostname: String,
    /// Fully qualified domain name.
    pub fqdn: String,
    /// IP addresses MAAS knows for the machine.
    pub ip_addresses: Vec<String>,
    /// Its interfaces, each with the addresses MAAS linked to it and their networks.
    pub interfaces: Vec<capmaas_api::MachineInterface>,
    /// Owner data (workload annotations).
    pub owner_data: BTreeMap<String, String>,
    /// CPU cores.
    pub cpu_count: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Storage in whole GB.
    pub storage_gb: u64,
}

impl ObservedMachine {
    /// The phase of the machine's status.
    pub fn phase(&self) -> MaasPhase {
        MaasPhase::from_status_code(self.status_code)
    }

    /// Whose the machine is, judged from owner data against the given MaasMachine (uid,
    /// namespace, name).
    pub fn ownership(&self, uid: &str, namespace: &str, name: &str) -> Ownership {
        let get = |k: &str| self.owner_data.get(k).map(String::as_str);
        match get(OWNER_KEY_UID) {
            Some(owner) if owner == uid => Ownership::Ours,
            Some(_)
                if get(OWNER_KEY_NAMESPACE) == Some(namespace)
                    && get(OWNER_KEY_NAME) == Some(name) =>
            {
                Ownership::Moved
            }
            Some(_) => Ownership::Other,
            None => Ownership::Unmarked,
        }
    }

    /// The release options the owner data asks for.
    pub fn release_options(&self) -> EraseOptions {
        EraseOptions::from_owner_data_value(
            self.owner_data.get(OWNER_KEY_RELEASE).map(String::as_str),
        )
    }

    /// The management cluster identity the owner data names, if any.
    pub fn management(&self) -> Option<&str> {
        self.owner_data
            .get(OWNER_KEY_MANAGEMENT)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Whether owner data ties a machine to this MaasMachine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Owner data names this MaasMachine.
    Ours,
    /// Owner data names another uid under the same namespace and name: the object was moved
    /// (`clusterctl move`) to this management cluster, and the machine is the same one.
    Moved,
    /// Owner data names another object: the machine changed hands.
    Other,
    /// No owner data yet (right after allocate) or wiped (after release).
    Unmarked,
}

/// The owner data written right after allocation (and on adoption after a move): the uid ties
/// the machine to the object, the namespace and name let the orphan sweep find it and a moved
/// object recognise it, the management identity says which management cluster may sweep it.
pub fn owner_data_for(
    uid: &str,
    namespace: &str,
    name: &str,
    management: Option<&str>,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (OWNER_KEY_UID.to_string(), uid.to_string()),
        (OWNER_KEY_NAMESPACE.to_string(), namespace.to_string()),
        (OWNER_KEY_NAME.to_string(), name.to_string()),
    ]);
    if let Some(id) = management.filter(|id| !id.is_empty()) {
        data.insert(OWNER_KEY_MANAGEMENT.to_string(), id.to_string());
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_has_the_documented_phase() {
        let table = [
            (0, MaasPhase::Free),
            (1, MaasPhase::OperatorHeld),
            (2, MaasPhase::OperatorHeld),
            (3, MaasPhase::OperatorHeld),
            (4, MaasPhase::Free),
            (5, MaasPhase::OperatorHeld),
            (6, MaasPhase::Deployed),
            (7, MaasPhase::OperatorHeld),
            (8, MaasPhase::Broken),
            (9, MaasPhase::Deploying),
            (10, MaasPhase::Allocated),
            (11, MaasPhase::FailedDeployment),
            (12, MaasPhase::Releasing),
            (13, MaasPhase::FailedReleasing),
            (14, MaasPhase::Releasing),
            (15, MaasPhase::FailedReleasing),
            (16, MaasPhase::OperatorHeld),
            (20, MaasPhase::OperatorHeld),
            (21, MaasPhase::OperatorHeld),
            (22, MaasPhase::OperatorHeld),
            (99, MaasPhase::OperatorHeld),
            (-1, MaasPhase::OperatorHeld),
        ];
        for (code, phase) in table {
            assert_eq!(MaasPhase::from_status_code(code), phase, "status {code}");
        }
    }

    #[test]
    fn only_allocation_phases_count_as_held() {
        assert!(MaasPhase::Allocated.is_held());
        assert!(MaasPhase::Deployed.is_held());
        assert!(MaasPhase::Broken.is_held());
        assert!(!MaasPhase::Free.is_held());
        assert!(!MaasPhase::Releasing.is_held());
        assert!(!MaasPhase::OperatorHeld.is_held());
    }

    #[test]
    fn release_options_survive_owner_data() {
        let cases = [
            (EraseOptions::default(), None),
            (
                EraseOptions {
                    erase: true,
                    ..Default::default()
                },
                Some("erase"),
            ),
            (
                EraseOptions {
                    erase: true,
                    quick_erase: true,
                    secure_erase: true,
                },
                Some("erase,quick,secure"),
            ),
        ];
        for (options, value) in cases {
            assert_eq!(options.owner_data_value().as_deref(), value);
            assert_eq!(EraseOptions::from_owner_data_value(value), options);
        }
        let secure_only = EraseOptions {
            secure_erase: true,
            ..Default::default()
        };
        assert_eq!(
            secure_only.owner_data_value().as_deref(),
            Some("erase,secure")
        );
        assert_eq!(
            EraseOptions::from_owner_data_value(Some("erase,zero-fill")),
            EraseOptions {
                erase: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn only_exact_off_is_off() {
        assert_eq!(Power::from_word("off"), Power::Off);
        assert_eq!(Power::from_word("on"), Power::On);
        for word in ["OFF", "unknown", "error", ""] {
            assert_eq!(Power::from_word(word), Power::Unknown, "{word}");
        }
    }

    #[test]
    fn ownership_follows_owner_data_uid() {
        let mut m = ObservedMachine::default();
        assert_eq!(m.ownership("u1", "ns", "m"), Ownership::Unmarked);
        m.owner_data = owner_data_for("u1", "ns", "m", None);
        assert_eq!(m.ownership("u1", "ns", "m"), Ownership::Ours);
        assert_eq!(m.ownership("u2", "ns", "other"), Ownership::Other);
        assert_eq!(m.ownership("u2", "other", "m"), Ownership::Other);
        assert_eq!(m.owner_data[OWNER_KEY_NAME], "m");
    }

    #[test]
    fn another_uid_under_the_same_name_is_a_moved_object() {
        let mut m = ObservedMachine {
            owner_data: owner_data_for("u-source", "ns", "m", Some("mgmt-a")),
            ..Default::default()
        };
        assert_eq!(m.ownership("u-target", "ns", "m"), Ownership::Moved);
        assert_eq!(m.ownership("u-source", "ns", "m"), Ownership::Ours);
        assert_eq!(m.management(), Some("mgmt-a"));
        m.owner_data.remove(OWNER_KEY_NAME);
        assert_eq!(m.ownership("u-target", "ns", "m"), Ownership::Other);
    }

    #[test]
    fn owner_data_carries_the_management_identity_only_when_known() {
        let with = owner_data_for("u", "ns", "m", Some("mgmt"));
        assert_eq!(with[OWNER_KEY_MANAGEMENT], "mgmt");
        assert_eq!(with.len(), 4);
        assert!(!owner_data_for("u", "ns", "m", None).contains_key(OWNER_KEY_MANAGEMENT));
        assert!(!owner_data_for("u", "ns", "m", Some("")).contains_key(OWNER_KEY_MANAGEMENT));
    }
}
