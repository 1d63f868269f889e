//! Stable reasons for waits and failures: they become condition reasons, event reasons and
//! metric labels, so their spelling is part of the interface and never changes.

/// Why a MaasMachine is waiting instead of acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The Cluster or the object is paused.
    Paused,
    /// No owner Machine yet (CAPI sets the ownerReference shortly after creation).
    WaitingForOwner,
    /// The owner Machine names no Cluster that exists.
    WaitingForCluster,
    /// The Cluster's infrastructure is not provisioned yet.
    WaitingForClusterInfrastructure,
    /// The Machine has no bootstrap data secret yet.
    WaitingForBootstrapData,
    /// A failed deployment was released; the next allocation waits out a growing delay.
    WaitingToRetry,
    /// MAAS has no machine matching the constraints right now.
    NoMachineAvailable,
    /// The machine is installing its operating system.
    Deploying,
    /// The machine is being released.
    Releasing,
    /// An operator put the machine in a state we must not touch (rescue, testing, ...).
    HeldByOperator,
    /// The machine is deployed but its power state is not `on` yet.
    PoweringOn,
    /// A MaasCluster being deleted still has MaasMachines.
    WaitingForMachines,
    /// The bootstrap data cannot be deployed as it is (a malformed Ignition config).
    InvalidBootstrapData,
    /// MAAS refuses to deploy the machine (409), even after a fresh look at it.
    DeployRefused,
    /// MAAS refuses to release the machine (403, 409).
    ReleaseRefused,
    /// MAAS keeps reporting the deployed machine's power off after several power-ons.
    PowerStaysOff,
}

impl WaitReason {
    /// What the condition says for this wait when the pass has no words of MAAS's to give.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            WaitReason::PowerStaysOff => Some(
                "MAAS still reports the power off after several power-ons; check the machine's \
                 power driver (BMC)",
            ),
            _ => None,
        }
    }

    /// The condition reason.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Paused => "Paused",
            WaitReason::WaitingForOwner => "WaitingForOwner",
            WaitReason::WaitingForCluster => "WaitingForCluster",
            WaitReason::WaitingForClusterInfrastructure => "WaitingForClusterInfrastructure",
            WaitReason::WaitingForBootstrapData => "WaitingForBootstrapData",
            WaitReason::WaitingToRetry => "WaitingToRetry",
            WaitReason::NoMachineAvailable => "NoMachineAvailable",
            WaitReason::Deploying => "Deploying",
            WaitReason::Releasing => "Releasing",
            WaitReason::HeldByOperator => "HeldByOperator",
            WaitReason::PoweringOn => "PoweringOn",
            WaitReason::WaitingForMachines => "WaitingForMachines",
            WaitReason::InvalidBootstrapData => "InvalidBootstrapData",
            WaitReason::DeployRefused => "DeployRefused",
            WaitReason::ReleaseRefused => "ReleaseRefused",
            WaitReason::PowerStaysOff => "PowerStaysOff",
        }
    }
}

/// Why a MaasMachine failed: nothing the controller can do fixes it without a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The recorded MAAS machine no longer exists (404).
    MachineNotFound,
    /// The recorded machine was released outside the provider.
    MachineReleasedOutside,
    /// The recorded machine's owner data names another object.
    MachineTakenOver,
    /// Deployment failed more often than the retry budget allows.
    DeployFailuresExhausted,
    /// A failure domain of the MaasCluster is not a MAAS zone.
    UnknownFailureDomain,
    /// The machine failed (Broken, Failed deployment) after it was ready: CAPI replaces the
    /// Machine, and the release follows its deletion, after the drain.
    MachineFailedAfterReady,
}

impl FailReason {
    /// The condition reason (also the `failureReason` text).
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::MachineNotFound => "MachineNotFound",
            FailReason::MachineReleasedOutside => "MachineReleasedOutside",
            FailReason::MachineTakenOver => "MachineTakenOver",
            FailReason::DeployFailuresExhausted => "DeployFailuresExhausted",
            FailReason::UnknownFailureDomain => "UnknownFailureDomain",
            FailReason::MachineFailedAfterReady => "MachineFailedAfterReady",
        }
    }
}
