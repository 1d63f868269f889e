//! The typed MAAS client against the MAAS simulator, over real HTTP on loopback.
//!
//! The two crates share no code, so each test here checks that the client speaks MAAS as the
//! simulator understands it and that the simulator answers as the client expects MAAS to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use maas_client::{
    AllocateParams, DeployParams, DeviceConstraint, DnsResourceFilter, DnsResourceParams, MaasApi,
    MaasClient, MaasConfig, MaasError, MachineFilter, MachineStatus, ReleaseParams, RetryConfig,
};
use maas_sim::{FaultConfig, FaultRule, SimConfig, SimHandle, Simulator};

async fn start(machines: usize, gpu_machines: usize) -> SimHandle {
    Simulator::start(SimConfig {
        machines,
        gpu_machines,
        deploy_seconds: 0.0,
        ..Default::default()
    })
    .await
    .expect("simulator starts")
}

/// Quick retries so tests that exercise Retry-After do not sit in long backoffs.
fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_delay: Duration::from_secs(5),
    }
}

fn client(sim: &SimHandle) -> MaasClient {
    MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(fast_retry()))
        .expect("client builds")
}

/// Reads the machine until it leaves the given transient status, bounded by a count of reads.
async fn read_until_not(
    client: &MaasClient,
    system_id: &str,
    transient: &[MachineStatus],
) -> maas_client::Machine {
    for _ in 0..200 {
        let m = client.read_machine(system_id).await.unwrap();
        if !transient.contains(&m.status) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("machine {system_id} stayed in {transient:?}");
}

#[tokio::test]
async fn full_lifecycle_with_constraints_owner_data_deploy_and_erase() {
    let sim = start(6, 0).await;
    let client = client(&sim);

    // Constraints taken from a machine the simulator really has, so the test does not depend on
    // how the inventory is generated.
    let target = sim.state().machines[3].clone();
    let tag = target
        .tags
        .first()
        .cloned()
        .expect("generated machines carry a tag");
    let agent = "capmaas:0b4e-test-uid";
    let params = AllocateParams {
        cpu_count: Some(1),
        mem: Some(1024),
        tags: vec![tag.clone()],
        zone: Some(target.zone.clone()),
        pool: Some(target.pool.clone()),
        storage: Some("10".into()),
        agent_name: Some(agent.into()),
        comment: Some("lifecycle test".into()),
        ..Default::default()
    };
    let machine = client.allocate(&params).await.unwrap();
    assert_eq!(machine.status, MachineStatus::Allocated);
    assert_eq!(machine.zone.as_deref(), Some(target.zone.as_str()));
    assert_eq!(machine.pool.as_deref(), Some(target.pool.as_str()));
    assert!(machine.tag_names.contains(&tag));
    assert!(machine.owner.is_some());
    let id = machine.system_id.clone();

    // agent_name is write-only: filterable, never shown.
    let mine = client
        .list_machines(&MachineFilter {
            agent_name: Some(agent.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        mine.iter()
            .map(|m| m.system_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()]
    );

    let owner_data = BTreeMap::from([
        ("capmaas-uid".to_string(), "0b4e-test-uid".to_string()),
        ("capmaas-name".to_string(), "worker-0".to_string()),
    ]);
    let with_data = client.set_owner_data(&id, &owner_data).await.unwrap();
    assert_eq!(with_data.owner_data, owner_data);

    let user_data = b"#cloud-config\nruncmd: [echo hello]\n".to_vec();
    let deploying = client
        .deploy(
            &id,
            &DeployParams {
                distro_series: Some("jammy".into()),
                user_data: Some(user_data.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(
            deploying.status,
            MachineStatus::Deploying | MachineStatus::Deployed
        ),
        "deploy answered {}",
        deploying.status
    );
    let deployed = read_until_not(&client, &id, &[MachineStatus::Deploying]).await;
    assert_eq!(deployed.status, MachineStatus::Deployed);
    assert_eq!(deployed.distro_series, "jammy");
    assert!(!deployed.ip_addresses.is_empty(), "AUTO IPs after deploy");
    assert_eq!(
        client.query_power_state(&id).await.unwrap(),
        maas_client::PowerState::On
    );
    // The simulator kept the user data exactly as sent (the client base64-encodes it).
    let seen = sim.state().machine(&id).unwrap().user_data.clone();
    assert_eq!(
        seen.as_deref(),
        Some(String::from_utf8(user_data).unwrap().as_str())
    );

    // A second deploy of a deployed machine is a business conflict, not a retry.
    let again = client.deploy(&id, &DeployParams::default()).await;
    assert!(
        matches!(again, Err(MaasError::Conflict { .. })),
        "{again:?}"
    );

    let releasing = client
        .release(
            &id,
            &ReleaseParams {
                erase: true,
                quick_erase: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(
            releasing.status,
            MachineStatus::DiskErasing | MachineStatus::Releasing | MachineStatus::Ready
        ),
        "release answered {}",
        releasing.status
    );
    let ready = read_until_not(
        &client,
        &id,
        &[MachineStatus::DiskErasing, MachineStatus::Releasing],
    )
    .await;
    assert_eq!(ready.status, MachineStatus::Ready);
    assert_eq!(ready.owner, None);
    assert!(ready.owner_data.is_empty(), "owner data wiped on release");
    assert!(ready.ip_addresses.is_empty(), "AUTO IPs freed on release");
    let still_mine = client
        .list_machines(&MachineFilter {
            agent_name: Some(agent.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(still_mine.is_empty(), "agent_name cleared on release");

    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn gpu_allocation_through_the_devices_constraint() {
    let sim = start(4, 2).await;
    let client = client(&sim);
    let devices = DeviceConstraint {
        vendor_id: Some("10de".into()),
        ..Default::default()
    }
    .to_constraint();
    let machine = client
        .allocate(&AllocateParams {
            devices,
            ..Default::default()
        })
        .await
        .unwrap();
    let gpus = client
        .node_devices(&machine.system_id, Some("gpu"))
        .await
        .unwrap();
    assert!(!gpus.is_empty(), "a GPU machine was chosen");
    assert!(gpus.iter().all(|d| d.vendor_id == "10de"));

    // Plain machines have no GPU devices.
    let plain = client
        .allocate(&AllocateParams {
            not_tags: vec!["gpu".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        client
            .node_devices(&plain.system_id, Some("gpu"))
            .await
            .unwrap()
            .is_empty()
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_error_kind_is_told_apart() {
    let sim = start(3, 0).await;
    let client = client(&sim);

    let missing = client.read_machine("nosuch").await;
    assert!(
        matches!(missing, Err(MaasError::NotFound { .. })),
        "{missing:?}"
    );

    let too_big = client
        .allocate(&AllocateParams {
            cpu_count: Some(100_000),
            ..Default::default()
        })
        .await;
    match too_big {
        Err(MaasError::Conflict { message, .. }) => {
            assert!(
                message.contains("No available machine matches constraints"),
                "{message}"
            )
        }
        other => panic!("expected a business conflict, got {other:?}"),
    }

    let bad_zone = client
        .allocate(&AllocateParams {
            zone: Some("no-such-zone".into()),
            ..Default::default()
        })
        .await;
    match bad_zone {
        Err(MaasError::BadRequest { fields, .. }) => {
            assert!(fields.contains_key("zone"), "{fields:?}")
        }
        other => panic!("expected a 400 with field messages, got {other:?}"),
    }

    let parts: Vec<&str> = sim.api_key().split(':').collect();
    let wrong_secret = format!("{}:{}:not-the-secret", parts[0], parts[1]);
    let intruder = MaasClient::new(MaasConfig::new(sim.url(), wrong_secret)).unwrap();
    let refused = intruder.list_machines(&MachineFilter::default()).await;
    assert!(
        matches!(refused, Err(MaasError::Unauthorized { .. })),
        "{refused:?}"
    );
    let unknown_key = MaasClient::new(MaasConfig::new(sim.url(), "a:b:c")).unwrap();
    assert!(matches!(
        unknown_key.version().await.map(|_| ()).and(
            unknown_key
                .list_machines(&MachineFilter::default())
                .await
                .map(|_| ())
        ),
        Err(MaasError::Unauthorized { .. })
    ));
    sim.shutdown().await.unwrap();
}

/// The simulator's fault rules name operations by its own route labels; find the label it logs
/// for a call the client just made, so these tests do not hard-code the simulator's naming.
fn logged_op(sim: &SimHandle, method: &str, path_suffix: &str) -> String {
    sim.requests()
        .log
        .iter()
        .rev()
        .find(|e| e.method == method && e.path.ends_with(path_suffix))
        .map(|e| e.op.clone())
        .expect("request was logged")
}

#[tokio::test]
async fn retry_after_is_honoured_then_the_call_succeeds() {
    let sim = start(3, 0).await;
    let client = client(&sim);

    // Learn the labels of allocate and read.
    let probe = client.allocate(&AllocateParams::default()).await.unwrap();
    let allocate_op = logged_op(&sim, "POST", "/machines/");
    client.read_machine(&probe.system_id).await.unwrap();
    let read_op = logged_op(&sim, "GET", &format!("/machines/{}/", probe.system_id));

    sim.set_faults(FaultConfig {
        rules: vec![
            FaultRule {
                fail_next: 1,
                status: 409,
                retry_after: Some(1),
                ..FaultRule::on(&allocate_op)
            },
            FaultRule {
                fail_next: 1,
                retry_after: Some(1),
                ..FaultRule::on(&read_op)
            },
        ],
        ..Default::default()
    });
    sim.reset_requests();

    let second = client.allocate(&AllocateParams::default()).await.unwrap();
    assert_ne!(second.system_id, probe.system_id);
    let read = client.read_machine(&second.system_id).await.unwrap();
    assert_eq!(read.status, MachineStatus::Allocated);

    let stats = sim.requests();
    assert_eq!(stats.count(&allocate_op, 409), 1, "{:?}", stats.counts);
    assert_eq!(stats.count(&allocate_op, 200), 1, "{:?}", stats.counts);
    assert_eq!(stats.count(&read_op, 503), 1, "{:?}", stats.counts);
    assert_eq!(stats.count(&read_op, 200), 1, "{:?}", stats.counts);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn retries_are_bounded_and_surface_as_retryable() {
    let sim = start(2, 0).await;
    let client = client(&sim);
    client.version().await.unwrap();
    client
        .list_machines(&MachineFilter::default())
        .await
        .unwrap();
    let list_op = logged_op(&sim, "GET", "/machines/");
    sim.set_faults(FaultConfig {
        rules: vec![FaultRule {
            error_rate: 1.0,
            ..FaultRule::on(&list_op)
        }],
        ..Default::default()
    });
    sim.reset_requests();
    let failed = client.list_machines(&MachineFilter::default()).await;
    assert!(
        matches!(failed, Err(MaasError::Retryable { .. })),
        "{failed:?}"
    );
    // Exactly the configured number of attempts, no more.
    assert_eq!(sim.requests().count(&list_op, 503), 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn dns_resources_create_list_update_delete() {
    let sim = start(1, 0).await;
    let client = client(&sim);
    let domain = client
        .domains()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the simulator serves a default domain")
        .name;
    let fqdn = format!("cp-test.{domain}");
    let created = client
        .create_dns_resource(&DnsResourceParams {
            fqdn: Some(fqdn.clone()),
            ip_addresses: Some(vec!["10.0.0.5".into(), "10.0.0.6".into()]),
            address_ttl: Some(10),
        })
        .await
        .unwrap();
    let id = created.id.expect("MAAS answers the new record's id");
    let listed = client
        .list_dns_resources(&DnsResourceFilter {
            name: Some("cp-test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fqdn, fqdn);
    client
        .update_dns_resource(
            id,
            &DnsResourceParams {
                ip_addresses: Some(vec!["10.0.0.7".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let view = sim.state();
    let dns = view
        .dnsresources
        .iter()
        .find(|d| d.fqdn == fqdn)
        .expect("kept by the simulator");
    assert_eq!(dns.ip_addresses, vec!["10.0.0.7".to_string()]);
    client.delete_dns_resource(id).await.unwrap();
    assert!(sim.state().dnsresources.iter().all(|d| d.fqdn != fqdn));
    let gone = client.delete_dns_resource(id).await;
    assert!(matches!(gone, Err(MaasError::NotFound { .. })), "{gone:?}");
    sim.shutdown().await.unwrap();
}

/// Fifty controllers allocating at once must never be handed the same machine.
async fn allocate_concurrently(machines: usize, clients: usize) -> (BTreeSet<String>, usize) {
    let sim = start(machines, 0).await;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let c = client(&sim);
        tasks.push(tokio::spawn(async move {
            c.allocate(&AllocateParams {
                agent_name: Some(format!("capmaas:uid-{i}")),
                ..Default::default()
            })
            .await
        }));
    }
    let mut ids = BTreeSet::new();
    let mut conflicts = 0;
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(m) => {
                granted += 1;
                ids.insert(m.system_id);
            }
            Err(MaasError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ids.len(), granted, "a machine was handed out twice");
    let owned = sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .count();
    assert_eq!(owned, granted);
    sim.shutdown().await.unwrap();
    (ids, conflicts)
}

#[tokio::test]
async fn fifty_concurrent_allocations_never_share_a_machine() {
    let (ids, conflicts) = allocate_concurrently(60, 50).await;
    assert_eq!(ids.len(), 50);
    assert_eq!(conflicts, 0);
}

#[tokio::test]
async fn concurrent_allocations_beyond_the_inventory_get_conflicts() {
    let (ids, conflicts) = allocate_concurrently(30, 50).await;
    assert_eq!(ids.len(), 30);
    assert_eq!(conflicts, 20);
}
