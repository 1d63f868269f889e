//! Finalizer names, the same strings the Go provider uses so objects it created keep working.

/// Held by a MaasCluster until its DNS resource is gone and no MaasMachine of it remains.
pub const MAAS_CLUSTER: &str = "maascluster.infrastructure.cluster.x-k8s.io";

/// Held by a MaasMachine until its MAAS machine has been released.
pub const MAAS_MACHINE: &str = "maasmachine.infrastructure.cluster.x-k8s.io";

/// Held by an identity Secret while a MaasCluster names it, so that deleting the namespace (which
/// deletes everything at once) cannot take the credentials away before the machines they
/// allocated are released.
pub const MAAS_IDENTITY: &str = "infrastructure.cluster.x-k8s.io/maas-identity-in-use";
