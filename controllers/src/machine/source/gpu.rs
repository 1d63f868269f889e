//! GPU counts. MAAS's allocate `devices` constraint only asks that one matching device exists, so
//! a request for several GPUs is checked after allocation with the node devices API. A machine
//! with too few is set aside, still allocated to us so MAAS cannot hand it out again, and the
//! allocation is retried; once a machine with enough GPUs is found (or none is left, or the
//! budget of rejections is spent) the set-aside machines are released.

use crate::domain::allocation::{GpuRequest, MachineRequirements, pci_vendor_id};

/// Annotation listing the system ids set aside for too few GPUs, comma-separated: durable across
/// restarts (the machines stay allocated until released from this list) and never pruned.
pub const GPU_REJECTED: &str = "infrastructure.cluster.x-k8s.io/maas-gpu-rejected";

/// How many machines one MaasMachine may set aside before giving up.
pub const MAX_GPU_REJECTIONS: usize = 3;

/// What a pass knows about GPU counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuFacts {
    /// Machines set aside (the annotation), oldest first.
    pub rejected: Vec<String>,
    /// GPUs the recorded machine carries, when counted in this pass.
    pub count: Option<u32>,
    /// No further machine will be tried in this pass (MAAS has none left, or the budget is
    /// spent): release the set-aside machines and fail.
    pub exhausted: bool,
    /// The first set-aside machine as read in this pass: its id and whether it is still ours
    /// and held (so releasing it cannot touch someone else's machine).
    pub first_rejected_held: Option<(String, bool)>,
}

impl GpuFacts {
    /// Facts from the annotation value.
    pub fn from_annotation(value: Option<&str>) -> Self {
        Self {
            rejected: parse_rejected(value),
            ..Default::default()
        }
    }
}

/// The system ids in the annotation value.
pub fn parse_rejected(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The annotation value for a list; `None` removes the annotation.
pub fn render_rejected(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| ids.join(","))
}

/// The GPU count to check after allocation: only for more than one GPU (for one, the allocate
/// constraint already guarantees it).
pub fn count_to_check(req: &MachineRequirements) -> Option<u32> {
    req.gpu
        .as_ref()
        .and_then(|g| g.min_count)
        .filter(|n| *n > 1)
}

/// How many of a machine's GPUs (vendor id, product name) satisfy the request: the vendor and
/// the product (a substring, as MAAS matches it) when given.
pub fn matching_gpus<'a>(
    gpu: Option<&GpuRequest>,
    devices: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u32 {
    let vendor = gpu
        .and_then(|g| g.vendor.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(pci_vendor_id);
    let product = gpu
        .and_then(|g| g.product.as_deref())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_lowercase);
    let n = devices
        .into_iter()
        .filter(|(v, p)| {
            vendor
                .as_deref()
                .is_none_or(|want| v.eq_ignore_ascii_case(want))
                && product
                    .as_deref()
                    .is_none_or(|want| p.to_ascii_lowercase().contains(want))
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_round_trip() {
        let ids = parse_rejected(Some(" a1, b2,,c3 "));
        assert_eq!(ids, ["a1", "b2", "c3"]);
        assert_eq!(render_rejected(&ids).as_deref(), Some("a1,b2,c3"));
        assert_eq!(render_rejected(&[]), None);
        assert!(parse_rejected(None).is_empty());
    }

    #[test]
    fn only_several_gpus_need_a_count() {
        let mut req = MachineRequirements::default();
        assert_eq!(count_to_check(&req), None);
        req.gpu = Some(GpuRequest {
            min_count: Some(1),
            ..Default::default()
        });
        assert_eq!(count_to_check(&req), None);
        req.gpu = Some(GpuRequest {
            min_count: Some(4),
            ..Default::default()
        });
        assert_eq!(count_to_check(&req), Some(4));
    }

    #[test]
    fn gpus_are_counted_by_vendor_and_product() {
        let devices = [
            ("10de", "GA100 [A100 SXM4 40GB]"),
            ("10de", "GA100 [A100 SXM4 40GB]"),
            ("10de", "TU104GL [Tesla T4]"),
            ("1002", "Instinct MI210"),
        ];
        let req = |vendor: Option<&str>, product: Option<&str>| GpuRequest {
            vendor: vendor.map(str::to_string),
            product: product.map(str::to_string),
            min_count: Some(2),
        };
        assert_eq!(matching_gpus(None, devices), 4);
        assert_eq!(matching_gpus(Some(&req(Some("nvidia"), None)), devices), 3);
        assert_eq!(
            matching_gpus(Some(&req(Some("nvidia"), Some("a100"))), devices),
            2
        );
        assert_eq!(matching_gpus(Some(&req(Some("amd"), None)), devices), 1);
        assert_eq!(matching_gpus(Some(&req(Some("intel"), None)), devices), 0);
    }
}
