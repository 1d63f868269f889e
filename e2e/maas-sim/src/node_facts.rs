//! What the kubelet of a deployed machine registers: the machine's hardware in Kubernetes'
//! terms (architecture, cpu, memory, the GPUs a device plugin advertises) and what the bootstrap
//! data asks for (kubelet version, node labels, taints). Pure: computed when the machine reaches
//! Deployed, applied by the boot hook.

use std::collections::BTreeMap;

use crate::bootstrap_data::kubeadm_config;
use crate::inventory::GpuSpec;
use crate::kubeadm_config::{Registration, Taint, registration};
use crate::lifecycle::kubelet_version;
use crate::world::Machine;

/// What a Node's kubelet reports about its machine and registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Architecture as Kubernetes spells it (`amd64`, `arm64`, `ppc64le`, ...).
    pub architecture: String,
    /// CPU cores.
    pub cpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Device-plugin resources and how many of each (`nvidia.com/gpu: 8`); empty without GPUs.
    pub gpus: BTreeMap<String, u32>,
    /// The kubelet version the bootstrap data installs, when it says (else the hook's default).
    pub kubelet_version: Option<String>,
    /// Labels the bootstrap data registers the Node with (`node-labels`).
    pub labels: BTreeMap<String, String>,
    /// `node-labels` keys a real kubelet refuses, left off the Node.
    pub refused_labels: Vec<String>,
    /// Taints the bootstrap data registers the Node with.
    pub taints: Vec<Taint>,
}

impl NodeFacts {
    /// The facts of a machine from its inventory and the user data of its deploy. User data
    /// without a kubeadm configuration (Ignition, junk, none) adds no labels or taints.
    pub fn of(m: &Machine) -> Self {
        let config = m
            .user_data
            .as_deref()
            .and_then(|data| kubeadm_config(data, &m.hostname));
        let Registration {
            labels,
            refused_labels,
            taints,
        } = config.as_deref().map(registration).unwrap_or_default();
        let version = m
            .user_data
            .as_deref()
            .and_then(kubelet_version)
            .or_else(|| config.as_deref().and_then(kubelet_version));
        Self {
            architecture: kubernetes_arch(&m.architecture),
            cpu: m.cpu_count,
            memory_mib: m.memory,
            gpus: gpu_resources(&m.gpus),
            kubelet_version: version,
            labels,
            refused_labels,
            taints,
        }
    }
}

/// A MAAS architecture (`amd64/generic`, `ppc64el/generic`) in Kubernetes' (Go's) spelling.
/// Unknown ones keep MAAS's name; an empty one is `amd64`, MAAS's default.
pub fn kubernetes_arch(maas: &str) -> String {
    let base = maas.split('/').next().unwrap_or_default().trim();
    match base {
        "" => "amd64",
        "ppc64el" => "ppc64le",
        "i386" => "386",
        "armhf" => "arm",
        other => other,
    }
    .to_string()
}

/// The extended resource a vendor's device plugin advertises for its GPUs, by PCI vendor id:
/// NVIDIA, AMD and Intel. Other vendors have none.
pub fn gpu_resource(vendor_id: &str) -> Option<&'static str> {
    let id = vendor_id.trim().to_ascii_lowercase();
    match id.strip_prefix("0x").unwrap_or(&id) {
        "10de" => Some("nvidia.com/gpu"),
        "1002" => Some("amd.com/gpu"),
        "8086" => Some("gpu.intel.com/i915"),
        _ => None,
    }
}

/// How many GPUs each device plugin advertises.
pub fn gpu_resources(gpus: &[GpuSpec]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for resource in gpus.iter().filter_map(|g| gpu_resource(&g.vendor_id)) {
        *out.entry(resource.to_string()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::world::World;

    fn gpu(vendor_id: &str) -> GpuSpec {
        GpuSpec {
            vendor_id: vendor_id.into(),
            vendor_name: String::new(),
            product_id: "0000".into(),
            product_name: "GPU".into(),
            pci_address: None,
            numa_node: 0,
        }
    }

    #[test]
    fn architectures_in_kubernetes_spelling() {
        for (maas, kubernetes) in [
            ("amd64/generic", "amd64"),
            ("arm64/generic", "arm64"),
            ("arm64/xgene-uboot", "arm64"),
            ("ppc64el/generic", "ppc64le"),
            ("s390x/generic", "s390x"),
            ("s390x", "s390x"),
            ("i386/generic", "386"),
            ("armhf/generic", "arm"),
            ("riscv64/generic", "riscv64"),
            ("", "amd64"),
        ] {
            assert_eq!(kubernetes_arch(maas), kubernetes, "{maas}");
        }
    }

    #[test]
    fn gpus_by_vendor() {
        assert_eq!(gpu_resource("10de"), Some("nvidia.com/gpu"));
        assert_eq!(gpu_resource("0x10DE"), Some("nvidia.com/gpu"));
        assert_eq!(gpu_resource("1002"), Some("amd.com/gpu"));
        assert_eq!(gpu_resource("8086"), Some("gpu.intel.com/i915"));
        assert_eq!(
            gpu_resource("1a03"),
            None,
            "ASPEED's BMC display has no plugin"
        );
        let mixed = [
            gpu("10de"),
            gpu("10de"),
            gpu("1002"),
            gpu("8086"),
            gpu("1a03"),
        ];
        assert_eq!(
            gpu_resources(&mixed),
            BTreeMap::from([
                ("amd.com/gpu".into(), 1),
                ("gpu.intel.com/i915".into(), 1),
                ("nvidia.com/gpu".into(), 2),
            ])
        );
        assert!(gpu_resources(&[]).is_empty());
    }

    fn machine(gpus: bool) -> Machine {
        let world = World::from_inventory(&Inventory::generate(1, 1)).unwrap();
        world
            .machines
            .into_values()
            .find(|m| m.gpus.is_empty() != gpus)
            .unwrap()
    }

    #[test]
    fn a_gpu_machine_with_kubeadm_join_data() {
        let mut m = machine(true);
        m.user_data = Some(
            "## template: jinja\n#cloud-config\nwrite_files:\n-   path: /run/kubeadm/kubeadm-join-config.yaml\n    \
             content: |\n      kind: JoinConfiguration\n      nodeRegistration:\n        kubeletExtraArgs:\n        \
             - name: node-labels\n          value: nvidia.com/gpu.present=true\n        taints:\n        \
             - key: nvidia.com/gpu\n          effect: NoSchedule\nruncmd:\n  - capmaas-node-prep v1.34.1 '1.7.*'\n"
                .into(),
        );
        let facts = NodeFacts::of(&m);
        assert_eq!((facts.cpu, facts.memory_mib), (64, 512 * 1024));
        assert_eq!(facts.architecture, "amd64");
        assert_eq!(facts.gpus, BTreeMap::from([("nvidia.com/gpu".into(), 4)]));
        assert_eq!(facts.kubelet_version.as_deref(), Some("v1.34.1"));
        assert_eq!(facts.labels["nvidia.com/gpu.present"], "true");
        assert_eq!(facts.taints.len(), 1);
    }

    #[test]
    fn a_plain_machine_without_bootstrap_data() {
        let mut m = machine(false);
        m.architecture = "arm64/generic".into();
        let facts = NodeFacts::of(&m);
        assert_eq!(facts.architecture, "arm64");
        assert!(facts.gpus.is_empty() && facts.labels.is_empty() && facts.taints.is_empty());
        assert_eq!(facts.kubelet_version, None);
        m.user_data = Some("{\"ignition\":{\"version\":\"3.2.0\"}}".into());
        assert_eq!(NodeFacts::of(&m).labels, BTreeMap::new());
    }

    #[test]
    fn the_version_of_an_encoded_init_configuration() {
        use base64::Engine;
        let init = "kind: ClusterConfiguration\nkubernetesVersion: v1.33.4\n---\nkind: InitConfiguration\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(init);
        let mut m = machine(false);
        m.user_data = Some(format!(
            "#cloud-config\nwrite_files:\n- path: /run/kubeadm/kubeadm.yaml\n  encoding: b64\n  content: {encoded}\n"
        ));
        let facts = NodeFacts::of(&m);
        assert_eq!(facts.kubelet_version.as_deref(), Some("v1.33.4"));
        assert_eq!(
            facts.taints[0].key,
            crate::kubeadm_config::CONTROL_PLANE_TAINT
        );
    }
}
