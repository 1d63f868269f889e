//! MAAS misbehaving in the ways it really does, and the provider losing nothing: every test here
//! failed before the fix it names.

use super::*;

/// MAAS (or something in front of it) answers the next `op` call with `status` and `body`,
/// without acting.
fn answered_with(op: &str, status: u16, body: &str) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            fail_next: 1,
            status,
            body: Some(body.to_string()),
            ..FaultRule::on(op)
        }],
        ..Default::default()
    }
}

/// A ready machine whose MaasMachine is being deleted after a restart that followed the release
/// intent: the next pass reads the machine before anything else.
async fn ready_then_deleting(sim: &SimHandle, client: &MaasClient, store: &MemStore) -> String {
    let reports = drive(client, store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let mut o = store.obj.lock().unwrap();
    o.deleting = true;
    o.release_intent = true;
    o.finalizer = true;
    drop(o);
    sim.reset_requests();
    store.get().system_id.unwrap()
}

#[tokio::test]
async fn a_404_that_is_not_maas_saying_gone_never_drops_the_finalizer() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let id = ready_then_deleting(&sim, &client, &store).await;

    // A proxy, or a wrong path, answers 404 with its own page: that says nothing about the machine.
    sim.set_faults(answered_with(
        "machine:read",
        404,
        "<html>404 Not Found</html>",
    ));
    let pass = run_machine_pass(&client, &store, facts(&store.get(), now()), None).await;
    assert!(pass.is_err(), "{pass:?}");
    assert!(store.get().finalizer, "the finalizer stays");
    assert_eq!(sim.state().machine(&id).unwrap().status, "Deployed");

    // Once MAAS answers, the machine is released and only then does the finalizer go.
    let reports = drive(&client, &store, now()).await;
    assert_eq!(reports.last().unwrap().end, PassEnd::Finalized);
    assert_eq!(sim.requests().count_op("machine:release"), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_machines_under_our_agent_name_keep_one_and_release_the_other() {
    use maas_client::{AllocateParams, MaasApi};
    let (sim, client) = sim(FaultConfig::default()).await;
    // An allocate applied twice (a resend by an older client, or two managers at once).
    let params = AllocateParams {
        agent_name: Some(format!("capmaas:{UID}")),
        ..Default::default()
    };
    let first = client.allocate(&params).await.unwrap().system_id;
    let second = client.allocate(&params).await.unwrap().system_id;
    let store = MemStore::default();
    store.obj.lock().unwrap().attempt_marked = true;

    let reports = drive(&client, &store, now()).await;
    assert!(
        reports[0]
            .step_names()
            .starts_with(&["AdoptLookup", "ReleaseDuplicate", "RecordSystemId"]),
        "{:?}",
        reports[0].step_names()
    );
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let kept = store.get().system_id.unwrap();
    assert_eq!(
        kept,
        first.clone().min(second.clone()),
        "the lower id is kept"
    );
    assert_eq!(
        held_machines(&sim),
        1,
        "the second allocation is not leaked"
    );
    let released = if kept == first { &second } else { &first };
    let view = sim.state();
    let m = view.machine(released).unwrap();
    assert!(
        m.status == "Releasing" || m.status == "Ready",
        "{}",
        m.status
    );
    assert_eq!(
        sim.requests().count_op("machines:allocate"),
        2,
        "nothing new allocated"
    );
    sim.shutdown().await.unwrap();
}

/// The next MAAS pass over the object, as the reconciler would run it for a MaasMachine whose
/// `spec.providerID` was written (the machine was ready once).
async fn pass_after_ready(client: &MaasClient, store: &MemStore) -> PassReport {
    let mut f = facts(&store.get(), now());
    f.was_ready = true;
    let report = run_machine_pass(client, store, f, None).await.unwrap();
    store.obj.lock().unwrap().ready_confirmed = matches!(report.end, PassEnd::Ready(_));
    report
}

#[tokio::test]
async fn a_ready_machine_that_breaks_is_left_for_capi_to_replace_never_released() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let reports = drive(&client, &store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let id = store.get().system_id.unwrap();
    sim.set_faults(FaultConfig {
        break_machines: vec![maas_sim::faults::BreakMachine {
            machine: id.clone(),
            after_seconds: 0.0,
        }],
        ..Default::default()
    });
    sim.reset_requests();

    let report = pass_after_ready(&client, &store).await;
    let PassEnd::Failed { reason, .. } = &report.end else {
        panic!("{report:?}")
    };
    assert_eq!(*reason, FailReason::MachineFailedAfterReady);
    // Nothing wipes the node under its workloads: CAPI drains and deletes the Machine first.
    let again = pass_after_ready(&client, &store).await;
    assert!(matches!(again.end, PassEnd::Failed { .. }), "{again:?}");
    assert_eq!(sim.requests().count_op("machine:release"), 0);
    assert_eq!(sim.requests().count_op("machines:allocate"), 0);
    assert!(!store.get().release_intent);
    let view = sim.state();
    let m = view.machine(&id).unwrap();
    assert_eq!(m.status, "Broken");

    // CAPI deletes the Machine after the drain: now the machine is released.
    store.obj.lock().unwrap().deleting = true;
    let mut f = facts(&store.get(), now());
    f.was_ready = true;
    let report = run_machine_pass(&client, &store, f, None).await.unwrap();
    assert!(
        report.step_names().contains(&"Release"),
        "{:?}",
        report.step_names()
    );
    assert_eq!(sim.requests().count_op("machine:release"), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn once_the_hold_on_the_lease_ends_no_maas_step_starts() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    *store.lease_ended.lock().unwrap() = true;
    sim.reset_requests();
    let pass = run_machine_pass(&client, &store, facts(&store.get(), now()), None).await;
    assert!(matches!(pass, Err(ReconcileError::NotLeader)), "{pass:?}");
    assert_eq!(maas_calls(&sim), 0, "not a single MAAS call");
    assert_eq!(held_machines(&sim), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_machine_taken_by_another_tool_under_our_maas_user_is_never_claimed_or_released() {
    use maas_client::{AllocateParams, MaasApi, ReleaseParams};
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let reports = drive(&client, &store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let id = store.get().system_id.unwrap();

    // An admin releases it behind our back; another tool with the same MAAS user takes it.
    let admin = MaasClient::new(
        MaasConfig::new(sim.url(), sim.admin_api_key()).with_retry(RetryConfig::none()),
    )
    .unwrap();
    admin.release(&id, &ReleaseParams::default()).await.unwrap();
    let retaken = client
        .allocate(&AllocateParams {
            system_id: Some(id.clone()),
            agent_name: Some("another-tool".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(retaken.system_id, id);
    sim.reset_requests();

    let report = pass_after_ready(&client, &store).await;
    let PassEnd::Failed { reason, .. } = &report.end else {
        panic!("{report:?}")
    };
    assert_eq!(*reason, FailReason::MachineTakenOver);
    assert_eq!(
        sim.requests().count_op("machine:set_owner_data"),
        0,
        "not claimed"
    );

    store.obj.lock().unwrap().deleting = true;
    let reports = drive(&client, &store, now()).await;
    assert_eq!(reports.last().unwrap().end, PassEnd::Finalized);
    assert_eq!(
        sim.requests().count_op("machine:release"),
        0,
        "not released"
    );
    let view = sim.state();
    assert_eq!(
        view.machine(&id).unwrap().status,
        "Allocated",
        "the other tool keeps it"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_moved_machine_is_never_swept_by_the_source_whatever_the_target_does() {
    use capmaas_controllers::sweep::{LiveMachines, LiveSet, Sweeper};
    struct NothingLive;
    impl LiveMachines for NothingLive {
        async fn live(&self) -> Result<LiveSet, ReconcileError> {
            Ok(LiveSet::default())
        }
    }
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let reports = drive(&client, &store, now()).await;
    assert!(matches!(reports.last().unwrap().end, PassEnd::Ready(_)));
    let id = store.get().system_id.unwrap();

    // clusterctl move deletes the source object: the source hands the machine over.
    let mut f = facts(&store.get(), now());
    (f.deleting, f.moving, f.paused) = (true, true, true);
    let report = run_machine_pass(&client, &store, f, None).await.unwrap();
    assert_eq!(
        report.step_names(),
        ["Read", "SetOwnerData", "RemoveFinalizer"],
        "{report:?}"
    );

    // The target is down for longer than any grace period: the source's sweep keeps its hands off.
    let mut sweeper = Sweeper::new(Some("ns".into()), Some(MANAGEMENT.into()), Duration::ZERO);
    for _ in 0..2 {
        let released = sweeper
            .sweep_once(&client, &NothingLive, std::time::Instant::now())
            .await
            .unwrap();
        assert!(released.is_empty(), "{released:?}");
    }
    assert_eq!(sim.state().machine(&id).unwrap().status, "Deployed");

    // The target comes up and adopts it: a new uid, the same namespace and name.
    let target = MemStore::default();
    target.obj.lock().unwrap().system_id = Some(id.clone());
    let mut f = facts(&target.get(), now());
    f.uid = "9f0a0000-aaaa-bbbb-cccc-ddddeeeeffff".into();
    f.management = Some("mgmt-target".into());
    f.was_ready = true;
    let report = run_machine_pass(&client, &target, f, None).await.unwrap();
    assert!(matches!(report.end, PassEnd::Ready(_)), "{report:?}");
    let view = sim.state();
    let m = view.machine(&id).unwrap();
    assert_eq!(
        m.owner_data.get("capmaas-management").map(String::as_str),
        Some("mgmt-target")
    );
    assert_eq!(sim.requests().count_op("machine:release"), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_release_waits_with_maas_words_and_keeps_the_finalizer() {
    let (sim, client) = sim(FaultConfig::default()).await;
    let store = MemStore::default();
    let id = ready_then_deleting(&sim, &client, &store).await;
    let refusal = "Machine cannot be released in its current state ('Deployed').";
    sim.set_faults(answered_with("machine:release", 409, refusal));

    let report = run_machine_pass(&client, &store, facts(&store.get(), now()), None)
        .await
        .unwrap();
    assert_eq!(
        report.end,
        PassEnd::Waiting {
            reason: WaitReason::ReleaseRefused,
            after: Some(Duration::from_secs(120)),
        }
    );
    assert_eq!(report.wait_message(), Some(refusal));
    assert_eq!(sim.requests().count_op("machine:release"), 1, "asked once");
    assert!(store.get().finalizer);

    let reports = drive(&client, &store, now()).await;
    assert_eq!(reports.last().unwrap().end, PassEnd::Finalized);
    assert_eq!(sim.state().machine(&id).unwrap().owner, None);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_admin_user_beside_another_users_machines_gets_one_and_gives_it_back() {
    let sim = Simulator::start(SimConfig {
        machines: 4,
        gpu_machines: 0,
        deploy_seconds: 0.0,
        non_admin: true,
        other_user_machines: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = retrying_client(&sim);
    let store = MemStore::default();
    let reports = drive(&client, &store, now()).await;
    assert!(
        matches!(reports.last().unwrap().end, PassEnd::Ready(_)),
        "{reports:#?}"
    );
    let id = store.get().system_id.unwrap();
    let view = sim.state();
    assert_eq!(view.machine(&id).unwrap().owner.as_deref(), Some("user"));
    let others = view
        .machines
        .iter()
        .filter(|m| m.owner.as_deref() == Some("other"))
        .count();
    assert_eq!(others, 2, "the other user's machines are left alone");

    store.obj.lock().unwrap().deleting = true;
    let reports = drive(&client, &store, now()).await;
    assert_eq!(reports.last().unwrap().end, PassEnd::Finalized);
    assert_eq!(sim.state().machine(&id).unwrap().owner, None);
    sim.shutdown().await.unwrap();
}
