//! Which addresses of a control-plane machine the API endpoint's DNS record takes. A machine
//! with a PXE network and a data network has an address on each, and only one of them is where
//! the API server should be reached.

use std::net::IpAddr;

use capmaas_api::{EndpointNetworks, MachineInterface};
use ipnet::IpNet;

/// The Go provider's ConfigMap naming the subnets of the endpoint record, in the cluster's
/// namespace, and its key: comma-separated CIDRs.
pub const PREFERRED_SUBNET_CONFIGMAP: &str = "maas-preferred-subnet";
/// The key of [`PREFERRED_SUBNET_CONFIGMAP`].
pub const PREFERRED_SUBNET_KEY: &str = "preferredSubnets";

/// How a cluster chooses its endpoint addresses.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointChoice {
    /// The networks `spec.endpointNetworks` names.
    Named(EndpointNetworks),
    /// The CIDRs of the `maas-preferred-subnet` ConfigMap.
    Preferred(Vec<IpNet>),
    /// Each machine's boot interface (the default).
    BootInterface,
}

/// The choice for a cluster: the MaasCluster's networks when it names any, else the ConfigMap's
/// CIDRs when it holds any valid one (entries that do not parse are skipped, and a ConfigMap
/// with none is as good as no ConfigMap), else the boot interface.
pub fn endpoint_choice(spec: Option<&EndpointNetworks>, preferred: Option<&str>) -> EndpointChoice {
    if let Some(networks) = spec.filter(|n| !n.is_empty()) {
        return EndpointChoice::Named(networks.clone());
    }
    let cidrs: Vec<IpNet> = preferred
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    if cidrs.is_empty() {
        EndpointChoice::BootInterface
    } else {
        EndpointChoice::Preferred(cidrs)
    }
}

/// The machine's addresses the record takes. `ips` are all its IPs, for a status written
/// before interfaces were recorded (a machine the Go provider deployed, or an older manager):
/// without interfaces the boot choice cannot be made and takes them all, as before.
pub fn endpoint_ips(
    choice: &EndpointChoice,
    interfaces: &[MachineInterface],
    ips: &[String],
) -> Vec<String> {
    match choice {
        EndpointChoice::Named(networks) => interfaces
            .iter()
            .flat_map(|nic| &nic.addresses)
            .filter(|a| networks.admits(a))
            .map(|a| a.address.clone())
            .collect(),
        EndpointChoice::Preferred(cidrs) => ips
            .iter()
            .filter(|ip| {
                ip.trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| cidrs.iter().any(|net| net.contains(&ip)))
            })
            .cloned()
            .collect(),
        EndpointChoice::BootInterface => match interfaces.iter().find(|nic| nic.boot) {
            Some(boot) => boot.addresses.iter().map(|a| a.address.clone()).collect(),
            None => ips.to_vec(),
        },
    }
}

#[cfg(test)]
mod tests {
    use capmaas_api::InterfaceAddress;

    use super::*;

    fn nic(name: &str, boot: bool, address: &str, subnet: &str, space: &str) -> MachineInterface {
        MachineInterface {
            name: name.into(),
            boot,
            addresses: vec![InterfaceAddress {
                address: address.into(),
                subnet: subnet.into(),
                subnet_name: format!("{name}-net"),
                space: space.into(),
                fabric: format!("fabric-{name}"),
            }],
        }
    }

    fn two_nics() -> Vec<MachineInterface> {
        vec![
            nic("eno1", true, "10.20.0.11", "10.20.0.0/16", "undefined"),
            nic("eno2", false, "10.21.0.11", "10.21.0.0/24", "data"),
        ]
    }

    fn all_ips() -> Vec<String> {
        vec!["10.20.0.11".into(), "10.21.0.11".into()]
    }

    #[test]
    fn by_default_only_the_boot_interface_counts() {
        let choice = endpoint_choice(None, None);
        assert_eq!(choice, EndpointChoice::BootInterface);
        assert_eq!(
            endpoint_ips(&choice, &two_nics(), &all_ips()),
            ["10.20.0.11"]
        );
        // A status without interfaces (the Go provider's, an older manager's) keeps every IP.
        assert_eq!(endpoint_ips(&choice, &[], &all_ips()), all_ips());
    }

    #[test]
    fn named_networks_pick_by_subnet_space_or_fabric() {
        for networks in [
            EndpointNetworks {
                subnets: vec!["10.21.0.0/24".into()],
                ..Default::default()
            },
            EndpointNetworks {
                spaces: vec!["data".into()],
                ..Default::default()
            },
            EndpointNetworks {
                fabrics: vec!["fabric-eno2".into()],
                ..Default::default()
            },
        ] {
            let choice = endpoint_choice(Some(&networks), Some("10.20.0.0/16"));
            assert_eq!(
                endpoint_ips(&choice, &two_nics(), &all_ips()),
                ["10.21.0.11"],
                "{networks:?} wins over the ConfigMap"
            );
        }
        let nowhere = EndpointChoice::Named(EndpointNetworks {
            subnets: vec!["192.168.0.0/24".into()],
            ..Default::default()
        });
        assert!(endpoint_ips(&nowhere, &two_nics(), &all_ips()).is_empty());
    }

    #[test]
    fn the_go_providers_configmap_is_read_as_it_writes_it() {
        let choice = endpoint_choice(
            Some(&EndpointNetworks::default()),
            Some(" 10.21.0.0/24, bad, fd00::/8 "),
        );
        assert_eq!(
            choice,
            EndpointChoice::Preferred(vec![
                "10.21.0.0/24".parse().unwrap(),
                "fd00::/8".parse().unwrap()
            ])
        );
        assert_eq!(
            endpoint_ips(&choice, &two_nics(), &all_ips()),
            ["10.21.0.11"]
        );
        let v6 = vec!["fd00::5".to_string(), "10.20.0.11".to_string()];
        assert_eq!(endpoint_ips(&choice, &[], &v6), ["fd00::5"]);
        // Nothing valid in it: the default, not an empty record.
        assert_eq!(
            endpoint_choice(None, Some("")),
            EndpointChoice::BootInterface
        );
        assert_eq!(
            endpoint_choice(None, Some("nonsense,")),
            EndpointChoice::BootInterface
        );
    }
}
