//! The MaasMachine status a pass leads to, as pure functions: the reconcilers write the result only when it
//! differs from what the object already shows, so a steady state costs no API write.

use capmaas_api::condition_names::{reasons, types as conditions};
use capmaas_api::{
    ConditionSeverity, ConditionUpdate, HardwareInventory, MaasMachineStatus,
    MachineAddress as ApiAddress, MachineAddressType, find_condition, set_condition,
};
use jiff::Timestamp;

use crate::domain::addresses::{AddressKind, MachineAddress};
use crate::domain::maas_machine::Power;
use crate::domain::reasons::{FailReason, WaitReason};
use crate::k8s::conditions::{mark_paused, set_error_conditions};
use crate::machine::decide::{MaasView, ReadyMachine};
use crate::machine::steps::{PassEnd, PassReport};

fn api_address(a: &MachineAddress) -> ApiAddress {
    let kind = match a.kind {
        AddressKind::InternalDns => MachineAddressType::InternalDns,
        AddressKind::ExternalDns => MachineAddressType::ExternalDns,
        AddressKind::InternalIp => MachineAddressType::InternalIp,
        AddressKind::ExternalIp => MachineAddressType::ExternalIp,
    };
    ApiAddress::new(kind, a.address.clone())
}

/// The CAPI v1beta1 `failureReason` for a terminal failure: CAPI marks the Machine failed and a
/// MachineHealthCheck can replace it.
pub fn capi_failure_reason(reason: FailReason) -> &'static str {
    match reason {
        FailReason::DeployFailuresExhausted => "CreateError",
        _ => "UpdateError",
    }
}

/// The MaasMachine status after a pass. `None` for a finished deletion (nothing to write).
pub fn machine_status(
    prev: Option<&MaasMachineStatus>,
    report: &PassReport,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<MaasMachineStatus> {
    let mut s = prev.cloned().unwrap_or_default();
    if let MaasView::Found(m) = &report.maas {
        s.machine_state = Some(m.status_name.clone());
        s.machine_powered = Some(m.power == Power::On);
        if !m.hostname.is_empty() {
            s.hostname = Some(m.hostname.clone());
        }
    }
    // MAAS answered this pass: a credentials problem reported earlier is over.
    if report.maas != MaasView::Unread
        && find_condition(&s.conditions, conditions::MAAS_CREDENTIALS).is_some()
    {
        let update = ConditionUpdate::true_(conditions::MAAS_CREDENTIALS, reasons::READY);
        set_condition(&mut s.conditions, update, generation, now);
    }
    match &report.end {
        PassEnd::Finalized => return None,
        PassEnd::Ready(r) => set_ready(&mut s, r, generation, now),
        PassEnd::Waiting { reason, .. } => {
            // Empty for ordinary waits; the refusal for bad bootstrap data or a refused deploy.
            let message = report.wait_message().or(reason.hint()).unwrap_or_default();
            set_waiting(&mut s, *reason, message, generation, now);
        }
        PassEnd::Failed { reason, message } => {
            set_failed(&mut s, *reason, message, generation, now)
        }
    }
    let paused = matches!(
        report.end,
        PassEnd::Waiting {
            reason: WaitReason::Paused,
            ..
        }
    );
    mark_paused(&mut s.conditions, paused, generation, now);
    Some(s)
}

/// Ready on both contracts, with addresses, hardware and the ready conditions.
fn set_ready(s: &mut MaasMachineStatus, r: &ReadyMachine, generation: Option<i64>, now: Timestamp) {
    s.set_ready(true);
    s.addresses = r.addresses.iter().map(api_address).collect();
    s.interfaces.clone_from(&r.interfaces);
    s.hostname = Some(r.hostname.clone())
        .filter(|h| !h.is_empty())
        .or(s.hostname.take());
    s.failure_reason = None;
    s.failure_message = None;
    let gpus = s.hardware.take().map(|h| h.gpus).unwrap_or_default();
    s.hardware = Some(HardwareInventory {
        cpu_count: i32::try_from(r.cpu_count).ok().filter(|c| *c > 0),
        memory_mib: i64::try_from(r.memory_mib).ok().filter(|m| *m > 0),
        storage_gb: i64::try_from(r.storage_gb).ok().filter(|g| *g > 0),
        gpus,
    });
    for kind in [conditions::MACHINE_PROVISIONED, conditions::READY] {
        let update = ConditionUpdate::true_(kind, reasons::READY);
        set_condition(&mut s.conditions, update, generation, now);
    }
}

/// A wait: before the machine was ready it is part of provisioning (info); after, Ready turns
/// False with a warning and provisioning stays done.
/// Puts what MAAS has free into a capacity wait's conditions (see
/// [`crate::domain::inventory::waiting_message`]), so the user sees which constraint no
/// machine meets.
pub fn note_capacity(
    s: &mut MaasMachineStatus,
    note: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    set_waiting(s, WaitReason::NoMachineAvailable, note, generation, now);
}

fn set_waiting(
    s: &mut MaasMachineStatus,
    reason: WaitReason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let (kinds, severity): (&[&str], _) = if s.ready {
        (&[conditions::READY], ConditionSeverity::Warning)
    } else {
        (
            &[conditions::MACHINE_PROVISIONED, conditions::READY],
            ConditionSeverity::Info,
        )
    };
    for kind in kinds {
        let update = ConditionUpdate::false_(kind, reason.as_str(), severity, message);
        set_condition(&mut s.conditions, update, generation, now);
    }
}

/// A terminal failure, the way both contracts tell it (failureReason, failureMessage, False
/// conditions with an error severity).
fn set_failed(
    s: &mut MaasMachineStatus,
    reason: FailReason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    s.failure_reason = Some(capi_failure_reason(reason).to_string());
    s.failure_message = Some(message.to_string());
    for kind in [conditions::MACHINE_PROVISIONED, conditions::READY] {
        let update =
            ConditionUpdate::false_(kind, reason.as_str(), ConditionSeverity::Error, message);
        set_condition(&mut s.conditions, update, generation, now);
    }
}

/// The MaasMachine status after a failed pass: a Ready=False condition with the error's stable
/// label; the rest is unchanged.
pub fn machine_status_on_error(
    prev: Option<&MaasMachineStatus>,
    label: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> MaasMachineStatus {
    let mut s = prev.cloned().unwrap_or_default();
    set_error_conditions(&mut s.conditions, label, message, generation, now);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maas_machine::ObservedMachine;
    use crate::domain::reasons::WaitReason;
    use crate::machine::decide::ReadyMachine;
    use capmaas_api::ConditionStatus;

    fn now() -> Timestamp {
        "2026-05-01T00:00:00Z".parse().unwrap()
    }

    fn report(end: PassEnd) -> PassReport {
        PassReport {
            end,
            steps: vec![],
            maas: MaasView::Found(ObservedMachine {
                system_id: "s1".into(),
                status_code: 6,
                status_name: "Deployed".into(),
                power: Power::On,
                hostname: "node-1".into(),
                ..Default::default()
            }),
        }
    }

    fn ready() -> PassEnd {
        PassEnd::Ready(ReadyMachine {
            system_id: "s1".into(),
            provider_id: "maas:///az1/s1".into(),
            zone: "az1".into(),
            hostname: "node-1".into(),
            fqdn: "node-1.maas".into(),
            addresses: crate::domain::addresses::machine_addresses(
                "node-1.maas",
                &["10.0.0.5".into()],
            ),
            interfaces: vec![capmaas_api::MachineInterface {
                name: "eno1".into(),
                boot: true,
                addresses: vec![capmaas_api::InterfaceAddress {
                    address: "10.0.0.5".into(),
                    subnet: "10.0.0.0/24".into(),
                    ..Default::default()
                }],
            }],
            powered: true,
            cpu_count: 8,
            memory_mib: 16384,
            storage_gb: 500,
        })
    }

    #[test]
    fn ready_sets_both_contract_fields_addresses_and_conditions() {
        let s = machine_status(None, &report(ready()), Some(3), now()).unwrap();
        assert!(s.ready);
        assert_eq!(
            s.initialization.as_ref().and_then(|i| i.provisioned),
            Some(true)
        );
        assert_eq!(s.addresses.len(), 4);
        assert_eq!(s.interfaces.len(), 1, "which address is on which interface");
        assert!(s.interfaces[0].boot);
        assert_eq!(s.machine_state.as_deref(), Some("Deployed"));
        assert_eq!(s.machine_powered, Some(true));
        let hw = s.hardware.as_ref().unwrap();
        assert_eq!(
            (hw.cpu_count, hw.memory_mib, hw.storage_gb),
            (Some(8), Some(16384), Some(500))
        );
        let c = find_condition(&s.conditions, conditions::READY).unwrap();
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.observed_generation, Some(3));
        // The same pass again changes nothing: no status write.
        let again = machine_status(Some(&s), &report(ready()), Some(3), now()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn paused_condition_follows_the_pause() {
        let paused = PassEnd::Waiting {
            reason: WaitReason::Paused,
            after: None,
        };
        let s = machine_status(None, &report(paused), Some(3), now()).unwrap();
        let c = find_condition(&s.conditions, conditions::PAUSED).unwrap();
        assert_eq!(
            (c.status, c.reason.as_deref(), c.observed_generation),
            (ConditionStatus::True, Some(reasons::PAUSED), Some(3))
        );
        let running = PassEnd::Waiting {
            reason: WaitReason::Deploying,
            after: None,
        };
        let s = machine_status(Some(&s), &report(running), Some(3), now()).unwrap();
        let c = find_condition(&s.conditions, conditions::PAUSED).unwrap();
        assert_eq!(
            (c.status, c.reason.as_deref()),
            (ConditionStatus::False, Some(reasons::NOT_PAUSED))
        );
    }

    #[test]
    fn waiting_and_failure() {
        let waiting = PassEnd::Waiting {
            reason: WaitReason::Deploying,
            after: None,
        };
        let s = machine_status(None, &report(waiting), None, now()).unwrap();
        assert!(!s.ready);
        let c = find_condition(&s.conditions, conditions::MACHINE_PROVISIONED).unwrap();
        assert_eq!(
            (c.status, c.reason.as_deref()),
            (ConditionStatus::False, Some("Deploying"))
        );

        let failed = PassEnd::Failed {
            reason: FailReason::MachineNotFound,
            message: "gone".into(),
        };
        let s = machine_status(Some(&s), &report(failed), None, now()).unwrap();
        assert_eq!(s.failure_reason.as_deref(), Some("UpdateError"));
        assert_eq!(s.failure_message.as_deref(), Some("gone"));
        assert_eq!(
            find_condition(&s.conditions, conditions::READY)
                .unwrap()
                .reason
                .as_deref(),
            Some("MachineNotFound")
        );

        assert_eq!(
            machine_status(None, &report(PassEnd::Finalized), None, now()),
            None
        );
    }

    #[test]
    fn errors_only_touch_the_ready_condition() {
        let base = machine_status(None, &report(ready()), None, now()).unwrap();
        let s = machine_status_on_error(Some(&base), "MaasUnavailable", "503", None, now());
        assert!(
            s.ready,
            "a transient error does not unready a deployed machine"
        );
        let c = find_condition(&s.conditions, conditions::READY).unwrap();
        assert_eq!(
            (c.status, c.reason.as_deref()),
            (ConditionStatus::False, Some("MaasUnavailable"))
        );
        assert!(find_condition(&s.conditions, conditions::MAAS_CREDENTIALS).is_none());

        let s = machine_status_on_error(
            None,
            "MissingCredentials",
            "no MAAS credentials",
            None,
            now(),
        );
        let c = find_condition(&s.conditions, conditions::MAAS_CREDENTIALS).unwrap();
        assert_eq!(
            (c.status, c.reason.as_deref()),
            (ConditionStatus::False, Some("CredentialsMissing"))
        );
        let recovered = machine_status(Some(&s), &report(ready()), None, now()).unwrap();
        let c = find_condition(&recovered.conditions, conditions::MAAS_CREDENTIALS).unwrap();
        assert_eq!(c.status, ConditionStatus::True, "cleared once MAAS answers");
    }
}
