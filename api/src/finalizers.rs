//! Finalizer names, the same strings the Go provider uses so objects it created keep working.

/// Held by a MaasCluster until its DNS resource is gone and no MaasMachine of it remains.
pub const MAAS_CLUSTER: &str = "maascluster.infrastructure.cluster.x-k8s.io";

/// Held by a MaasMachine until its MAAS machine has been released.
pub const MAAS_MACHINE: &str = "maasmachine.infrastructure.cluster.x-k8s.io";
