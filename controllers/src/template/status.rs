//! What a MaasMachineTemplate advertises in its status: the capacity and node facts of one
//! machine of the pool, so cluster-autoscaler and HyperShift can scale the pool up from zero
//! without a machine to look at.

use std::collections::BTreeMap;

use capmaas_api::maas_machine_template::{CAPACITY_CPU, CAPACITY_MEMORY, CAPACITY_NVIDIA_GPU};
use capmaas_api::{MaasMachineSpec, MaasMachineTemplateStatus, NodeInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::domain::allocation::pci_vendor_id;

/// Architecture assumed when the image does not name one: MAAS deploys amd64 unless told.
pub const DEFAULT_ARCHITECTURE: &str = "amd64";

/// Operating system of every Node MAAS deploys for us.
pub const OPERATING_SYSTEM: &str = "linux";

/// Architectures recognised as a path segment of an image name (`amd64/custom-image`).
const ARCHITECTURES: &[&str] = &["amd64", "arm64", "ppc64el", "s390x", "i386", "armhf"];

/// The status a template with this machine spec should carry. Minimums of zero or less are
/// left out (the pool promises nothing there), as are GPUs of a vendor with no well-known
/// device-plugin resource name.
pub fn template_status(spec: &MaasMachineSpec) -> MaasMachineTemplateStatus {
    let mut capacity = BTreeMap::new();
    if let Some(cpu) = spec.min_cpu.filter(|c| *c > 0) {
        capacity.insert(CAPACITY_CPU.to_string(), Quantity(cpu.to_string()));
    }
    if let Some(mem) = spec.min_memory.filter(|m| *m > 0) {
        capacity.insert(CAPACITY_MEMORY.to_string(), Quantity(format!("{mem}Mi")));
    }
    if let Some(gpu) = &spec.gpu {
        let count = gpu.min_count.unwrap_or(1);
        if let (true, Some(key)) = (count > 0, gpu_resource(gpu.vendor.as_deref())) {
            capacity.insert(key.to_string(), Quantity(count.to_string()));
        }
    }
    MaasMachineTemplateStatus {
        capacity,
        node_info: Some(NodeInfo {
            architecture: Some(architecture(Some(spec.image.as_str())).to_string()),
            operating_system: Some(OPERATING_SYSTEM.to_string()),
        }),
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
        let st = template_status(&spec);
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
            template_status(&spec).capacity.get("nvidia.com/gpu"),
            Some(&q("4"))
        );
        spec.gpu = Some(GpuRequirement::default());
        assert_eq!(
            template_status(&spec).capacity.get("nvidia.com/gpu"),
            Some(&q("1")),
            "a GPU without a count means one"
        );
        spec.gpu = Some(GpuRequirement {
            vendor: Some("0x1002".into()),
            product: None,
            min_count: Some(2),
        });
        let st = template_status(&spec);
        assert_eq!(st.capacity.get("amd.com/gpu"), Some(&q("2")));
        assert!(!st.capacity.contains_key("nvidia.com/gpu"));
        spec.gpu = Some(GpuRequirement {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(0),
        });
        assert_eq!(template_status(&spec).capacity.len(), 2);
        spec.gpu = None;
        assert!(
            !template_status(&spec)
                .capacity
                .contains_key("nvidia.com/gpu")
        );
    }

    #[test]
    fn zero_and_negative_minimums_promise_nothing() {
        let spec = MaasMachineSpec {
            min_cpu: Some(0),
            min_memory: Some(-5),
            ..Default::default()
        };
        assert!(template_status(&spec).capacity.is_empty());
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
}
