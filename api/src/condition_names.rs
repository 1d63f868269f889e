//! Condition types and reasons shared by the MaasCluster and MaasMachine controllers, so events,
//! metrics and users' alerts see one vocabulary.

/// Condition types.
pub mod types {
    /// Summary: the object is fully reconciled and usable.
    pub const READY: &str = "Ready";
    /// MaasCluster: the cluster infrastructure (endpoint, failure domains) is in place.
    pub const INFRASTRUCTURE_READY: &str = "InfrastructureReady";
    /// MaasMachine: a MAAS machine is allocated, deployed and running.
    pub const MACHINE_PROVISIONED: &str = "MachineProvisioned";
    /// MaasCluster: the MAAS DNS resource for the endpoint exists and lists the control plane.
    pub const DNS_READY: &str = "DNSReady";
    /// MaasCluster: every zone in `spec.failureDomains` exists in MAAS.
    pub const FAILURE_DOMAINS_READY: &str = "FailureDomainsReady";
    /// The object or its Cluster is paused; nothing is reconciled.
    pub const PAUSED: &str = "Paused";
    /// The MAAS credentials (environment or identity Secret) are present and accepted.
    pub const MAAS_CREDENTIALS: &str = "MaasCredentials";
    /// MaasMachine: the workload Node carries this machine's providerID.
    pub const NODE_PROVIDER_ID: &str = "NodeProviderID";
    /// The object is being deleted and its MAAS resources released.
    pub const DELETING: &str = "Deleting";
    /// MaasMachineTemplate: Ready MAAS machines match its constraints, and its capacity is
    /// the smallest one's.
    pub const MACHINES_AVAILABLE: &str = "MachinesAvailable";
}

/// Condition reasons.
pub mod reasons {
    /// Everything is in place.
    pub const READY: &str = "Ready";
    /// Not paused.
    pub const NOT_PAUSED: &str = "NotPaused";
    /// `Cluster.spec.paused` or the paused annotation is set.
    pub const PAUSED: &str = "Paused";
    /// The Cluster's infrastructure is not provisioned yet.
    pub const WAITING_FOR_CLUSTER_INFRASTRUCTURE: &str = "WaitingForClusterInfrastructure";
    /// The Machine has no bootstrap data secret yet.
    pub const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapData";
    /// No owner reference to a Cluster API object yet.
    pub const WAITING_FOR_OWNER: &str = "WaitingForOwner";
    /// A MAAS machine is being allocated.
    pub const ALLOCATING: &str = "Allocating";
    /// MAAS has no machine matching the constraints.
    pub const NO_MACHINE_AVAILABLE: &str = "NoMachineAvailable";
    /// MAAS refused the allocation for another reason (bad tag, zone or pool).
    pub const ALLOCATION_FAILED: &str = "AllocationFailed";
    /// The MAAS machine is deploying.
    pub const DEPLOYING: &str = "Deploying";
    /// MAAS reported a failed deployment.
    pub const DEPLOYMENT_FAILED: &str = "DeploymentFailed";
    /// Deployment failed more often than the retry budget allows.
    pub const DEPLOYMENT_RETRIES_EXHAUSTED: &str = "DeploymentRetriesExhausted";
    /// The MAAS machine is powered off.
    pub const POWERED_OFF: &str = "PoweredOff";
    /// The MAAS machine went Broken.
    pub const MACHINE_BROKEN: &str = "MachineBroken";
    /// The MAAS machine no longer exists.
    pub const MACHINE_NOT_FOUND: &str = "MachineNotFound";
    /// The MAAS machine is being released.
    pub const RELEASING: &str = "Releasing";
    /// No MAAS credentials were found.
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    /// MAAS refused the credentials.
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    /// MAAS could not be reached or answered with a server error.
    pub const MAAS_UNAVAILABLE: &str = "MaasUnavailable";
    /// The endpoint is given by the user or HyperShift; no MAAS DNS is managed.
    pub const CUSTOM_DNS_PROVIDED: &str = "CustomDNSProvided";
    /// The DNS resource has no control-plane address yet.
    pub const WAITING_FOR_CONTROL_PLANE: &str = "WaitingForControlPlane";
    /// Creating or updating the DNS resource failed.
    pub const DNS_UPDATE_FAILED: &str = "DNSUpdateFailed";
    /// A zone in `spec.failureDomains` does not exist in MAAS.
    pub const UNKNOWN_FAILURE_DOMAIN: &str = "UnknownFailureDomain";
    /// The workload Node for this machine has not registered yet.
    pub const NODE_NOT_FOUND: &str = "NodeNotFound";
    /// The workload cluster could not be reached through its kubeconfig secret.
    pub const WORKLOAD_CLUSTER_UNREACHABLE: &str = "WorkloadClusterUnreachable";
    /// MaasCluster deletion waits for its MaasMachines to go.
    pub const WAITING_FOR_MACHINES: &str = "WaitingForMachinesDeleted";
    /// MaasMachineTemplate: Ready MAAS machines match; capacity comes from the smallest.
    pub const MACHINES_MATCH: &str = "MachinesMatch";
    /// MaasMachineTemplate: no Ready MAAS machine matches; capacity shows the spec's minimums.
    pub const NO_MACHINE_MATCHES: &str = "NoMachineMatches";
}
