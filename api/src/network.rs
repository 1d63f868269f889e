//! Machine networks: which interface holds which address (MaasMachine status), and which of
//! them the cluster's API endpoint record may take (MaasCluster spec).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One network interface of a deployed machine and its addresses, as MAAS links them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MachineInterface {
    /// Interface name in MAAS (`eno1`, `bond0.20`).
    pub name: String,
    /// Whether the machine boots from this interface (its PXE network).
    #[serde(default)]
    pub boot: bool,
    /// The interface's addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub addresses: Vec<InterfaceAddress>,
}

/// One address of an interface and the MAAS network it is on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceAddress {
    /// The IP address.
    pub address: String,
    /// CIDR of its MAAS subnet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// Name of its MAAS subnet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet_name: String,
    /// MAAS space of the subnet (`undefined` when it has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub space: String,
    /// MAAS fabric of the subnet's VLAN.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fabric: String,
}

/// The networks whose addresses the API endpoint's DNS record takes. An address qualifies when
/// its subnet, space or fabric is named in any list. Left out, the record takes the addresses
/// of each control-plane machine's boot interface, unless the namespace holds the Go provider's
/// `maas-preferred-subnet` ConfigMap, whose CIDRs then decide.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointNetworks {
    /// MAAS subnets, by CIDR (`10.20.0.0/24`) or by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub subnets: Vec<String>,
    /// MAAS spaces, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub spaces: Vec<String>,
    /// MAAS fabrics, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub fabrics: Vec<String>,
}

impl EndpointNetworks {
    /// Whether no network is named (the default choice applies).
    pub fn is_empty(&self) -> bool {
        self.subnets.is_empty() && self.spaces.is_empty() && self.fabrics.is_empty()
    }

    /// Whether `address` is on one of the named networks.
    pub fn admits(&self, address: &InterfaceAddress) -> bool {
        let named = |list: &[String], value: &str| {
            !value.is_empty() && list.iter().any(|n| n.trim() == value)
        };
        named(&self.subnets, &address.subnet)
            || named(&self.subnets, &address.subnet_name)
            || named(&self.spaces, &address.space)
            || named(&self.fabrics, &address.fabric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(subnet: &str, name: &str, space: &str, fabric: &str) -> InterfaceAddress {
        InterfaceAddress {
            address: "10.0.0.5".into(),
            subnet: subnet.into(),
            subnet_name: name.into(),
            space: space.into(),
            fabric: fabric.into(),
        }
    }

    #[test]
    fn an_address_qualifies_by_subnet_cidr_or_name_space_or_fabric() {
        let data = on("10.21.0.0/24", "data", "internal", "fabric-1");
        let pxe = on("10.20.0.0/16", "pxe", "undefined", "fabric-0");
        let by = |subnets: &[&str], spaces: &[&str], fabrics: &[&str]| EndpointNetworks {
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            spaces: spaces.iter().map(|s| s.to_string()).collect(),
            fabrics: fabrics.iter().map(|s| s.to_string()).collect(),
        };
        for networks in [
            by(&["10.21.0.0/24"], &[], &[]),
            by(&["data"], &[], &[]),
            by(&[], &["internal"], &[]),
            by(&[], &[], &["fabric-1"]),
        ] {
            assert!(networks.admits(&data), "{networks:?}");
            assert!(!networks.admits(&pxe), "{networks:?}");
        }
        assert!(by(&[], &[], &[]).is_empty());
        assert!(
            !by(&[], &[], &[]).admits(&data),
            "an empty list names nothing"
        );
        assert!(!by(&[""], &[], &[]).admits(&on("", "", "", "")));
    }
}
