//! Node status and power state values, numbered exactly as MAAS numbers them, because clients
//! decode the integer and compare the label.

use serde::{Deserialize, Serialize};

/// A MAAS node status (`status` integer and `status_name` label in machine JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// 0: enlisted, not commissioned.
    New,
    /// 1: commissioning scripts running.
    Commissioning,
    /// 2: commissioning failed.
    FailedCommissioning,
    /// 3: the machine cannot be found.
    Missing,
    /// 4: available for allocation.
    Ready,
    /// 5: reserved.
    Reserved,
    /// 6: deployed and running the chosen image.
    Deployed,
    /// 7: retired.
    Retired,
    /// 8: marked broken.
    Broken,
    /// 9: the OS is being installed.
    Deploying,
    /// 10: owned by a user, not deployed.
    Allocated,
    /// 11: the installation failed.
    FailedDeployment,
    /// 12: being released.
    Releasing,
    /// 13: releasing failed.
    FailedReleasing,
    /// 14: disks being erased during release.
    DiskErasing,
    /// 15: erasing failed.
    FailedDiskErasing,
    /// 16: in rescue mode.
    RescueMode,
    /// 17: entering rescue mode.
    EnteringRescueMode,
    /// 18: failed to enter rescue mode.
    FailedEnteringRescueMode,
    /// 19: exiting rescue mode.
    ExitingRescueMode,
    /// 20: failed to exit rescue mode.
    FailedExitingRescueMode,
    /// 21: hardware tests running.
    Testing,
    /// 22: hardware tests failed.
    FailedTesting,
}

/// Every status in numeric order, so that `ALL[n]` is status `n`.
pub const ALL_STATUSES: [NodeStatus; 23] = [
    NodeStatus::New,
    NodeStatus::Commissioning,
    NodeStatus::FailedCommissioning,
    NodeStatus::Missing,
    NodeStatus::Ready,
    NodeStatus::Reserved,
    NodeStatus::Deployed,
    NodeStatus::Retired,
    NodeStatus::Broken,
    NodeStatus::Deploying,
    NodeStatus::Allocated,
    NodeStatus::FailedDeployment,
    NodeStatus::Releasing,
    NodeStatus::FailedReleasing,
    NodeStatus::DiskErasing,
    NodeStatus::FailedDiskErasing,
    NodeStatus::RescueMode,
    NodeStatus::EnteringRescueMode,
    NodeStatus::FailedEnteringRescueMode,
    NodeStatus::ExitingRescueMode,
    NodeStatus::FailedExitingRescueMode,
    NodeStatus::Testing,
    NodeStatus::FailedTesting,
];

impl NodeStatus {
    /// The integer MAAS sends in `status`.
    pub fn code(self) -> u8 {
        ALL_STATUSES
            .iter()
            .position(|s| *s == self)
            .map_or(0, |p| p as u8)
    }

    /// The label MAAS sends in `status_name` and quotes in state errors.
    pub fn label(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Commissioning => "Commissioning",
            Self::FailedCommissioning => "Failed commissioning",
            Self::Missing => "Missing",
            Self::Ready => "Ready",
            Self::Reserved => "Reserved",
            Self::Deployed => "Deployed",
            Self::Retired => "Retired",
            Self::Broken => "Broken",
            Self::Deploying => "Deploying",
            Self::Allocated => "Allocated",
            Self::FailedDeployment => "Failed deployment",
            Self::Releasing => "Releasing",
            Self::FailedReleasing => "Releasing failed",
            Self::DiskErasing => "Disk erasing",
            Self::FailedDiskErasing => "Failed disk erasing",
            Self::RescueMode => "Rescue mode",
            Self::EnteringRescueMode => "Entering rescue mode",
            Self::FailedEnteringRescueMode => "Failed to enter rescue mode",
            Self::ExitingRescueMode => "Exiting rescue mode",
            Self::FailedExitingRescueMode => "Failed to exit rescue mode",
            Self::Testing => "Testing",
            Self::FailedTesting => "Failed testing",
        }
    }

    /// Parses the `status` filter of `GET machines/` (lower-case words joined by `_`, as
    /// MAAS accepts them, or the integer).
    pub fn from_filter(value: &str) -> Option<Self> {
        if let Ok(n) = value.parse::<usize>() {
            return ALL_STATUSES.get(n).copied();
        }
        let wanted = value.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        ALL_STATUSES.iter().copied().find(|s| {
            s.filter_name() == wanted || s.label().to_ascii_lowercase().replace(' ', "_") == wanted
        })
    }

    /// The filter word for this status (`failed_deployment`, `ready`, ...).
    pub fn filter_name(self) -> String {
        let json = serde_json::to_value(self).unwrap_or_default();
        json.as_str().unwrap_or_default().to_string()
    }
}

/// A machine's power state as MAAS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
    /// The BMC did not answer.
    Unknown,
    /// Querying the BMC failed.
    Error,
}

impl PowerState {
    /// The string MAAS sends in `power_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Unknown => "unknown",
            Self::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_maas_numbering() {
        assert_eq!(NodeStatus::New.code(), 0);
        assert_eq!(NodeStatus::Ready.code(), 4);
        assert_eq!(NodeStatus::Deployed.code(), 6);
        assert_eq!(NodeStatus::Deploying.code(), 9);
        assert_eq!(NodeStatus::Allocated.code(), 10);
        assert_eq!(NodeStatus::FailedDeployment.code(), 11);
        assert_eq!(NodeStatus::DiskErasing.code(), 14);
        assert_eq!(NodeStatus::FailedTesting.code(), 22);
    }

    #[test]
    fn filter_names_parse_back() {
        for status in ALL_STATUSES {
            assert_eq!(NodeStatus::from_filter(&status.filter_name()), Some(status));
            assert_eq!(
                NodeStatus::from_filter(&status.code().to_string()),
                Some(status)
            );
        }
        assert_eq!(
            NodeStatus::from_filter("Failed deployment"),
            Some(NodeStatus::FailedDeployment)
        );
        assert_eq!(NodeStatus::from_filter("nonsense"), None);
    }
}
