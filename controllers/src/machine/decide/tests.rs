//! The decision table of a MaasMachine, row by row.

use super::*;
use crate::domain::maas_machine::{OWNER_KEY_RELEASE, owner_data_for};
use crate::domain::timing::{MAX_DEPLOY_FAILURES, POLL_MIN, failure_retry_delay};
use crate::machine::source::gpu::{GpuAction, GpuFacts, GpuNotes, MAX_GPU_REJECTIONS};
use maas_client::MachineStatus;

const UID: &str = "uid-1";

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// The facts of a MaasMachine with an owner, a ready cluster and bootstrap data, nothing
/// allocated: the starting row of other modules' tests too.
pub(crate) fn base_facts() -> MachineFacts {
    base()
}

fn base() -> MachineFacts {
    MachineFacts {
        uid: UID.into(),
        namespace: "ns".into(),
        name: "mm-0".into(),
        deleting: false,
        moving: false,
        management: None,
        paused: false,
        owner: Some(OwnerMachine {
            bootstrap_data_secret: Some("boot".into()),
            failure_domain: Some("az1".into()),
        }),
        cluster_infrastructure_ready: Some(true),
        system_id: None,
        attempt_marked: false,
        release_intent: false,
        failures: DeployFailures::default(),
        requirements: MachineRequirements {
            min_cpu: Some(2),
            tags: vec!["t1".into(), "t2".into()],
            ..Default::default()
        },
        image: "ubuntu/jammy".into(),
        deploy_in_memory: false,
        hwe_kernel: None,
        erase: EraseOptions {
            erase: true,
            quick_erase: true,
            secure_erase: false,
        },
        default_zone: None,
        was_ready: false,
        released_in_state: None,
        capacity_refused_for: None,
        power_ons: None,
        ready_confirmed: false,
        deploying_for: None,
        maas: MaasView::Unread,
        gpu: GpuFacts::default(),
        made_by_go_provider: false,
        pass: PassNotes::default(),
        now: now(),
    }
}

fn machine(status: MachineStatus, power: Power, owner_uid: Option<&str>) -> ObservedMachine {
    ObservedMachine {
        system_id: "abc123".into(),
        status_code: status.code(),
        status_name: status.label().to_string(),
        power,
        zone: Some("az1".into()),
        hostname: "node-1".into(),
        fqdn: "node-1.maas".into(),
        ip_addresses: vec!["10.0.0.5".into()],
        // Another uid stands for another object (another name); a moved object is built
        // with `owned_by`.
        owner_data: owner_uid
            .map(|u| {
                with_release(owner_data_for(
                    u,
                    "ns",
                    if u == UID { "mm-0" } else { "mm-x" },
                    None,
                ))
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn allocated(
    f: MachineFacts,
    status: MachineStatus,
    power: Power,
    owner: Option<&str>,
) -> MachineFacts {
    MachineFacts {
        system_id: Some("abc123".into()),
        maas: MaasView::Found(machine(status, power, owner)),
        ..f
    }
}

/// Facts of a pass that itself allocated the machine (or found it under our agent name).
fn just_allocated(mut f: MachineFacts) -> MachineFacts {
    f.pass.agent_name = Some(true);
    f
}

/// A compact label per action (its name and the arguments that matter), so table rows stay one
/// line.
fn label(a: &MachineAction) -> String {
    let args = match a {
        MachineAction::Wait { reason, after } => {
            format!("{}, {:?}", reason.as_str(), after.map(|d| d.as_secs()))
        }
        MachineAction::MarkAttempt | MachineAction::Forget | MachineAction::RemoveFinalizer => {
            return a.name().to_string();
        }
        MachineAction::AdoptLookup { agent_name } => agent_name.clone(),
        MachineAction::Allocate(r) => format!("zone={:?}", r.zone),
        MachineAction::RecordSystemId(id) => id.clone(),
        MachineAction::Deploy {
            system_id,
            distro_series,
            ephemeral,
            hwe_kernel,
            bootstrap_secret,
        } => format!(
            "{system_id}, {distro_series:?}, {ephemeral}, {hwe_kernel:?}, {bootstrap_secret}"
        ),
        MachineAction::SetOwnerData { system_id, .. }
        | MachineAction::PowerOn { system_id }
        | MachineAction::Read { system_id }
        | MachineAction::Release { system_id, .. }
        | MachineAction::ReleaseDuplicate { system_id, .. }
        | MachineAction::ConfirmAgentName { system_id, .. }
        | MachineAction::Gpu(
            GpuAction::CountGpus { system_id }
            | GpuAction::ReadRejected { system_id }
            | GpuAction::ReleaseRejected { system_id, .. }
            | GpuAction::DropRejected { system_id },
        ) => system_id.clone(),
        MachineAction::Poll { reason, after } => {
            format!("{}, {}", reason.as_str(), after.as_secs())
        }
        MachineAction::Ready(r) => r.provider_id.clone(),
        MachineAction::MarkReleaseIntent { failures } => format!("{:?}", failures.map(|f| f.count)),
        MachineAction::Fail { reason, .. } => reason.as_str().to_string(),
        MachineAction::Gpu(GpuAction::RejectForGpus {
            system_id,
            found,
            wanted,
        }) => format!("{system_id}, {found}<{wanted}"),
    };
    // The name comes from the action itself: actions are named in one place.
    format!("{}({args})", a.name())
}

fn check(rows: Vec<(&str, MachineFacts, &str)>) {
    for (name, facts, want) in rows {
        assert_eq!(label(&decide_machine(&facts)), want, "case: {name}");
    }
}

#[test]
fn gates_before_allocation() {
    check(vec![
        (
            "paused",
            MachineFacts {
                paused: true,
                ..base()
            },
            "Wait(Paused, None)",
        ),
        (
            "paused wins over deletion",
            MachineFacts {
                paused: true,
                deleting: true,
                ..base()
            },
            "Wait(Paused, None)",
        ),
        (
            "no owner Machine",
            MachineFacts {
                owner: None,
                ..base()
            },
            "Wait(WaitingForOwner, None)",
        ),
        (
            "no Cluster",
            MachineFacts {
                cluster_infrastructure_ready: None,
                ..base()
            },
            "Wait(WaitingForCluster, None)",
        ),
        (
            "infrastructure not provisioned",
            MachineFacts {
                cluster_infrastructure_ready: Some(false),
                ..base()
            },
            "Wait(WaitingForClusterInfrastructure, None)",
        ),
        (
            "no bootstrap data",
            MachineFacts {
                owner: Some(OwnerMachine {
                    bootstrap_data_secret: None,
                    failure_domain: None,
                }),
                ..base()
            },
            "Wait(WaitingForBootstrapData, None)",
        ),
    ]);
}

#[test]
fn allocation_is_marked_then_adopted_or_made() {
    check(vec![
        ("first attempt marks", base(), "MarkAttempt"),
        (
            "marked, not looked: adopt lookup",
            MachineFacts {
                attempt_marked: true,
                ..base()
            },
            "AdoptLookup(capmaas:uid-1)",
        ),
        (
            "marked, nothing to adopt: allocate in the Machine's zone",
            MachineFacts {
                attempt_marked: true,
                maas: MaasView::NotFound,
                ..base()
            },
            "Allocate(zone=Some(\"az1\"))",
        ),
        (
            "lookup found one: record it",
            MachineFacts {
                attempt_marked: true,
                maas: MaasView::Found(machine(MachineStatus::Allocated, Power::Off, None)),
                ..base()
            },
            "RecordSystemId(abc123)",
        ),
    ]);
}

#[test]
fn second_machines_under_our_agent_name_are_released_before_anything_else() {
    let mut found = base();
    found.attempt_marked = true;
    found.maas = MaasView::Found(machine(MachineStatus::Allocated, Power::Off, None));
    found.pass.duplicates = vec!["dup1".into(), "dup2".into()];
    let mut deleting = found.clone();
    deleting.deleting = true;
    let mut released_all = found.clone();
    released_all.pass.duplicates.clear();
    check(vec![
        ("lookup found two", found, "ReleaseDuplicate(dup1)"),
        (
            "lookup found two while deleting",
            deleting,
            "ReleaseDuplicate(dup1)",
        ),
        (
            "then the kept one is recorded",
            released_all,
            "RecordSystemId(abc123)",
        ),
    ]);
}

#[test]
fn a_machine_waiting_for_capacity_asks_maas_at_a_bounded_rate() {
    let waiting = |ago: u64| MachineFacts {
        attempt_marked: true,
        capacity_refused_for: Some(Duration::from_secs(ago)),
        ..base()
    };
    let marked = MachineFacts {
        attempt_marked: true,
        ..base()
    };
    check(vec![
        (
            "refused 10 s ago: wait out the rest",
            waiting(10),
            "Wait(NoMachineAvailable, Some(50))",
        ),
        (
            "refused 70 s ago: ask again, without a lookup (a 409 allocated nothing)",
            waiting(70),
            "Allocate(zone=Some(\"az1\"))",
        ),
        (
            "no refusal remembered: look first",
            marked,
            "AdoptLookup(capmaas:uid-1)",
        ),
    ]);
}

#[test]
fn a_machine_whose_power_stays_off_is_powered_on_with_backoff_then_reported() {
    let off = |power_ons| MachineFacts {
        power_ons,
        ..allocated(base(), MachineStatus::Deployed, Power::Off, Some(UID))
    };
    let secs = Duration::from_secs;
    check(vec![
        ("first time off: power on", off(None), "PowerOn(abc123)"),
        (
            "one sent 4 s ago: wait out the backoff",
            off(Some((1, secs(4)))),
            "Poll(PoweringOn, 6)",
        ),
        (
            "one sent 11 s ago: again",
            off(Some((1, secs(11)))),
            "PowerOn(abc123)",
        ),
        (
            "two sent, 15 s ago: wait longer",
            off(Some((2, secs(15)))),
            "Poll(PoweringOn, 5)",
        ),
        (
            "three sent: stop and say so",
            off(Some((3, secs(900)))),
            "Wait(PowerStaysOff, Some(600))",
        ),
    ]);
}

#[test]
fn a_move_hands_the_machine_over_before_the_finalizer_goes() {
    let moving = |f: MachineFacts| MachineFacts {
        deleting: true,
        moving: true,
        paused: true,
        management: Some("mgmt-source".into()),
        ..f
    };
    let naming = |management: Option<&str>| {
        moving(owned_by(
            base(),
            MachineStatus::Deployed,
            (UID, "ns", "mm-0", management),
        ))
    };
    check(vec![
        (
            "unread: look first",
            moving(MachineFacts {
                system_id: Some("abc123".into()),
                ..base()
            }),
            "Read(abc123)",
        ),
        (
            "names us: hand over",
            naming(Some("mgmt-source")),
            "SetOwnerData(abc123)",
        ),
        ("handed over: finalizer", naming(None), "RemoveFinalizer"),
        (
            "the target adopted it first: leave it",
            naming(Some("mgmt-target")),
            "RemoveFinalizer",
        ),
        ("nothing recorded", moving(base()), "RemoveFinalizer"),
    ]);
}

#[test]
fn allocate_carries_every_constraint() {
    let f = MachineFacts {
        attempt_marked: true,
        maas: MaasView::NotFound,
        ..base()
    };
    let MachineAction::Allocate(r) = decide_machine(&f) else {
        panic!("expected Allocate")
    };
    assert_eq!(r.tags, ["t1", "t2"]);
    assert_eq!(r.cpu_count, Some(2));
    assert_eq!(r.agent_name, "capmaas:uid-1");
}

#[test]
fn retries_after_failures_wait_and_are_bounded() {
    let one = DeployFailures {
        count: 1,
        last: Some(now()),
    };
    let spent = DeployFailures {
        count: MAX_DEPLOY_FAILURES,
        last: Some(now()),
    };
    let long_ago = DeployFailures {
        count: 1,
        last: Some("2026-03-01T11:00:00Z".parse().unwrap()),
    };
    check(vec![
        (
            "inside the delay",
            MachineFacts {
                failures: one,
                ..base()
            },
            "Wait(WaitingToRetry, Some(30))",
        ),
        (
            "after the delay",
            MachineFacts {
                failures: long_ago,
                ..base()
            },
            "MarkAttempt",
        ),
        (
            "budget spent",
            MachineFacts {
                failures: spent,
                ..base()
            },
            "Fail(DeployFailuresExhausted)",
        ),
    ]);
    assert_eq!(failure_retry_delay(1).as_secs(), 30);
}

#[test]
fn each_maas_status_of_our_machine() {
    let b = || base();
    check(vec![
        (
            "recorded, unread: read",
            MachineFacts {
                system_id: Some("abc123".into()),
                ..b()
            },
            "Read(abc123)",
        ),
        (
            "404",
            MachineFacts {
                system_id: Some("abc123".into()),
                maas: MaasView::NotFound,
                ..b()
            },
            "Fail(MachineNotFound)",
        ),
        (
            "allocated in this pass, no owner data yet",
            just_allocated(allocated(b(), MachineStatus::Allocated, Power::Off, None)),
            "SetOwnerData(abc123)",
        ),
        (
            "recorded, no owner data, agent name unknown: ask",
            allocated(b(), MachineStatus::Allocated, Power::Off, None),
            "ConfirmAgentName(abc123)",
        ),
        (
            "recorded, no owner data, not our agent name: taken over",
            MachineFacts {
                pass: PassNotes {
                    agent_name: Some(false),
                    ..Default::default()
                },
                ..allocated(b(), MachineStatus::Deployed, Power::On, None)
            },
            "Fail(MachineTakenOver)",
        ),
        (
            "made by the Go provider, deployed, no owner data and no agent name: adopt",
            MachineFacts {
                made_by_go_provider: true,
                ..allocated(b(), MachineStatus::Deployed, Power::On, None)
            },
            "SetOwnerData(abc123)",
        ),
        (
            "made by the Go provider, adopted: ready, nothing allocated or deployed",
            MachineFacts {
                made_by_go_provider: true,
                ..allocated(b(), MachineStatus::Deployed, Power::On, Some(UID))
            },
            "Ready(maas:///az1/abc123)",
        ),
        (
            "made by the Go provider, but the machine is another object's now",
            MachineFacts {
                made_by_go_provider: true,
                ..allocated(
                    b(),
                    MachineStatus::Deployed,
                    Power::On,
                    Some("someone-else"),
                )
            },
            "Fail(MachineTakenOver)",
        ),
        (
            "allocated, ours: deploy",
            allocated(b(), MachineStatus::Allocated, Power::Off, Some(UID)),
            "Deploy(abc123, Some(\"jammy\"), false, None, boot)",
        ),
        (
            "allocated, ours, with an HWE kernel: deploy with it",
            MachineFacts {
                hwe_kernel: Some("hwe-24.04".into()),
                ..allocated(b(), MachineStatus::Allocated, Power::Off, Some(UID))
            },
            "Deploy(abc123, Some(\"jammy\"), false, Some(\"hwe-24.04\"), boot)",
        ),
        (
            "allocated, bootstrap gone",
            MachineFacts {
                owner: None,
                ..allocated(b(), MachineStatus::Allocated, Power::Off, Some(UID))
            },
            "Wait(WaitingForBootstrapData, None)",
        ),
        (
            "deploying",
            allocated(b(), MachineStatus::Deploying, Power::On, Some(UID)),
            "Poll(Deploying, 10)",
        ),
        (
            "deploying for long",
            MachineFacts {
                deploying_for: Some(Duration::from_secs(300)),
                ..allocated(b(), MachineStatus::Deploying, Power::On, Some(UID))
            },
            "Poll(Deploying, 60)",
        ),
        (
            "deploying, no owner data: is it ours?",
            allocated(b(), MachineStatus::Deploying, Power::On, None),
            "ConfirmAgentName(abc123)",
        ),
        (
            "deployed on",
            allocated(b(), MachineStatus::Deployed, Power::On, Some(UID)),
            "Ready(maas:///az1/abc123)",
        ),
        (
            "deployed off: power on",
            allocated(b(), MachineStatus::Deployed, Power::Off, Some(UID)),
            "PowerOn(abc123)",
        ),
        (
            "deployed unknown power: no power on",
            allocated(b(), MachineStatus::Deployed, Power::Unknown, Some(UID)),
            "Ready(maas:///az1/abc123)",
        ),
        (
            "failed deployment: release intent",
            allocated(b(), MachineStatus::FailedDeployment, Power::Off, Some(UID)),
            "MarkReleaseIntent(Some(1))",
        ),
        (
            "broken: release intent",
            allocated(b(), MachineStatus::Broken, Power::Off, Some(UID)),
            "MarkReleaseIntent(Some(1))",
        ),
        (
            "failed deployment, last attempt",
            MachineFacts {
                failures: DeployFailures {
                    count: MAX_DEPLOY_FAILURES - 1,
                    last: None,
                },
                ..allocated(b(), MachineStatus::FailedDeployment, Power::Off, Some(UID))
            },
            "Fail(DeployFailuresExhausted)",
        ),
        (
            "ready in MAAS: released outside",
            allocated(b(), MachineStatus::Ready, Power::Off, None),
            "Fail(MachineReleasedOutside)",
        ),
        (
            "releasing outside",
            allocated(b(), MachineStatus::Releasing, Power::Off, None),
            "Fail(MachineReleasedOutside)",
        ),
        (
            "someone else's",
            allocated(b(), MachineStatus::Deployed, Power::On, Some("other")),
            "Fail(MachineTakenOver)",
        ),
        (
            "rescue mode",
            allocated(b(), MachineStatus::RescueMode, Power::On, Some(UID)),
            "Poll(HeldByOperator, 60)",
        ),
        (
            "testing",
            allocated(b(), MachineStatus::Testing, Power::On, Some(UID)),
            "Poll(HeldByOperator, 60)",
        ),
    ]);
}

#[test]
fn release_after_failure_then_forget() {
    let intent = |f: MachineFacts| MachineFacts {
        release_intent: true,
        ..f
    };
    check(vec![
        (
            "intent, unread: read first",
            intent(MachineFacts {
                system_id: Some("abc123".into()),
                ..base()
            }),
            "Read(abc123)",
        ),
        (
            "intent, still held: release",
            intent(allocated(
                base(),
                MachineStatus::FailedDeployment,
                Power::Off,
                Some(UID),
            )),
            "Release(abc123)",
        ),
        (
            "intent, broken unmarked: is it ours?",
            intent(allocated(base(), MachineStatus::Broken, Power::Off, None)),
            "ConfirmAgentName(abc123)",
        ),
        (
            "intent, broken unmarked, our agent name: release",
            just_allocated(intent(allocated(
                base(),
                MachineStatus::Broken,
                Power::Off,
                None,
            ))),
            "Release(abc123)",
        ),
        (
            "intent, broken unmarked, not our agent name: forget",
            MachineFacts {
                pass: PassNotes {
                    agent_name: Some(false),
                    ..Default::default()
                },
                ..intent(allocated(base(), MachineStatus::Broken, Power::Off, None))
            },
            "Forget",
        ),
        (
            "intent, releasing: forget",
            intent(allocated(
                base(),
                MachineStatus::Releasing,
                Power::Off,
                None,
            )),
            "Forget",
        ),
        (
            "intent, free: forget",
            intent(allocated(base(), MachineStatus::Ready, Power::Off, None)),
            "Forget",
        ),
        (
            "intent, taken by another: forget",
            intent(allocated(
                base(),
                MachineStatus::Deployed,
                Power::On,
                Some("x"),
            )),
            "Forget",
        ),
        (
            "intent, gone: forget",
            intent(MachineFacts {
                system_id: Some("abc123".into()),
                maas: MaasView::NotFound,
                ..base()
            }),
            "Forget",
        ),
    ]);
}

fn with_intent(f: MachineFacts) -> MachineFacts {
    MachineFacts {
        release_intent: true,
        ..f
    }
}

#[test]
fn a_machine_that_was_ready_is_never_released_by_us_when_it_fails() {
    let ready_once = |status| MachineFacts {
        was_ready: true,
        ..allocated(base(), status, Power::Off, Some(UID))
    };
    check(vec![
        (
            "broken after ready",
            ready_once(MachineStatus::Broken),
            "Fail(MachineFailedAfterReady)",
        ),
        (
            "failed deployment after ready",
            ready_once(MachineStatus::FailedDeployment),
            "Fail(MachineFailedAfterReady)",
        ),
        (
            "broken while provisioning: released to try another",
            allocated(base(), MachineStatus::Broken, Power::Off, Some(UID)),
            "MarkReleaseIntent(Some(1))",
        ),
        (
            "broken after ready, CAPI deletes the Machine: released",
            MachineFacts {
                deleting: true,
                release_intent: true,
                ..ready_once(MachineStatus::Broken)
            },
            "Release(abc123)",
        ),
    ]);
}

#[test]
fn a_release_is_sent_once_per_state_and_a_refusal_waits() {
    let broken_deleting = || MachineFacts {
        deleting: true,
        release_intent: true,
        ..allocated(base(), MachineStatus::Broken, Power::Off, Some(UID))
    };
    let mut taken = broken_deleting();
    taken.released_in_state = Some(MachineStatus::Broken.code());
    let mut changed = broken_deleting();
    changed.released_in_state = Some(MachineStatus::Deployed.code());
    let mut refused = broken_deleting();
    refused.pass.release_refused = Some("locked".into());
    let mut refused_outside_deletion = with_intent(allocated(
        base(),
        MachineStatus::FailedDeployment,
        Power::Off,
        Some(UID),
    ));
    refused_outside_deletion.pass.release_refused = Some("no".into());
    check(vec![
        ("taken, still broken: watch", taken, "Poll(Releasing, 5)"),
        (
            "the state changed since: release",
            changed,
            "Release(abc123)",
        ),
        ("refused: wait", refused, "Wait(ReleaseRefused, Some(120))"),
        (
            "refused after a failed deployment: wait",
            refused_outside_deletion,
            "Wait(ReleaseRefused, Some(120))",
        ),
    ]);
}

#[test]
fn deletion() {
    let del = |f: MachineFacts| MachineFacts {
        deleting: true,
        ..f
    };
    let del_intent = |f: MachineFacts| MachineFacts {
        deleting: true,
        release_intent: true,
        ..f
    };
    check(vec![
        ("never allocated", del(base()), "RemoveFinalizer"),
        (
            "never allocated, even without owner",
            del(MachineFacts {
                owner: None,
                ..base()
            }),
            "RemoveFinalizer",
        ),
        (
            "attempt cut off: look",
            del(MachineFacts {
                attempt_marked: true,
                ..base()
            }),
            "AdoptLookup(capmaas:uid-1)",
        ),
        (
            "attempt cut off, nothing allocated",
            del(MachineFacts {
                attempt_marked: true,
                maas: MaasView::NotFound,
                ..base()
            }),
            "RemoveFinalizer",
        ),
        (
            "attempt cut off, found: record then release",
            del(MachineFacts {
                attempt_marked: true,
                maas: MaasView::Found(machine(MachineStatus::Allocated, Power::Off, None)),
                ..base()
            }),
            "RecordSystemId(abc123)",
        ),
        (
            "allocated: mark intent first",
            del(allocated(
                base(),
                MachineStatus::Deployed,
                Power::On,
                Some(UID),
            )),
            "MarkReleaseIntent(None)",
        ),
        (
            "intent, unread: read",
            del_intent(MachineFacts {
                system_id: Some("abc123".into()),
                ..base()
            }),
            "Read(abc123)",
        ),
        (
            "intent written this pass, seen ready and ours lately: release without a read",
            del_intent(MachineFacts {
                system_id: Some("abc123".into()),
                ready_confirmed: true,
                pass: PassNotes {
                    release_intent_marked: true,
                    ..Default::default()
                },
                ..base()
            }),
            "Release(abc123)",
        ),
        (
            "intent written this pass, not seen lately: read (it may have changed hands)",
            del_intent(MachineFacts {
                system_id: Some("abc123".into()),
                pass: PassNotes {
                    release_intent_marked: true,
                    ..Default::default()
                },
                ..base()
            }),
            "Read(abc123)",
        ),
        (
            "intent, deployed: release",
            del_intent(allocated(
                base(),
                MachineStatus::Deployed,
                Power::On,
                Some(UID),
            )),
            "Release(abc123)",
        ),
        (
            "intent, deploying: release",
            del_intent(allocated(
                base(),
                MachineStatus::Deploying,
                Power::On,
                Some(UID),
            )),
            "Release(abc123)",
        ),
        (
            "intent, failed releasing: release again",
            del_intent(allocated(
                base(),
                MachineStatus::FailedReleasing,
                Power::On,
                Some(UID),
            )),
            "Release(abc123)",
        ),
        (
            "intent, releasing: poll",
            del_intent(allocated(
                base(),
                MachineStatus::Releasing,
                Power::Off,
                None,
            )),
            "Poll(Releasing, 5)",
        ),
        (
            "intent, disk erasing: poll",
            del_intent(allocated(
                base(),
                MachineStatus::DiskErasing,
                Power::On,
                None,
            )),
            "Poll(Releasing, 5)",
        ),
        (
            "intent, ready: done",
            del_intent(allocated(base(), MachineStatus::Ready, Power::Off, None)),
            "RemoveFinalizer",
        ),
        (
            "intent, another owner: done",
            del_intent(allocated(
                base(),
                MachineStatus::Deployed,
                Power::On,
                Some("x"),
            )),
            "RemoveFinalizer",
        ),
        (
            "intent, gone in MAAS: done",
            del_intent(MachineFacts {
                system_id: Some("abc123".into()),
                maas: MaasView::NotFound,
                ..base()
            }),
            "RemoveFinalizer",
        ),
    ]);
}

#[test]
fn ready_reports_provider_id_and_addresses() {
    let mut f = allocated(base(), MachineStatus::Deployed, Power::On, Some(UID));
    if let MaasView::Found(m) = &mut f.maas {
        m.zone = None;
    }
    let MachineAction::Ready(r) = decide_machine(&f) else {
        panic!("expected Ready")
    };
    assert_eq!(
        r.provider_id, "maas:///az1/abc123",
        "falls back to the Machine's zone"
    );
    assert_eq!(r.addresses.len(), 4);
    assert!(r.powered);
    f.owner = None;
    let MachineAction::Ready(r) = decide_machine(&f) else {
        panic!("expected Ready")
    };
    assert_eq!(r.zone, FALLBACK_ZONE);
    assert_eq!(POLL_MIN.as_secs(), 10);
}

fn gpu_request(min_count: u32) -> MachineRequirements {
    MachineRequirements {
        gpu: Some(crate::domain::allocation::GpuRequest {
            vendor: Some("nvidia".into()),
            product: None,
            min_count: Some(min_count),
        }),
        ..Default::default()
    }
}

/// The facts with the set-aside machines (the annotation) and what the pass learnt so far.
fn with_gpu(f: MachineFacts, rejected: &[&str], gpu: GpuNotes) -> MachineFacts {
    MachineFacts {
        gpu: GpuFacts {
            rejected: rejected.iter().map(|s| s.to_string()).collect(),
            candidates: None,
        },
        pass: PassNotes {
            gpu,
            ..f.pass.clone()
        },
        ..f
    }
}

#[test]
fn several_gpus_are_counted_before_deploy_and_short_machines_set_aside() {
    let f = MachineFacts {
        requirements: gpu_request(4),
        ..allocated(base(), MachineStatus::Allocated, Power::Off, Some(UID))
    };
    assert_eq!(label(&decide_machine(&f)), "CountGpus(abc123)");
    let short = with_gpu(
        f.clone(),
        &[],
        GpuNotes {
            count: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(label(&decide_machine(&short)), "RejectForGpus(abc123, 2<4)");
    let enough = with_gpu(
        f.clone(),
        &[],
        GpuNotes {
            count: Some(4),
            ..Default::default()
        },
    );
    assert!(label(&decide_machine(&enough)).starts_with("Deploy(abc123"));
    // One GPU: the allocate constraint already guarantees it, no count.
    let one = MachineFacts {
        requirements: gpu_request(1),
        ..f
    };
    assert!(label(&decide_machine(&one)).starts_with("Deploy(abc123"));
}

#[test]
fn owner_data_comes_before_the_gpu_count() {
    let f = MachineFacts {
        requirements: gpu_request(2),
        ..just_allocated(allocated(
            base(),
            MachineStatus::Allocated,
            Power::Off,
            None,
        ))
    };
    assert_eq!(label(&decide_machine(&f)), "SetOwnerData(abc123)");
}

#[test]
fn set_aside_machines_are_released_once_a_good_one_is_found() {
    let f = MachineFacts {
        requirements: gpu_request(2),
        ..allocated(base(), MachineStatus::Allocated, Power::Off, Some(UID))
    };
    let gpu = |held: Option<(&str, bool)>| GpuNotes {
        count: Some(2),
        first_rejected_held: held.map(|(id, h)| (id.to_string(), h)),
        ..Default::default()
    };
    let old = ["old1", "old2"];
    assert_eq!(
        label(&decide_machine(&with_gpu(f.clone(), &old, gpu(None)))),
        "ReadRejected(old1)"
    );
    assert_eq!(
        label(&decide_machine(&with_gpu(
            f.clone(),
            &old,
            gpu(Some(("old1", true)))
        ))),
        "ReleaseRejected(old1)"
    );
    assert_eq!(
        label(&decide_machine(&with_gpu(
            f.clone(),
            &old,
            gpu(Some(("old1", false)))
        ))),
        "DropRejected(old1)"
    );
    assert_eq!(
        label(&decide_machine(&with_gpu(
            f,
            &old,
            gpu(Some(("other", true)))
        ))),
        "ReadRejected(old1)",
        "a view of another machine is not a view of the first"
    );
}

#[test]
fn gpu_candidates_are_asked_for_by_system_id_until_none_is_left() {
    let mut f = MachineFacts {
        requirements: gpu_request(4),
        attempt_marked: true,
        maas: MaasView::NotFound,
        ..base()
    };
    f.gpu.candidates = Some(vec!["small".into(), "big".into()]);
    let system_id = |f: &MachineFacts| match decide_machine(f) {
        MachineAction::Allocate(r) => r.system_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        system_id(&f).as_deref(),
        Some("small"),
        "the smallest first"
    );
    f.pass.gpu.tried = vec!["small".into()];
    assert_eq!(
        system_id(&f).as_deref(),
        Some("big"),
        "taken meanwhile: the next"
    );
    f.pass.gpu.tried.push("big".into());
    assert_eq!(
        label(&decide_machine(&f)),
        "Wait(NoMachineAvailable, Some(60))"
    );
    f.gpu.candidates = Some(Vec::new());
    f.pass.gpu.tried.clear();
    assert_eq!(
        label(&decide_machine(&f)),
        "Wait(NoMachineAvailable, Some(60))",
        "the inventory has none: no allocate of a machine with too few GPUs"
    );
    f.gpu.candidates = None;
    assert_eq!(
        system_id(&f),
        None,
        "unread: MAAS picks, the count checks after"
    );
}

#[test]
fn exhausted_gpu_search_gives_machines_back_then_waits_for_capacity() {
    let f = MachineFacts {
        requirements: gpu_request(8),
        attempt_marked: true,
        maas: MaasView::NotFound,
        ..base()
    };
    let exhausted = GpuNotes {
        exhausted: true,
        ..Default::default()
    };
    assert_eq!(
        label(&decide_machine(&with_gpu(
            f.clone(),
            &["a"],
            exhausted.clone()
        ))),
        "ReadRejected(a)"
    );
    assert_eq!(
        label(&decide_machine(&with_gpu(f.clone(), &[], exhausted))),
        "Wait(NoMachineAvailable, Some(60))"
    );
    // The budget spent (from the annotation) counts as exhausted.
    let full: Vec<String> = (0..MAX_GPU_REJECTIONS).map(|i| format!("m{i}")).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    assert_eq!(
        label(&decide_machine(&with_gpu(
            f.clone(),
            &full,
            GpuNotes::default()
        ))),
        "ReadRejected(m0)"
    );
    // Not exhausted: allocate again.
    assert!(
        label(&decide_machine(&with_gpu(f, &["a"], GpuNotes::default()))).starts_with("Allocate(")
    );
}

#[test]
fn deletion_gives_set_aside_machines_back_first() {
    let f = MachineFacts {
        deleting: true,
        gpu: GpuFacts {
            rejected: vec!["a".into()],
            candidates: None,
        },
        ..allocated(base(), MachineStatus::Deployed, Power::On, Some(UID))
    };
    assert_eq!(label(&decide_machine(&f)), "ReadRejected(a)");
}

/// A machine whose owner data was written by `owner` (uid, namespace, name, management).
fn owned_by(
    f: MachineFacts,
    status: MachineStatus,
    owner: (&str, &str, &str, Option<&str>),
) -> MachineFacts {
    let mut m = machine(status, Power::On, None);
    m.owner_data = with_release(owner_data_for(owner.0, owner.1, owner.2, owner.3));
    MachineFacts {
        system_id: Some("abc123".into()),
        maas: MaasView::Found(m),
        ..f
    }
}

/// Owner data with the release options of `base()`, as its allocation wrote them.
fn with_release(
    mut data: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    data.insert(OWNER_KEY_RELEASE.into(), "erase,quick".into());
    data
}

fn mgmt(f: MachineFacts) -> MachineFacts {
    MachineFacts {
        management: Some("mgmt-target".into()),
        ..f
    }
}

#[test]
fn owner_data_after_allocate_names_the_management_cluster() {
    let f = mgmt(just_allocated(allocated(
        base(),
        MachineStatus::Allocated,
        Power::Off,
        None,
    )));
    match decide_machine(&f) {
        MachineAction::SetOwnerData { system_id, data } => {
            assert_eq!(system_id, "abc123");
            assert_eq!(
                data,
                with_release(owner_data_for(UID, "ns", "mm-0", Some("mgmt-target")))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_moved_machine_is_adopted_not_taken_over() {
    // Same namespace/name, the source's uid and management identity: rewrite, then go on.
    let f = mgmt(owned_by(
        base(),
        MachineStatus::Deployed,
        ("uid-source", "ns", "mm-0", Some("mgmt-source")),
    ));
    match decide_machine(&f) {
        MachineAction::SetOwnerData { system_id, data } => {
            assert_eq!(system_id, "abc123");
            assert_eq!(
                data,
                with_release(owner_data_for(UID, "ns", "mm-0", Some("mgmt-target")))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Once rewritten, the deployed machine is simply ready: no deploy, no release.
    let adopted = mgmt(owned_by(
        base(),
        MachineStatus::Deployed,
        (UID, "ns", "mm-0", Some("mgmt-target")),
    ));
    assert_eq!(
        label(&decide_machine(&adopted)),
        "Ready(maas:///az1/abc123)"
    );
}

#[test]
fn a_machine_naming_another_object_stays_taken_over() {
    for owner in [
        ("uid-other", "ns", "mm-9", Some("mgmt-target")),
        ("uid-other", "other-ns", "mm-0", Some("mgmt-source")),
    ] {
        let f = mgmt(owned_by(base(), MachineStatus::Deployed, owner));
        assert_eq!(
            label(&decide_machine(&f)),
            "Fail(MachineTakenOver)",
            "{owner:?}"
        );
    }
}

#[test]
fn owner_data_follows_a_change_of_the_release_options() {
    let mut f = allocated(base(), MachineStatus::Deployed, Power::On, Some(UID));
    assert_eq!(label(&decide_machine(&f)), "Ready(maas:///az1/abc123)");
    f.erase.secure_erase = true;
    assert_eq!(label(&decide_machine(&f)), "SetOwnerData(abc123)");
}

#[test]
fn ours_without_our_management_identity_gets_it_written() {
    let missing = mgmt(owned_by(
        base(),
        MachineStatus::Deployed,
        (UID, "ns", "mm-0", None),
    ));
    assert_eq!(label(&decide_machine(&missing)), "SetOwnerData(abc123)");
    // Without a known identity nothing is rewritten.
    let unknown = owned_by(base(), MachineStatus::Deployed, (UID, "ns", "mm-0", None));
    assert_eq!(
        label(&decide_machine(&unknown)),
        "Ready(maas:///az1/abc123)"
    );
    // A released machine is not stamped.
    let free = mgmt(owned_by(
        base(),
        MachineStatus::Ready,
        (UID, "ns", "mm-0", None),
    ));
    assert_eq!(
        label(&decide_machine(&free)),
        "Fail(MachineReleasedOutside)"
    );
}

#[test]
fn deleting_for_move_drops_the_finalizer_without_release() {
    let f = MachineFacts {
        deleting: true,
        moving: true,
        paused: true,
        release_intent: true,
        ..allocated(base(), MachineStatus::Deployed, Power::On, Some(UID))
    };
    assert_eq!(label(&decide_machine(&f)), "RemoveFinalizer");
    // Without the annotation the same deletion releases.
    let f = MachineFacts {
        moving: false,
        paused: false,
        ..f
    };
    assert_eq!(label(&decide_machine(&f)), "Release(abc123)");
}

#[test]
fn deleting_a_moved_machine_before_adoption_releases_it() {
    let f = MachineFacts {
        deleting: true,
        release_intent: true,
        ..owned_by(
            base(),
            MachineStatus::Deployed,
            ("uid-source", "ns", "mm-0", Some("mgmt-source")),
        )
    };
    assert_eq!(label(&decide_machine(&f)), "Release(abc123)");
    let f = MachineFacts {
        deleting: true,
        release_intent: true,
        ..owned_by(
            base(),
            MachineStatus::Deployed,
            ("uid-other", "ns", "mm-9", Some("mgmt-source")),
        )
    };
    assert_eq!(label(&decide_machine(&f)), "RemoveFinalizer");
}
