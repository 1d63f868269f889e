//! The smaller MAAS objects: version, zones, pools, tags, domains, DNS resources, boot resources
//! and node devices.

use serde::{Deserialize, Serialize};

use super::lenient;

/// `GET version/`: what this MAAS is and can do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Version {
    /// Release, e.g. `3.5.1`.
    #[serde(deserialize_with = "lenient::string")]
    pub version: String,
    /// Build details.
    #[serde(deserialize_with = "lenient::string")]
    pub subversion: String,
    /// Feature flags the API advertises.
    #[serde(deserialize_with = "lenient::string_list")]
    pub capabilities: Vec<String>,
}

/// An availability zone (CAPI failure domain).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Zone {
    /// Zone id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// Zone name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Free text.
    #[serde(deserialize_with = "lenient::string")]
    pub description: String,
}

/// A resource pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ResourcePool {
    /// Pool id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// Pool name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Free text.
    #[serde(deserialize_with = "lenient::string")]
    pub description: String,
}

/// A machine tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Tag {
    /// Tag name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// XPath definition for automatic tags; empty for manual tags.
    #[serde(deserialize_with = "lenient::string")]
    pub definition: String,
    /// Free text.
    #[serde(deserialize_with = "lenient::string")]
    pub comment: String,
    /// Kernel options applied to tagged machines.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub kernel_opts: Option<String>,
}

/// A DNS domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Domain {
    /// Domain id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// Domain name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Whether MAAS is authoritative for it.
    #[serde(deserialize_with = "lenient::bool_lenient")]
    pub authoritative: bool,
    /// Default TTL, when set.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub ttl: Option<u64>,
    /// Whether this is the default domain.
    #[serde(deserialize_with = "lenient::bool_lenient")]
    pub is_default: bool,
    /// Number of records in it.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub resource_record_count: u64,
}

/// A DNS resource (a name with address records), used for control-plane endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct DnsResource {
    /// Resource id (negative for synthetic node records in listings).
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub id: Option<i64>,
    /// Fully qualified name.
    #[serde(deserialize_with = "lenient::string")]
    pub fqdn: String,
    /// TTL of the address records, when set.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub address_ttl: Option<u64>,
    /// Addresses (MAAS renders them as address objects or plain strings; both are read).
    #[serde(deserialize_with = "lenient::string_list")]
    pub ip_addresses: Vec<String>,
}

/// A boot resource (an image MAAS can deploy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct BootResource {
    /// Resource id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// `Synced`, `Uploaded` or `Generated`.
    #[serde(rename = "type", deserialize_with = "lenient::string")]
    pub kind: String,
    /// Name, e.g. `ubuntu/jammy` or a custom image name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Architecture, e.g. `amd64/generic`.
    #[serde(deserialize_with = "lenient::string")]
    pub architecture: String,
    /// Comma-separated sub-architectures, when listed.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub subarches: Option<String>,
}

/// A PCI or USB device of a node (`nodes/{id}/devices/`), e.g. a GPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct NodeDevice {
    /// Device id.
    #[serde(deserialize_with = "lenient::u64_lenient")]
    pub id: u64,
    /// The node it belongs to.
    #[serde(deserialize_with = "lenient::string")]
    pub system_id: String,
    /// Hardware type code.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub hardware_type: Option<i64>,
    /// Hardware type label (`Node`, `CPU`, `Memory`, `Storage`, `Network`, `GPU`).
    #[serde(deserialize_with = "lenient::string")]
    pub hardware_type_name: String,
    /// Vendor id, e.g. `10de` for NVIDIA.
    #[serde(deserialize_with = "lenient::string")]
    pub vendor_id: String,
    /// Product id.
    #[serde(deserialize_with = "lenient::string")]
    pub product_id: String,
    /// Vendor name.
    #[serde(deserialize_with = "lenient::string")]
    pub vendor_name: String,
    /// Product name.
    #[serde(deserialize_with = "lenient::string")]
    pub product_name: String,
    /// Kernel driver used during commissioning.
    #[serde(deserialize_with = "lenient::string")]
    pub commissioning_driver: String,
    /// Bus name (`PCIE`, `USB`).
    #[serde(deserialize_with = "lenient::string")]
    pub bus_name: String,
    /// PCI address, e.g. `0000:3b:00.0`.
    #[serde(deserialize_with = "lenient::string")]
    pub pci_address: String,
    /// NUMA node index (MAAS sends an index or a NUMA node object).
    #[serde(deserialize_with = "numa_index")]
    pub numa_node: Option<u64>,
}

/// Reads `numa_node` given as an index or as an object with an `index` member.
fn numa_index<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    use serde_json::Value;
    Ok(match Value::deserialize(de)? {
        Value::Null => None,
        Value::Object(map) => map.get("index").map(lenient::value_to_u64),
        other => Some(lenient::value_to_u64(&other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gpu_device_with_numa_object_or_index() {
        let d: NodeDevice = serde_json::from_value(json!({
            "id": 5, "system_id": "abc", "hardware_type": 3, "hardware_type_name": "GPU",
            "vendor_id": "10de", "product_id": "2330", "vendor_name": "NVIDIA Corporation",
            "product_name": "GH100 [H100 SXM5 80GB]", "pci_address": "0000:3b:00.0",
            "numa_node": {"index": 1, "memory": 1024}
        }))
        .unwrap();
        assert_eq!(d.numa_node, Some(1));
        assert_eq!(d.vendor_id, "10de");
        let d: NodeDevice = serde_json::from_value(json!({"numa_node": 0})).unwrap();
        assert_eq!(d.numa_node, Some(0));
        let d: NodeDevice = serde_json::from_value(json!({"numa_node": null})).unwrap();
        assert_eq!(d.numa_node, None);
    }

    #[test]
    fn dns_resource_addresses_as_objects_or_strings() {
        let r: DnsResource = serde_json::from_value(json!({
            "id": 7, "fqdn": "c1-ab12.maas", "address_ttl": 30,
            "ip_addresses": [{"ip": "10.0.0.5", "alloc_type": 4}, "10.0.0.6"]
        }))
        .unwrap();
        assert_eq!(r.ip_addresses, vec!["10.0.0.5", "10.0.0.6"]);
        assert_eq!((r.id, r.address_ttl), (Some(7), Some(30)));
    }

    #[test]
    fn version_capabilities() {
        let v: Version = serde_json::from_value(json!({
            "capabilities": ["networks-management", "static-ipaddresses"],
            "version": "3.5.1", "subversion": "3.5.1-16240"
        }))
        .unwrap();
        assert_eq!(v.capabilities.len(), 2);
        assert_eq!(v.version, "3.5.1");
    }
}
