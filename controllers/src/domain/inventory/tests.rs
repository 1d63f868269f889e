use super::*;
use crate::domain::allocation::{GpuRequest, MachineRequirements};

fn gpu(vendor: &str, product: &str) -> InventoryGpu {
    InventoryGpu {
        vendor_id: vendor.into(),
        product_name: product.into(),
    }
}

fn machine(name: &str, cpu: u32, mem_gib: u64, gpus: usize) -> InventoryMachine {
    InventoryMachine {
        system_id: format!("id-{name}"),
        hostname: name.into(),
        cpu_count: cpu,
        memory_mib: mem_gib * 1024,
        storage_gb: 480,
        architecture: "amd64/generic".into(),
        zone: Some("az1".into()),
        pool: Some(if gpus > 0 { "gpu" } else { "general" }.into()),
        tags: if gpus > 0 {
            vec!["gpu".into(), "nvidia".into()]
        } else {
            vec!["virtual".into()]
        },
        gpus: Some(
            (0..gpus)
                .map(|_| gpu("10de", "GA100 [A100 PCIe 80GB]"))
                .collect(),
        ),
    }
}

fn pool() -> Vec<InventoryMachine> {
    vec![
        machine("cpu-1", 8, 16, 0),
        machine("cpu-2", 16, 32, 0),
        machine("gpu-1", 64, 512, 1),
        machine("gpu-4", 64, 512, 4),
        machine("gpu-8", 96, 1024, 8),
    ]
}

fn gpus(min_count: u32) -> MachineRequirements {
    MachineRequirements {
        gpu: Some(GpuRequest {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(min_count),
        }),
        ..Default::default()
    }
}

#[test]
fn a_gpu_count_selects_only_machines_with_that_many() {
    let req = gpus(2);
    let wanted = Wanted {
        req: &req,
        zone: None,
    };
    let machines = pool();
    let accepted: Vec<&str> = machines
        .iter()
        .filter(|m| wanted.accepts(m))
        .map(|m| m.hostname.as_str())
        .collect();
    assert_eq!(accepted, ["gpu-4", "gpu-8"]);
    let small = smallest(&wanted, &machines).map(|m| m.hostname.as_str());
    assert_eq!(small, Some("gpu-4"), "the fewest GPUs first");
}

#[test]
fn unknown_gpus_meet_no_gpu_constraint() {
    let mut m = machine("gpu-4", 64, 512, 4);
    m.gpus = None;
    let req = gpus(1);
    let wanted = Wanted {
        req: &req,
        zone: None,
    };
    assert!(!wanted.accepts(&m), "GPUs not read are not assumed");
    let any = MachineRequirements::default();
    let wanted = Wanted {
        req: &any,
        zone: None,
    };
    assert!(wanted.accepts(&m));
}

#[test]
fn products_match_as_substrings_and_vendors_by_id() {
    let mut m = machine("h100", 64, 512, 0);
    m.gpus = Some(vec![
        gpu("10de", "GH100 [H100 SXM5 80GB]"),
        gpu("1002", "MI300X"),
    ]);
    let req = |vendor: &str, product: Option<&str>| MachineRequirements {
        gpu: Some(GpuRequest {
            vendor: Some(vendor.into()),
            product: product.map(str::to_string),
            min_count: Some(1),
        }),
        ..Default::default()
    };
    let accepts = |r: &MachineRequirements| Wanted { req: r, zone: None }.accepts(&m);
    assert!(accepts(&req("nvidia", Some("h100"))));
    assert!(!accepts(&req("nvidia", Some("a100"))));
    assert!(accepts(&req("amd", None)));
    assert!(!accepts(&req("intel", None)));
}

#[test]
fn each_constraint_is_counted_on_its_own() {
    let req = MachineRequirements {
        min_cpu: Some(32),
        min_memory_mib: Some(2048 * 1024),
        tags: vec!["gpu".into()],
        resource_pool: Some("gpu".into()),
        gpu: gpus(4).gpu,
        ..Default::default()
    };
    let wanted = Wanted {
        req: &req,
        zone: Some("az1"),
    };
    let counts = per_constraint(&wanted, &pool());
    assert_eq!(
        counts,
        vec![
            (Constraint::Tags, 3),
            (Constraint::Pool, 3),
            (Constraint::Zone, 5),
            (Constraint::Cpu, 3),
            (Constraint::Memory, 0),
            (Constraint::Gpus, 2),
        ],
        "constraints that ask nothing (disk, architecture) are not listed"
    );
    assert_eq!(
        waiting_message(&wanted, &pool()),
        "No available machine matches constraints: of 5 Ready machines, 0 meet all; each on \
         its own: tags 3, pool 3, zone 5, cpu 3, memory 0, GPUs 2; no machine meets memory"
    );
}

#[test]
fn an_empty_maas_says_so() {
    let req = MachineRequirements::default();
    let wanted = Wanted {
        req: &req,
        zone: None,
    };
    assert_eq!(
        waiting_message(&wanted, &[]),
        "No available machine matches constraints: of 0 Ready machines, 0 meet all"
    );
}

#[test]
fn tags_are_all_required_and_excluded_tags_refuse() {
    let req = MachineRequirements {
        tags: vec!["gpu".into(), "NVIDIA".into()],
        not_tags: vec!["virtual".into()],
        ..Default::default()
    };
    let wanted = Wanted {
        req: &req,
        zone: None,
    };
    let machines = pool();
    let tagged: Vec<&str> = machines
        .iter()
        .filter(|m| wanted.meets(Constraint::Tags, m))
        .map(|m| m.hostname.as_str())
        .collect();
    assert_eq!(tagged, ["gpu-1", "gpu-4", "gpu-8"]);
}

#[test]
fn architectures_match_with_or_without_the_subarchitecture() {
    let mut m = machine("arm", 8, 16, 0);
    m.architecture = "arm64/generic".into();
    for (wanted, ok) in [
        ("arm64", true),
        ("arm64/generic", true),
        ("amd64", false),
        ("arm", false),
    ] {
        let req = MachineRequirements {
            architecture: Some(wanted.into()),
            ..Default::default()
        };
        let w = Wanted {
            req: &req,
            zone: None,
        };
        assert_eq!(w.meets(Constraint::Architecture, &m), ok, "{wanted}");
    }
}

#[test]
fn kubernetes_spells_architectures_as_go_does() {
    for (maas, k8s) in [
        ("amd64/generic", "amd64"),
        ("arm64/generic", "arm64"),
        ("ppc64el/generic", "ppc64le"),
        ("s390x/generic", "s390x"),
        ("i386/generic", "386"),
        ("armhf/generic", "arm"),
        ("", "amd64"),
    ] {
        assert_eq!(kubernetes_arch(maas), k8s, "{maas}");
    }
}
