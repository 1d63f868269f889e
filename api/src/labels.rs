//! Label keys the provider reads or writes, kept in one place so the two controllers and the
//! CRD generator can never disagree on a spelling.

/// Names the owning Cluster on every Cluster API object; the printer columns and the MaasMachine
/// controller (Machine -> Cluster lookup) read it.
pub const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";

/// Present on control-plane Machines; the DNS endpoint only ever holds their addresses.
pub const CONTROL_PLANE: &str = "cluster.x-k8s.io/control-plane";

/// Contract label for the Cluster API v1beta1 contract (CAPI <= 1.10 and HyperShift read it).
pub const CONTRACT_V1BETA1: &str = "cluster.x-k8s.io/v1beta1";

/// Contract label for the Cluster API v1beta2 contract (CAPI >= 1.11 reads it).
pub const CONTRACT_V1BETA2: &str = "cluster.x-k8s.io/v1beta2";

/// The API version of our CRDs, the value of both contract labels.
pub const CONTRACT_LABEL_VALUE: &str = "v1beta1";

/// Set by HyperShift on the MaasCluster it creates for a hosted cluster.
pub const HYPERSHIFT_CLUSTER: &str = "hypershift.openshift.io/cluster";
