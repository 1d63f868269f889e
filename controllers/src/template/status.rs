//! What a MaasMachineTemplate advertises in its status: the capacity and node facts of one
//! machine of the pool, so cluster-autoscaler and HyperShift can scale the pool up from zero
//! without a machine to look at.

use std::collections::BTreeMap;

use capmaas_api::condition::{ConditionSeverity, ConditionUpdate};
use capmaas_api::condition_names::{reasons, types};
use capmaas_api::maas_machine_template::{
    CAPACITY_CPU, CAPACITY_EPHEMERAL_STORAGE, CAPACITY_MEMORY, CAPACITY_NVIDIA_GPU,
};
use capmaas_api::{MaasMachineSpec, MaasMachineTemplateStatus, NodeInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::domain::allocation::pci_vendor_id;
use crate::domain::inventory::{
    InventoryMachine, Wanted, kubernetes_arch, smallest, waiting_message,
};
use crate::machine::facts::requirements;

/// Architecture assumed when the image does not name one: MAAS deploys amd64 unless told.
pub const DEFAULT_ARCHITECTURE: &str = "amd64";

/// Operating system of every Node MAAS deploys for us.
pub const OPERATING_SYSTEM: &str = "linux";

/// Architectures recognised as a path segment of an image name (`amd64/custom-image`).
const ARCHITECTURES: &[&str] = &["amd64", "arm64", "ppc64el", "s390x", "i386", "armhf"];

/// What the template controller learnt of MAAS's free machines.
#[derive(Clone, Copy, Debug)]
pub enum InventoryView<'a> {
    /// The Ready machines of the template's MAAS (GPUs read where the template looks at them).
    Read(&'a [InventoryMachine]),
    /// MAAS could not be asked, and why (condition reason, message).
    Unavailable(&'a str, &'a str),
}

/// The template's status and its `MachinesAvailable` condition: the capacity of the smallest
/// Ready machine the constraints accept, else the spec's minimums. `zone` is the zone an
/// allocation would name (the spec's, else the provider-wide default).
pub fn template_status(
    spec: &MaasMachineSpec,
    view: InventoryView<'_>,
    zone: Option<&str>,
) -> (MaasMachineTemplateStatus, ConditionUpdate) {
    let req = requirements(spec);
    let wanted = Wanted { req: &req, zone };
    let machines = match view {
        InventoryView::Read(machines) => machines,
        InventoryView::Unavailable(reason, message) => {
            let condition = ConditionUpdate {
                type_: types::MACHINES_AVAILABLE.to_string(),
                status: capmaas_api::condition::ConditionStatus::Unknown,
                reason: reason.to_string(),
                message: format!("{message}; capacity shows the spec's minimums"),
                severity: None,
            };
            return (spec_minimums(spec), condition);
        }
    };
    let Some(small) = smallest(&wanted, machines) else {
        let mut status = spec_minimums(spec);
        status.available_machines = Some(0);
        status.available_gpus = Some(0);
        let message = format!(
            "{}; capacity shows the spec's minimums",
            waiting_message(&wanted, machines)
        );
        let condition = ConditionUpdate::false_(
            types::MACHINES_AVAILABLE,
            reasons::NO_MACHINE_MATCHES,
            ConditionSeverity::Warning,
            message,
        );
        return (status, condition);
    };
    let accepted: Vec<&InventoryMachine> = machines.iter().filter(|m| wanted.accepts(m)).collect();
    let gpu = req.gpu.as_ref();
    let gpus: u32 = accepted.iter().map(|m| m.gpu_count(gpu)).sum();
    let mut status = machine_capacity(small, gpu);
    status.available_machines = Some(i32::try_from(accepted.len()).unwrap_or(i32::MAX));
    status.available_gpus = Some(i32::try_from(gpus).unwrap_or(i32::MAX));
    let mut condition = ConditionUpdate::true_(types::MACHINES_AVAILABLE, reasons::MACHINES_MATCH);
    let matches = match accepted.len() {
        1 => "1 Ready machine matches".to_string(),
        n => format!("{n} Ready machines match"),
    };
    condition.message = format!(
        "{matches} ({gpus} GPUs); capacity is {}'s: {} CPUs, {} MiB, {} GPUs",
        small.hostname,
        small.cpu_count,
        small.memory_mib,
        small.gpu_count(gpu)
    );
    (status, condition)
}

/// The capacity and node facts of one MAAS machine.
fn machine_capacity(
    m: &InventoryMachine,
    gpu: Option<&crate::domain::allocation::GpuRequest>,
) -> MaasMachineTemplateStatus {
    let mut capacity = BTreeMap::new();
    capacity.insert(CAPACITY_CPU.to_string(), Quantity(m.cpu_count.to_string()));
    capacity.insert(
        CAPACITY_MEMORY.to_string(),
        Quantity(format!("{}Mi", m.memory_mib)),
    );
    if m.storage_gb > 0 {
        capacity.insert(
            CAPACITY_EPHEMERAL_STORAGE.to_string(),
            Quantity(format!("{}G", m.storage_gb)),
        );
    }
    let count = m.gpu_count(gpu);
    let vendor = gpu
        .and_then(|g| g.vendor.clone())
        .or_else(|| m.gpus.iter().flatten().next().map(|d| d.vendor_id.clone()));
    if let (true, Some(key)) = (count > 0, gpu_resource(vendor.as_deref())) {
        capacity.insert(key.to_string(), Quantity(count.to_string()));
    }
    MaasMachineTemplateStatus {
        capacity,
        node_info: Some(NodeInfo {
            architecture: Some(kubernetes_arch(&m.architecture)),
            operating_system: Some(OPERATING_SYSTEM.to_string()),
        }),
        ..Default::default()
    }
}

/// The status a template with this machine spec promises when MAAS cannot tell more: its
/// minimums. Minimums of zero or less are left out (the pool promises nothing there), as are
/// GPUs of a vendor with no well-known device-plugin resource name.
pub fn spec_minimums(spec: &MaasMachineSpec) -> MaasMachineTemplateStatus {
    let mut capacity = BTreeMap::new();
    if let Some(cpu) = spec.min_cpu.filter(|c| *c > 0) {
        capacity.insert(CAPACITY_CPU.to_string(), Quantity(cpu.to_string()));
    }
    if let Some(mem) = spec.min_memory.filter(|m| *m > 0) {
        capacity.insert(CAPACITY_MEMORY.to_string(), Quantity(format!("{mem}Mi")));
    }
    if let Some(disk) = spec.min_disk_size.filter(|d| *d > 0) {
        capacity.insert(
            CAPACITY_EPHEMERAL_STORAGE.to_string(),
            Quantity(format!("{disk}G")),
        );
    }
    if let Some(gpu) = &spec.gpu {
        let count = gpu.min_count.unwrap_or(1);
        if let (true, Some(key)) = (count > 0, gpu_resource(gpu.vendor.as_deref())) {
            capacity.insert(key.to_string(), Quantity(count.to_string()));
        }
    }
    let arch = match spec.architecture.as_deref() {
        Some(a) if !a.trim().is_empty() => kubernetes_arch(a),
        _ => kubernetes_arch(architecture(Some(spec.image.as_str()))),
    };
    MaasMachineTemplateStatus {
        capacity,
        node_info: Some(NodeInfo {
            architecture: Some(arch),
            operating_system: Some(OPERATING_SYSTEM.to_string()),
        }),
        ..Default::default()
    }
}

/// The extended resource name the vendor's device plugin advertises; no vendor means NVIDIA,
/// as in the allocate constraint.
pub fn gpu_resource(vendor: Option<&str>) -> Option<&'static str> {
    let vendor = vendor.map(str::trim).filter(|v| !v.is_empty());
    match vendor.map(pci_vendor_id).as_deref() {
        None | Some("10de") => Some(CAPACITY_NVIDIA_GPU),
        Some("1002") => Some("amd.com/gpu"),
        Some("8086") => Some("gpu.intel.com/i915"),
        Some(_) => None,
    }
}

/// The architecture an image names as one of its path segments, else the default.
pub fn architecture(image: Option<&str>) -> &'static str {
    image
        .into_iter()
        .flat_map(|i| i.split('/'))
        .find_map(|seg| {
            ARCHITECTURES
                .iter()
                .find(|a| seg.eq_ignore_ascii_case(a))
                .copied()
        })
        .unwrap_or(DEFAULT_ARCHITECTURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capmaas_api::GpuRequirement;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn cpu_and_memory_become_capacity() {
        let spec = MaasMachineSpec {
            min_cpu: Some(8),
            min_memory: Some(4096),
            image: "ubuntu/jammy".into(),
            ..Default::default()
        };
        let st = spec_minimums(&spec);
        assert_eq!(st.capacity.len(), 2);
        assert_eq!(st.capacity.get("cpu"), Some(&q("8")));
        assert_eq!(st.capacity.get("memory"), Some(&q("4096Mi")));
        assert_eq!(
            st.node_info,
            Some(NodeInfo {
                architecture: Some("amd64".into()),
                operating_system: Some("linux".into())
            })
        );
    }

    #[test]
    fn gpus_appear_only_when_asked_for() {
        let mut spec = MaasMachineSpec {
            min_cpu: Some(16),
            min_memory: Some(65536),
            gpu: Some(GpuRequirement {
                vendor: Some("nvidia".into()),
                product: None,
                min_count: Some(4),
            }),
            ..Default::default()
        };
        assert_eq!(
            spec_minimums(&spec).capacity.get("nvidia.com/gpu"),
            Some(&q("4"))
        );
        spec.gpu = Some(GpuRequirement::default());
        assert_eq!(
            spec_minimums(&spec).capacity.get("nvidia.com/gpu"),
            Some(&q("1")),
            "a GPU without a count means one"
        );
        spec.gpu = Some(GpuRequirement {
            vendor: Some("0x1002".into()),
            product: None,
            min_count: Some(2),
        });
        let st = spec_minimums(&spec);
        assert_eq!(st.capacity.get("amd.com/gpu"), Some(&q("2")));
        assert!(!st.capacity.contains_key("nvidia.com/gpu"));
        spec.gpu = Some(GpuRequirement {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(0),
        });
        assert_eq!(spec_minimums(&spec).capacity.len(), 2);
        spec.gpu = None;
        assert!(!spec_minimums(&spec).capacity.contains_key("nvidia.com/gpu"));
    }

    #[test]
    fn zero_and_negative_minimums_promise_nothing() {
        let spec = MaasMachineSpec {
            min_cpu: Some(0),
            min_memory: Some(-5),
            ..Default::default()
        };
        assert!(spec_minimums(&spec).capacity.is_empty());
    }

    #[test]
    fn architecture_from_the_image_path() {
        assert_eq!(architecture(Some("ubuntu/jammy")), "amd64");
        assert_eq!(architecture(Some("arm64/custom-rhcos")), "arm64");
        assert_eq!(architecture(Some("custom/ARM64/x")), "arm64");
        assert_eq!(architecture(Some("jammy-arm64-server")), "amd64");
        assert_eq!(architecture(None), "amd64");
    }

    #[test]
    fn unknown_gpu_vendors_have_no_resource_name() {
        assert_eq!(gpu_resource(Some("abcd")), None);
        assert_eq!(gpu_resource(Some(" ")), Some("nvidia.com/gpu"));
        assert_eq!(gpu_resource(Some("intel")), Some("gpu.intel.com/i915"));
    }

    fn inventory_machine(name: &str, cpu: u32, gpus: usize) -> InventoryMachine {
        InventoryMachine {
            system_id: format!("id-{name}"),
            hostname: name.into(),
            cpu_count: cpu,
            memory_mib: 262_144,
            storage_gb: 960,
            architecture: "arm64/generic".into(),
            tags: vec!["gpu".into()],
            gpus: Some(
                (0..gpus)
                    .map(|_| crate::domain::inventory::InventoryGpu {
                        vendor_id: "10de".into(),
                        product_name: "L40S".into(),
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn capacity_is_the_smallest_matching_machine_in_maas() {
        let spec = MaasMachineSpec {
            min_cpu: Some(8),
            gpu: Some(GpuRequirement {
                vendor: Some("nvidia".into()),
                product: None,
                min_count: Some(2),
            }),
            ..Default::default()
        };
        let machines = [
            inventory_machine("one-gpu", 16, 1),
            inventory_machine("big", 96, 8),
            inventory_machine("small", 32, 4),
        ];
        let (st, condition) = template_status(&spec, InventoryView::Read(&machines), None);
        assert_eq!(st.capacity.get("cpu"), Some(&q("32")));
        assert_eq!(st.capacity.get("memory"), Some(&q("262144Mi")));
        assert_eq!(st.capacity.get("ephemeral-storage"), Some(&q("960G")));
        assert_eq!(st.capacity.get("nvidia.com/gpu"), Some(&q("4")));
        assert_eq!(
            st.node_info.and_then(|n| n.architecture).as_deref(),
            Some("arm64"),
            "Kubernetes spelling of MAAS's arm64/generic"
        );
        assert_eq!(
            (st.available_machines, st.available_gpus),
            (Some(2), Some(12))
        );
        assert_eq!(
            condition.status,
            capmaas_api::condition::ConditionStatus::True
        );
        assert_eq!(condition.reason, "MachinesMatch");
    }

    #[test]
    fn tags_alone_still_report_the_gpus_maas_has() {
        let spec = MaasMachineSpec {
            tags: Some(vec!["gpu".into()]),
            ..Default::default()
        };
        let machines = [inventory_machine("a", 64, 8), inventory_machine("b", 64, 4)];
        let (st, _) = template_status(&spec, InventoryView::Read(&machines), None);
        assert_eq!(st.capacity.get("nvidia.com/gpu"), Some(&q("4")));
        assert_eq!(st.available_gpus, Some(12));
    }

    #[test]
    fn nothing_matching_falls_back_to_the_minimums_and_says_why() {
        let spec = MaasMachineSpec {
            min_cpu: Some(128),
            min_memory: Some(4096),
            ..Default::default()
        };
        let machines = [inventory_machine("a", 64, 0)];
        let (st, condition) = template_status(&spec, InventoryView::Read(&machines), None);
        assert_eq!(st.capacity.get("cpu"), Some(&q("128")));
        assert_eq!(
            (st.available_machines, st.available_gpus),
            (Some(0), Some(0))
        );
        assert_eq!(condition.reason, "NoMachineMatches");
        assert!(
            condition.message.contains("cpu 0") && condition.message.contains("memory 1"),
            "{}",
            condition.message
        );
        let (st, condition) = template_status(
            &spec,
            InventoryView::Unavailable("MaasUnavailable", "down"),
            None,
        );
        assert_eq!(st.capacity.get("cpu"), Some(&q("128")));
        assert_eq!(st.available_machines, None, "unknown, not zero");
        assert_eq!(
            condition.status,
            capmaas_api::condition::ConditionStatus::Unknown
        );
    }

    #[test]
    fn the_spec_architecture_wins_over_the_image_path() {
        let spec = MaasMachineSpec {
            image: "custom/amd64/x".into(),
            architecture: Some("ppc64el/generic".into()),
            ..Default::default()
        };
        assert_eq!(
            spec_minimums(&spec)
                .node_info
                .and_then(|n| n.architecture)
                .as_deref(),
            Some("ppc64le")
        );
    }
}
