//! Annotation keys. Progress markers live in annotations because the API server never prunes
//! them, even under the reduced CRDs HyperShift installs (see the `crdgen` hypershift profile).

/// HyperShift sets it (empty value) on the MaasCluster: the endpoint is given, create no MAAS DNS.
pub const CUSTOM_DNS_PROVIDED: &str = "spectrocloud.com/custom-dns-provided";

/// Another controller manages the infrastructure cluster: touch nothing, not even status.
pub const MANAGED_BY: &str = "cluster.x-k8s.io/managed-by";

/// Pauses reconciliation of the annotated object, like `Cluster.spec.paused` for the whole cluster.
pub const PAUSED: &str = "cluster.x-k8s.io/paused";

/// Written on a MaasMachine before the MAAS allocate call; when present without a recorded
/// systemID the controller first looks for a machine already allocated for this object.
pub const ALLOCATION_ATTEMPT: &str = "infrastructure.cluster.x-k8s.io/maas-allocation-attempt";

/// Written on a MaasMachine when its MAAS machine must be released (deletion or a failed
/// deployment), so the release survives a restart between the decision and the MAAS call.
pub const RELEASE_INTENT: &str = "infrastructure.cluster.x-k8s.io/maas-release-intent";

/// Counts deploy attempts of a MaasMachine so that re-allocation after failed deployments stays
/// bounded across restarts.
pub const DEPLOY_ATTEMPTS: &str = "infrastructure.cluster.x-k8s.io/maas-deploy-attempts";

/// Names a Secret (same namespace) holding per-cluster MAAS credentials; an alternative to
/// `spec.identityRef` that also survives the HyperShift CRDs, which prune that field.
pub const IDENTITY_SECRET: &str = "infrastructure.cluster.x-k8s.io/maas-identity-secret";
