#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shared inventory against the simulator over HTTP: one list of Ready machines serves
//! every caller within its age, GPUs are read once per machine and only where a caller looks,
//! and a template's status is the smallest matching machine MAAS has.

mod common;

use std::time::Duration;

use capmaas_api::{GpuRequirement, MaasMachineSpec};
use capmaas_controllers::domain::allocation::{GpuRequest, MachineRequirements};
use capmaas_controllers::domain::inventory::{Wanted, waiting_message};
use capmaas_controllers::maas::inventory::{EndpointInventory, INVENTORY_MAX_AGE};
use capmaas_controllers::template::status::{InventoryView, template_status};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use maas_client::{AllocateParams, MaasApi};

fn gpu_spec(min_count: i32) -> MaasMachineSpec {
    MaasMachineSpec {
        image: "ubuntu/jammy".into(),
        gpu: Some(GpuRequirement {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(min_count),
        }),
        tags: Some(vec!["gpu".into()]),
        ..Default::default()
    }
}

#[tokio::test]
async fn one_list_serves_every_template_and_gpus_are_read_once() {
    // Four plain machines, three GPU machines (4, 8 and 4 NVIDIA GPUs).
    let (sim, client) = common::sim_and_client(4, 3).await;
    let inventory = EndpointInventory::default();
    sim.reset_requests();
    let tagged_gpu = |m: &capmaas_controllers::domain::inventory::InventoryMachine| {
        m.tags.iter().any(|t| t == "gpu")
    };
    let (machines, reads) = inventory
        .ready_machines(&client, INVENTORY_MAX_AGE, tagged_gpu)
        .await
        .unwrap();
    assert_eq!(machines.len(), 7);
    assert_eq!(
        (reads.lists, reads.devices),
        (1, 3),
        "devices of the tagged machines only"
    );
    let stats = sim.requests();
    assert_eq!(stats.count_op("machines:read"), 1);
    assert_eq!(stats.count_op("node_devices:read"), 3);

    // A second template within the age: no MAAS call at all.
    let (again, reads) = inventory
        .ready_machines(&client, INVENTORY_MAX_AGE, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (reads.lists, reads.devices),
        (0, 4),
        "only the plain machines' devices are new"
    );
    let (_, reads) = inventory
        .ready_machines(&client, INVENTORY_MAX_AGE, |_| true)
        .await
        .unwrap();
    assert_eq!((reads.lists, reads.devices), (0, 0));
    assert_eq!(sim.requests().count_op("machines:read"), 1);

    let (status, condition) = template_status(&gpu_spec(8), InventoryView::Read(&again), None);
    let q = |s: &str| Some(Quantity(s.to_string()));
    assert_eq!(status.capacity.get("nvidia.com/gpu").cloned(), q("8"));
    assert_eq!(status.capacity.get("cpu").cloned(), q("64"));
    assert_eq!(status.capacity.get("memory").cloned(), q("524288Mi"));
    assert_eq!(
        (status.available_machines, status.available_gpus),
        (Some(1), Some(8))
    );
    assert_eq!(condition.reason, "MachinesMatch", "{}", condition.message);
    let (status, _) = template_status(&gpu_spec(2), InventoryView::Read(&again), None);
    assert_eq!(
        status.capacity.get("nvidia.com/gpu").cloned(),
        q("4"),
        "the smallest"
    );
    assert_eq!(
        (status.available_machines, status.available_gpus),
        (Some(3), Some(16))
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_allocated_machine_leaves_the_pool_at_the_next_list() {
    let (sim, client) = common::sim_and_client(0, 2).await;
    let inventory = EndpointInventory::default();
    let (before, _) = inventory
        .ready_machines(&client, INVENTORY_MAX_AGE, |_| true)
        .await
        .unwrap();
    let (status, _) = template_status(&gpu_spec(1), InventoryView::Read(&before), None);
    assert_eq!(status.available_machines, Some(2));
    client
        .allocate(&AllocateParams {
            tags: vec!["gpu".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (after, reads) = inventory
        .ready_machines(&client, Duration::ZERO, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (reads.lists, reads.devices),
        (1, 0),
        "the GPUs are still known"
    );
    let (status, _) = template_status(&gpu_spec(1), InventoryView::Read(&after), None);
    assert_eq!(status.available_machines, Some(1));

    let req = MachineRequirements {
        min_cpu: Some(32),
        gpu: Some(GpuRequest {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(16),
        }),
        ..Default::default()
    };
    let wanted = Wanted {
        req: &req,
        zone: None,
    };
    let message = waiting_message(&wanted, &after);
    assert!(
        message.ends_with("cpu 1, GPUs 0; no machine meets GPUs"),
        "the GPU count is the blocking constraint: {message}"
    );
    sim.shutdown().await.unwrap();
}
