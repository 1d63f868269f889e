//! Per-cluster MAAS credentials: the reference type on `MaasCluster.spec` and the Secret keys.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Secret key holding the MAAS URL, the same name as the environment variable.
pub const SECRET_KEY_ENDPOINT: &str = "MAAS_ENDPOINT";

/// Secret key holding the MAAS API key (`consumer:token:secret`), the same name as the
/// environment variable.
pub const SECRET_KEY_API_KEY: &str = "MAAS_API_KEY";

/// Points at a Secret in the MaasCluster's namespace whose `MAAS_ENDPOINT` and `MAAS_API_KEY`
/// override the provider-wide credentials for this cluster and its machines.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityReference {
    /// Name of the Secret, in the namespace of the MaasCluster.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
