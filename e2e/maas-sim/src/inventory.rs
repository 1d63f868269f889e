//! The machine inventory: read from a YAML or TOML file, or generated from counts. Only data
//! here; turning it into live state is `world`'s job.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::faults::FaultConfig;

/// NVIDIA's PCI vendor id, the value GPU constraints name.
pub const NVIDIA_VENDOR_ID: &str = "10de";

/// The whole inventory file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Inventory {
    /// Zones besides `default` (which always exists, as in MAAS).
    pub zones: Vec<String>,
    /// Resource pools besides `default`.
    pub pools: Vec<String>,
    /// Tags besides those the machines carry.
    pub tags: Vec<String>,
    /// DNS domains besides `maas` (the default domain).
    pub domains: Vec<String>,
    /// The IPv4 subnet AUTO addresses come from, e.g. `10.20.0.0/16`.
    pub subnet: Option<String>,
    /// Subnets of a second, third ... interface on every machine (`eno2`, ...), e.g. a data
    /// network beside the PXE one.
    pub extra_subnets: Vec<String>,
    /// Boot images (`ubuntu/jammy`, `custom/rhcos`); deploy refuses other `distro_series`.
    pub images: Vec<String>,
    /// The machines.
    pub machines: Vec<MachineSpec>,
    /// Faults active from the start.
    pub faults: Option<FaultConfig>,
}

/// One machine of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Host name, unique.
    pub hostname: String,
    /// Optional fixed system id (six lower-case characters in MAAS); generated when absent.
    #[serde(default)]
    pub system_id: Option<String>,
    /// CPU cores.
    pub cpu: u32,
    /// Memory in MiB.
    pub memory: u64,
    /// Disk sizes in GB, the first being the boot disk.
    #[serde(default = "default_storage", deserialize_with = "one_or_many")]
    pub storage: Vec<u64>,
    /// Availability zone name.
    #[serde(default = "default_name")]
    pub zone: String,
    /// Resource pool name.
    #[serde(default = "default_name")]
    pub pool: String,
    /// Tag names.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Architecture as MAAS writes it.
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// GPUs (PCI devices of hardware type GPU).
    #[serde(default)]
    pub gpus: Vec<GpuSpec>,
}

/// One GPU of a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// PCI vendor id (hex, `10de` for NVIDIA).
    #[serde(default = "default_gpu_vendor_id")]
    pub vendor_id: String,
    /// PCI vendor name.
    #[serde(default = "default_gpu_vendor_name")]
    pub vendor_name: String,
    /// PCI product id (hex).
    pub product_id: String,
    /// PCI product name, e.g. `GA100 [A100 PCIe 80GB]`.
    pub product_name: String,
    /// PCI address; generated when absent.
    #[serde(default)]
    pub pci_address: Option<String>,
    /// NUMA node index.
    #[serde(default)]
    pub numa_node: u32,
}

fn default_storage() -> Vec<u64> {
    vec![500]
}

fn default_name() -> String {
    "default".to_string()
}

fn default_arch() -> String {
    "amd64/generic".to_string()
}

fn default_gpu_vendor_id() -> String {
    NVIDIA_VENDOR_ID.to_string()
}

fn default_gpu_vendor_name() -> String {
    "NVIDIA Corporation".to_string()
}

fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u64),
        Many(Vec<u64>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(n) => vec![n],
        OneOrMany::Many(v) => v,
    })
}

impl Inventory {
    /// Reads an inventory file; the extension picks the format (`.toml`, else YAML).
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            context: format!("reading inventory {}", path.display()),
            source,
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml {
            Self::from_toml(&text)
        } else {
            Self::from_yaml(&text)
        }
        .map_err(|message| SimError::Inventory {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses YAML inventory text.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// Parses TOML inventory text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// A generated inventory: `plain` machines without GPUs and `gpu` machines with NVIDIA GPUs,
    /// spread over two zones and two pools with varied sizes and tags, so that constraints
    /// have something to tell apart.
    pub fn generate(plain: usize, gpu: usize) -> Self {
        const CPUS: [u32; 4] = [4, 8, 16, 32];
        const MEMORY_GIB: [u64; 4] = [8, 16, 32, 64];
        const DISKS_GB: [u64; 3] = [240, 480, 960];
        const ZONES: [&str; 2] = ["az1", "az2"];
        const POOLS: [&str; 2] = ["general", "compute"];
        let mut machines = Vec::with_capacity(plain + gpu);
        for i in 0..plain {
            let mut tags = vec!["virtual".to_string()];
            if i % 3 == 0 {
                tags = vec!["ssd".to_string()];
            }
            if CPUS[i % CPUS.len()] >= 16 {
                tags.push("fast".to_string());
            }
            machines.push(MachineSpec {
                hostname: format!("node-{:03}", i + 1),
                system_id: None,
                cpu: CPUS[i % CPUS.len()],
                memory: MEMORY_GIB[(i / 2) % MEMORY_GIB.len()] * 1024,
                storage: vec![DISKS_GB[i % DISKS_GB.len()]],
                zone: ZONES[i % ZONES.len()].to_string(),
                pool: POOLS[(i / 2) % POOLS.len()].to_string(),
                tags,
                architecture: default_arch(),
                gpus: Vec::new(),
            });
        }
        const GPU_MODELS: [(&str, &str); 3] = [
            ("20b5", "GA100 [A100 PCIe 80GB]"),
            ("2330", "GH100 [H100 SXM5 80GB]"),
            ("26b9", "AD102GL [L40S]"),
        ];
        for i in 0..gpu {
            let (product_id, product_name) = GPU_MODELS[i % GPU_MODELS.len()];
            let count = if i % 2 == 0 { 4 } else { 8 };
            let gpus = (0..count)
                .map(|g| GpuSpec {
                    vendor_id: default_gpu_vendor_id(),
                    vendor_name: default_gpu_vendor_name(),
                    product_id: product_id.to_string(),
                    product_name: product_name.to_string(),
                    pci_address: Some(format!("0000:{:02x}:00.0", 0x17 + g * 0x10)),
                    numa_node: if g < count / 2 { 0 } else { 1 },
                })
                .collect();
            machines.push(MachineSpec {
                hostname: format!("gpu-{:03}", i + 1),
                system_id: None,
                cpu: 64,
                memory: 512 * 1024,
                storage: vec![960, 3840],
                zone: ZONES[i % ZONES.len()].to_string(),
                pool: "gpu".to_string(),
                tags: vec!["gpu".to_string(), "nvidia".to_string(), "fast".to_string()],
                architecture: default_arch(),
                gpus,
            });
        }
        let mut pools: Vec<String> = POOLS.iter().map(|p| p.to_string()).collect();
        if gpu > 0 {
            pools.push("gpu".to_string());
        }
        Self {
            zones: ZONES.iter().map(|z| z.to_string()).collect(),
            pools,
            tags: Vec::new(),
            domains: Vec::new(),
            subnet: None,
            extra_subnets: Vec::new(),
            images: Vec::new(),
            machines,
            faults: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn generated_inventory_is_varied() {
        let inv = Inventory::generate(10, 3);
        assert_eq!(inv.machines.len(), 13);
        let zones: BTreeSet<_> = inv.machines.iter().map(|m| m.zone.as_str()).collect();
        let pools: BTreeSet<_> = inv.machines.iter().map(|m| m.pool.as_str()).collect();
        let cpus: BTreeSet<_> = inv.machines.iter().map(|m| m.cpu).collect();
        let mems: BTreeSet<_> = inv.machines.iter().map(|m| m.memory).collect();
        let disks: BTreeSet<_> = inv.machines.iter().map(|m| m.storage[0]).collect();
        assert!(zones.len() >= 2 && pools.len() >= 2);
        assert!(cpus.len() >= 3 && mems.len() >= 3 && disks.len() >= 3);
        let gpu: Vec<_> = inv.machines.iter().filter(|m| !m.gpus.is_empty()).collect();
        assert_eq!(gpu.len(), 3);
        for m in gpu {
            assert!(m.tags.iter().any(|t| t == "gpu"));
            assert!(m.gpus.iter().all(|g| g.vendor_id == NVIDIA_VENDOR_ID));
        }
        let hostnames: BTreeSet<_> = inv.machines.iter().map(|m| &m.hostname).collect();
        assert_eq!(hostnames.len(), 13);
    }

    #[test]
    fn yaml_and_toml_read_the_same_shape() {
        let yaml = "zones: [z1]\nmachines:\n  - hostname: a\n    cpu: 4\n    memory: 8192\n    storage: 100\n    zone: z1\n    gpus:\n      - product_id: 20b5\n        product_name: GA100\n";
        let toml = "zones = [\"z1\"]\n[[machines]]\nhostname = \"a\"\ncpu = 4\nmemory = 8192\nstorage = 100\nzone = \"z1\"\n[[machines.gpus]]\nproduct_id = \"20b5\"\nproduct_name = \"GA100\"\n";
        let a = Inventory::from_yaml(yaml).unwrap();
        let b = Inventory::from_toml(toml).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.machines[0].storage, vec![100]);
        assert_eq!(a.machines[0].gpus[0].vendor_id, "10de");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Inventory::from_yaml("machines: []\nbogus: 1\n").is_err());
    }
}
