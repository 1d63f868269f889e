//! Per-cluster MAAS credentials: the reference type on `MaasCluster.spec` and the Secret keys.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Secret key holding the MAAS URL, the same name as the environment variable.
pub const SECRET_KEY_ENDPOINT: &str = "MAAS_ENDPOINT";

/// Secret key holding the MAAS API key (`consumer:token:secret`), the same name as the
/// environment variable.
pub const SECRET_KEY_API_KEY: &str = "MAAS_API_KEY";

/// Secret key holding PEM CAs trusted for the MAAS API's TLS (a private MAAS CA), in addition to
/// the system roots.
pub const SECRET_KEY_CA_BUNDLE: &str = "MAAS_CA_BUNDLE";

/// Secret key holding the default zone of the cluster's machines, the same name as the
/// environment variable.
pub const SECRET_KEY_ZONE: &str = "MAAS_ZONE";

/// The suffix of the credentials Secret HyperShift's MAAS platform (from its 4.21 line) writes
/// next to the hosted control plane: `<hosted cluster>-maas-credentials`, named like the
/// MaasCluster, keys `endpoint`, `api-key` and `zone`.
pub const HOSTED_CREDENTIALS_SUFFIX: &str = "-maas-credentials";

/// The keys of a credentials Secret in HyperShift's spelling, in the order endpoint, API key,
/// zone, CA bundle.
pub const HOSTED_SECRET_KEYS: [&str; 4] = ["endpoint", "api-key", "zone", "ca.crt"];

/// Points at a Secret in the MaasCluster's namespace whose `MAAS_ENDPOINT` and `MAAS_API_KEY`
/// override the provider-wide credentials for this cluster and its machines.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityReference {
    /// Name of the Secret, in the namespace of the MaasCluster.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
