//! Translation from the client's MAAS machine to the facts the decisions read.

use maas_client::{Machine, PowerState};

use crate::decide::{ObservedMachine, Power};

/// The decision's view of a MAAS machine.
pub fn observe(m: &Machine) -> ObservedMachine {
    ObservedMachine {
        system_id: m.system_id.clone(),
        status_code: m.status.code(),
        status_name: if m.status_name.is_empty() {
            m.status.label().to_string()
        } else {
            m.status_name.clone()
        },
        power: match m.power_state {
            PowerState::On => Power::On,
            PowerState::Off => Power::Off,
            _ => Power::Unknown,
        },
        zone: m.zone.clone(),
        hostname: m.hostname.clone(),
        fqdn: m.fqdn.clone(),
        ip_addresses: m.ip_addresses.clone(),
        owner_data: m.owner_data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::MaasPhase;

    #[test]
    fn maps_status_power_and_owner_data() {
        let m: Machine = serde_json::from_value(serde_json::json!({
            "system_id": "s1", "status": 11, "status_name": "Failed deployment",
            "power_state": "off", "zone": {"name": "az2"}, "hostname": "h", "fqdn": "h.maas",
            "ip_addresses": ["10.1.1.1"], "owner_data": {"capmaas-uid": "u"}
        }))
        .unwrap();
        let o = observe(&m);
        assert_eq!(o.phase(), MaasPhase::FailedDeployment);
        assert_eq!(o.power, Power::Off);
        assert_eq!(o.zone.as_deref(), Some("az2"));
        assert_eq!(o.owner_data["capmaas-uid"], "u");
        let unknown: Machine =
            serde_json::from_value(serde_json::json!({"power_state": "error"})).unwrap();
        assert_eq!(observe(&unknown).power, Power::Unknown);
        assert_eq!(observe(&unknown).status_name, "Unknown");
    }
}
