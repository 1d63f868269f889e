//! The machine addresses CAPI copies to the Machine and uses to find the Node.

/// The address kinds of the CAPI contract that we report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressKind {
    /// A name resolvable inside the cluster network.
    InternalDns,
    /// A name resolvable from outside.
    ExternalDns,
    /// An IP reachable inside the cluster network.
    InternalIp,
    /// An IP reachable from outside.
    ExternalIp,
}

impl AddressKind {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::InternalDns => "InternalDNS",
            AddressKind::ExternalDns => "ExternalDNS",
            AddressKind::InternalIp => "InternalIP",
            AddressKind::ExternalIp => "ExternalIP",
        }
    }
}

/// One machine address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineAddress {
    /// The contract type.
    pub kind: AddressKind,
    /// The name or IP.
    pub address: String,
}

/// The addresses of a deployed machine. MAAS does not say which network is internal, so the FQDN
/// is reported as both DNS kinds and every IP as both IP kinds: CAPI and the kubeadm control plane
/// then find the machine whichever kind they look for. Blank entries and repeats are dropped.
pub fn machine_addresses(fqdn: &str, ips: &[String]) -> Vec<MachineAddress> {
    let mut out = Vec::new();
    let fqdn = fqdn.trim();
    if !fqdn.is_empty() {
        for kind in [AddressKind::InternalDns, AddressKind::ExternalDns] {
            out.push(MachineAddress {
                kind,
                address: fqdn.to_string(),
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for ip in ips.iter().map(|ip| ip.trim()).filter(|ip| !ip.is_empty()) {
        if !seen.insert(ip) {
            continue;
        }
        for kind in [AddressKind::InternalIp, AddressKind::ExternalIp] {
            out.push(MachineAddress {
                kind,
                address: ip.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(addrs: &[MachineAddress]) -> Vec<String> {
        addrs
            .iter()
            .map(|a| format!("{}={}", a.kind.as_str(), a.address))
            .collect()
    }

    #[test]
    fn fqdn_and_each_ip_in_both_kinds() {
        let ips = vec![
            "10.0.0.5".to_string(),
            "192.168.1.5".to_string(),
            "10.0.0.5".to_string(),
            " ".to_string(),
        ];
        assert_eq!(
            render(&machine_addresses("node-1.maas", &ips)),
            [
                "InternalDNS=node-1.maas",
                "ExternalDNS=node-1.maas",
                "InternalIP=10.0.0.5",
                "ExternalIP=10.0.0.5",
                "InternalIP=192.168.1.5",
                "ExternalIP=192.168.1.5",
            ]
        );
    }

    #[test]
    fn nothing_known_gives_nothing() {
        assert!(machine_addresses("", &[]).is_empty());
        assert_eq!(
            render(&machine_addresses("", &["10.1.1.1".into()])).len(),
            2
        );
    }
}
