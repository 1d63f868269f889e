//! The MAAS allocate constraints for a MaasMachine.

/// Prefix of the `agent_name` of every machine we allocate; the orphan sweep only ever touches
/// machines carrying it.
pub const AGENT_PREFIX: &str = "capmaas:";

/// The `agent_name` that ties a MAAS allocation to one MaasMachine uid, so a machine allocated
/// by a call whose answer was lost can be found again.
pub fn agent_name(uid: &str) -> String {
    format!("{AGENT_PREFIX}{uid}")
}

/// The GPU a machine must carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuRequest {
    /// Vendor name (`nvidia`, `amd`, `intel`) or PCI vendor id in hex (`10de`).
    pub vendor: Option<String>,
    /// Product name as MAAS shows it, matched by MAAS.
    pub product: Option<String>,
    /// How many GPUs at least (checked after allocation; MAAS matches presence only).
    pub min_count: Option<u32>,
}

/// The MaasMachine fields that shape an allocation, separate from the CRD type so this stays a
/// pure function of plain values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineRequirements {
    /// Minimum CPU cores.
    pub min_cpu: Option<u32>,
    /// Minimum memory in MiB.
    pub min_memory_mib: Option<u64>,
    /// Tags the machine must have, every one of them.
    pub tags: Vec<String>,
    /// Tags the machine must not have.
    pub not_tags: Vec<String>,
    /// Zone asked for on the MaasMachine.
    pub failure_domain: Option<String>,
    /// Resource pool.
    pub resource_pool: Option<String>,
    /// Minimum root disk in GB.
    pub min_disk_gb: Option<u64>,
    /// GPU requirement.
    pub gpu: Option<GpuRequest>,
    /// MAAS architecture (`amd64/generic`, `arm64`).
    pub architecture: Option<String>,
}

/// An allocate call's parameters, in MAAS's vocabulary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocateRequest {
    /// `cpu_count`.
    pub cpu_count: Option<u32>,
    /// `mem`, MiB.
    pub mem: Option<u64>,
    /// `tags`, repeated.
    pub tags: Vec<String>,
    /// `not_tags`, repeated.
    pub not_tags: Vec<String>,
    /// `zone`.
    pub zone: Option<String>,
    /// `pool`.
    pub pool: Option<String>,
    /// `storage`, a size in GB for the root disk.
    pub storage: Option<String>,
    /// `devices`, e.g. `vendor_id=10de,product_name=A100`.
    pub devices: Option<String>,
    /// `arch`, e.g. `arm64/generic`.
    pub arch: Option<String>,
    /// `system_id`: this machine only (a GPU candidate from the inventory).
    pub system_id: Option<String>,
    /// `agent_name`.
    pub agent_name: String,
    /// `comment`, shown in the MAAS event log.
    pub comment: String,
}

/// The allocate parameters. The zone comes from the Machine's failure domain (what CAPI spread
/// the machines over), else the MaasMachine's, else the provider-wide default (`MAAS_ZONE`).
/// Blank strings and zero minimums are not sent: MAAS would reject or ignore them.
pub fn allocate_request(
    req: &MachineRequirements,
    machine_failure_domain: Option<&str>,
    default_zone: Option<&str>,
    uid: &str,
    namespace: &str,
    name: &str,
) -> AllocateRequest {
    let zone = [
        machine_failure_domain,
        req.failure_domain.as_deref(),
        default_zone,
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .find(|z| !z.is_empty())
    .map(str::to_string);
    AllocateRequest {
        cpu_count: req.min_cpu.filter(|c| *c > 0),
        mem: req.min_memory_mib.filter(|m| *m > 0),
        tags: clean_list(&req.tags),
        not_tags: clean_list(&req.not_tags),
        zone,
        pool: non_blank(req.resource_pool.as_deref()),
        storage: req.min_disk_gb.filter(|g| *g > 0).map(|g| g.to_string()),
        devices: req.gpu.as_ref().and_then(devices_constraint),
        arch: non_blank(req.architecture.as_deref()),
        system_id: None,
        agent_name: agent_name(uid),
        comment: format!("capmaas {namespace}/{name}"),
    }
}

/// The `devices` constraint for a GPU request: vendor names become PCI vendor ids.
pub fn devices_constraint(gpu: &GpuRequest) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(vendor) = non_blank(gpu.vendor.as_deref()) {
        parts.push(format!("vendor_id={}", pci_vendor_id(&vendor)));
    }
    if let Some(product) = non_blank(gpu.product.as_deref()) {
        parts.push(format!("product_name={product}"));
    }
    if parts.is_empty() && gpu.min_count.unwrap_or(1) > 0 {
        // A GPU with nothing more said: any NVIDIA card, the only vendor the node layer serves.
        parts.push(format!("vendor_id={}", pci_vendor_id("nvidia")));
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// PCI vendor id of a GPU vendor name; ids and unknown names pass through lower-cased.
pub fn pci_vendor_id(vendor: &str) -> String {
    match vendor.trim().to_ascii_lowercase().as_str() {
        "nvidia" => "10de".to_string(),
        "amd" | "ati" => "1002".to_string(),
        "intel" => "8086".to_string(),
        other => other.trim_start_matches("0x").to_string(),
    }
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn clean_list(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> MachineRequirements {
        MachineRequirements {
            min_cpu: Some(4),
            min_memory_mib: Some(8192),
            tags: vec!["gpu".into(), "nvme".into(), "rack-a".into()],
            not_tags: vec!["slow".into()],
            failure_domain: Some("az-spec".into()),
            resource_pool: Some("pool-1".into()),
            min_disk_gb: Some(100),
            gpu: Some(GpuRequest {
                vendor: Some("nvidia".into()),
                product: Some("A100".into()),
                min_count: Some(1),
            }),
            architecture: Some("arm64/generic".into()),
        }
    }

    #[test]
    fn every_constraint_is_sent() {
        let r = allocate_request(&full(), None, Some("default"), "u-1", "ns", "m-0");
        assert_eq!(
            r,
            AllocateRequest {
                cpu_count: Some(4),
                mem: Some(8192),
                tags: vec!["gpu".into(), "nvme".into(), "rack-a".into()],
                not_tags: vec!["slow".into()],
                zone: Some("az-spec".into()),
                pool: Some("pool-1".into()),
                storage: Some("100".into()),
                devices: Some("vendor_id=10de,product_name=A100".into()),
                arch: Some("arm64/generic".into()),
                system_id: None,
                agent_name: "capmaas:u-1".into(),
                comment: "capmaas ns/m-0".into(),
            }
        );
    }

    #[test]
    fn zone_precedence() {
        let mut req = full();
        let table = [
            (
                Some("az-machine"),
                Some("az-spec"),
                Some("az-env"),
                Some("az-machine"),
            ),
            (None, Some("az-spec"), Some("az-env"), Some("az-spec")),
            (Some(" "), Some("az-spec"), None, Some("az-spec")),
            (None, None, Some("az-env"), Some("az-env")),
            (None, Some(""), None, None),
            (None, None, None, None),
        ];
        for (machine, spec, env, want) in table {
            req.failure_domain = spec.map(str::to_string);
            let r = allocate_request(&req, machine, env, "u", "n", "m");
            assert_eq!(r.zone.as_deref(), want, "{machine:?} {spec:?} {env:?}");
        }
    }

    #[test]
    fn empty_requirements_send_only_identity() {
        let r = allocate_request(
            &MachineRequirements {
                min_cpu: Some(0),
                min_memory_mib: Some(0),
                tags: vec![" ".into()],
                ..Default::default()
            },
            None,
            None,
            "u-2",
            "ns",
            "m",
        );
        assert_eq!(r.cpu_count, None);
        assert_eq!(r.mem, None);
        assert!(r.tags.is_empty());
        assert_eq!((r.pool, r.storage, r.devices), (None, None, None));
        assert_eq!(r.agent_name, "capmaas:u-2");
    }

    #[test]
    fn gpu_devices_constraint() {
        let table = [
            (
                Some("nvidia"),
                Some("A100"),
                "vendor_id=10de,product_name=A100",
            ),
            (Some("NVIDIA"), None, "vendor_id=10de"),
            (
                Some("amd"),
                Some("MI300X"),
                "vendor_id=1002,product_name=MI300X",
            ),
            (Some("0x10DE"), None, "vendor_id=10de"),
            (None, Some("L40S"), "product_name=L40S"),
            (None, None, "vendor_id=10de"),
        ];
        for (vendor, product, want) in table {
            let gpu = GpuRequest {
                vendor: vendor.map(str::to_string),
                product: product.map(str::to_string),
                min_count: None,
            };
            assert_eq!(
                devices_constraint(&gpu).as_deref(),
                Some(want),
                "{vendor:?} {product:?}"
            );
        }
        let none = GpuRequest {
            min_count: Some(0),
            ..Default::default()
        };
        assert_eq!(devices_constraint(&none), None);
    }

    #[test]
    fn repeated_tags_are_sent_once() {
        let req = MachineRequirements {
            tags: vec!["a".into(), "b".into(), "a".into()],
            ..Default::default()
        };
        assert_eq!(
            allocate_request(&req, None, None, "u", "n", "m").tags,
            ["a", "b"]
        );
    }
}
