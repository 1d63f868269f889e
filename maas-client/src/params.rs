//! Typed parameters of the MAAS calls, and their encoding as form or query pairs.
//!
//! MAAS reads lists as repeated keys (`tags=a&tags=b`) and booleans as `true`; it silently
//! ignores JSON bodies, so every parameter goes through these pair lists.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use crate::types::MachineStatus;

/// Ordered key/value pairs sent as a form body or a query string; repeated keys are lists.
pub type Pairs = Vec<(String, String)>;

fn push(pairs: &mut Pairs, key: &str, value: impl Into<String>) {
    pairs.push((key.to_owned(), value.into()));
}

fn push_opt(pairs: &mut Pairs, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        push(pairs, key, value);
    }
}

fn push_all(pairs: &mut Pairs, key: &str, values: &[String]) {
    for value in values {
        push(pairs, key, value.as_str());
    }
}

fn push_flag(pairs: &mut Pairs, key: &str, set: bool) {
    if set {
        push(pairs, key, "true");
    }
}

/// Constraints for `POST machines/?op=allocate`. Unset fields are not sent, so MAAS applies no
/// constraint for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocateParams {
    /// Minimum CPU cores.
    pub cpu_count: Option<u32>,
    /// Minimum memory in MiB.
    pub mem: Option<u64>,
    /// Tags the machine must all carry.
    pub tags: Vec<String>,
    /// Tags the machine must not carry.
    pub not_tags: Vec<String>,
    /// Zone to allocate in.
    pub zone: Option<String>,
    /// Zones to avoid.
    pub not_in_zone: Vec<String>,
    /// Resource pool to allocate from.
    pub pool: Option<String>,
    /// Storage constraint in MAAS syntax: a size in GB (`100`) or labelled disks
    /// (`root:100(ssd),data:500`).
    pub storage: Option<String>,
    /// Device constraint, e.g. `vendor_id=10de,product_name=H100` (see [`DeviceConstraint`]).
    pub devices: Option<String>,
    /// Architecture (`amd64`, `arm64/generic`); MAAS matches a bare name against every
    /// sub-architecture.
    pub arch: Option<String>,
    /// Ask for this exact machine.
    pub system_id: Option<String>,
    /// Opaque owner marker stored by MAAS (filterable, never shown), used to find our machines.
    pub agent_name: Option<String>,
    /// Free-text comment for the MAAS event log.
    pub comment: Option<String>,
    /// Check the constraints without allocating.
    pub dry_run: bool,
}

impl AllocateParams {
    /// The form pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        if let Some(cpu) = self.cpu_count {
            push(&mut p, "cpu_count", cpu.to_string());
        }
        if let Some(mem) = self.mem {
            push(&mut p, "mem", mem.to_string());
        }
        push_all(&mut p, "tags", &self.tags);
        push_all(&mut p, "not_tags", &self.not_tags);
        push_opt(&mut p, "zone", self.zone.as_deref());
        push_all(&mut p, "not_in_zone", &self.not_in_zone);
        push_opt(&mut p, "pool", self.pool.as_deref());
        push_opt(&mut p, "storage", self.storage.as_deref());
        push_opt(&mut p, "devices", self.devices.as_deref());
        push_opt(&mut p, "arch", self.arch.as_deref());
        push_opt(&mut p, "system_id", self.system_id.as_deref());
        push_opt(&mut p, "agent_name", self.agent_name.as_deref());
        push_opt(&mut p, "comment", self.comment.as_deref());
        push_flag(&mut p, "dry_run", self.dry_run);
        p
    }
}

/// One device filter for the allocate `devices` constraint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceConstraint {
    /// PCI vendor id, e.g. `10de` (NVIDIA).
    pub vendor_id: Option<String>,
    /// PCI product id.
    pub product_id: Option<String>,
    /// Vendor name.
    pub vendor_name: Option<String>,
    /// Product name.
    pub product_name: Option<String>,
    /// Kernel driver used at commissioning.
    pub commissioning_driver: Option<String>,
}

impl DeviceConstraint {
    /// The `key=value,...` text MAAS parses; `None` when no field is set.
    pub fn to_constraint(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("vendor_id", &self.vendor_id),
            ("product_id", &self.product_id),
            ("vendor_name", &self.vendor_name),
            ("product_name", &self.product_name),
            ("commissioning_driver", &self.commissioning_driver),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={v}")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// Parameters for `POST machines/{id}/?op=deploy`.
///
/// `Debug` shows only the length of `user_data`: it carries bootstrap secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DeployParams {
    /// Series or image name, e.g. `jammy`, `ubuntu/jammy` or a custom image.
    pub distro_series: Option<String>,
    /// Raw cloud-init or Ignition data; the client base64-encodes it.
    pub user_data: Option<Vec<u8>>,
    /// Kernel, e.g. `hwe-22.04`.
    pub hwe_kernel: Option<String>,
    /// Deploy to memory instead of disk.
    pub ephemeral_deploy: bool,
    /// Owner marker (same meaning as on allocate).
    pub agent_name: Option<String>,
}

impl DeployParams {
    /// The form pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_opt(&mut p, "distro_series", self.distro_series.as_deref());
        if let Some(data) = &self.user_data {
            push(
                &mut p,
                "user_data",
                base64::engine::general_purpose::STANDARD.encode(data),
            );
        }
        push_opt(&mut p, "hwe_kernel", self.hwe_kernel.as_deref());
        push_flag(&mut p, "ephemeral_deploy", self.ephemeral_deploy);
        push_opt(&mut p, "agent_name", self.agent_name.as_deref());
        p
    }
}

impl fmt::Debug for DeployParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeployParams")
            .field("distro_series", &self.distro_series)
            .field(
                "user_data",
                &self
                    .user_data
                    .as_ref()
                    .map(|d| format!("<{} bytes>", d.len())),
            )
            .field("hwe_kernel", &self.hwe_kernel)
            .field("ephemeral_deploy", &self.ephemeral_deploy)
            .field("agent_name", &self.agent_name)
            .finish()
    }
}

/// Parameters for `POST machines/{id}/?op=release`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseParams {
    /// Erase the disks before the machine becomes Ready.
    pub erase: bool,
    /// Quick erase (wipe the start and end of each disk); needs `erase`.
    pub quick_erase: bool,
    /// Secure erase where the disks support it; needs `erase`.
    pub secure_erase: bool,
    /// Release even when MAAS would refuse (e.g. a machine in a bad state).
    pub force: bool,
    /// Free-text comment for the MAAS event log.
    pub comment: Option<String>,
}

impl ReleaseParams {
    /// The form pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_flag(&mut p, "erase", self.erase);
        push_flag(&mut p, "quick_erase", self.quick_erase);
        push_flag(&mut p, "secure_erase", self.secure_erase);
        push_flag(&mut p, "force", self.force);
        push_opt(&mut p, "comment", self.comment.as_deref());
        p
    }
}

/// Filters for `GET machines/`; all given filters must match. Empty means every machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineFilter {
    /// System ids (repeated key: any of them), for batch reads of deploying machines.
    pub id: Vec<String>,
    /// Only machines allocated with this agent name.
    pub agent_name: Option<String>,
    /// Host names (any of them).
    pub hostname: Vec<String>,
    /// Zone name.
    pub zone: Option<String>,
    /// Pool name.
    pub pool: Option<String>,
    /// Tags the machines must carry.
    pub tags: Vec<String>,
    /// Status.
    pub status: Option<MachineStatus>,
}

impl MachineFilter {
    /// The query pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_all(&mut p, "id", &self.id);
        push_opt(&mut p, "agent_name", self.agent_name.as_deref());
        push_all(&mut p, "hostname", &self.hostname);
        push_opt(&mut p, "zone", self.zone.as_deref());
        push_opt(&mut p, "pool", self.pool.as_deref());
        push_all(&mut p, "tags", &self.tags);
        push_opt(
            &mut p,
            "status",
            self.status.and_then(MachineStatus::filter_name),
        );
        p
    }
}

/// The form pairs of `set_owner_data`: one pair per key; an empty value deletes that key.
pub fn owner_data_pairs(data: &BTreeMap<String, String>) -> Pairs {
    data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Filters for `GET dnsresources/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsResourceFilter {
    /// Domain name.
    pub domain: Option<String>,
    /// Host part of the name.
    pub name: Option<String>,
}

impl DnsResourceFilter {
    /// The query pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_opt(&mut p, "domain", self.domain.as_deref());
        push_opt(&mut p, "name", self.name.as_deref());
        p
    }
}

/// Parameters for `POST dnsresources/` (create) and `PUT dnsresources/{id}/` (update).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsResourceParams {
    /// Fully qualified name (create); on update, `None` keeps the name.
    pub fqdn: Option<String>,
    /// Addresses; sent space-separated as MAAS expects. On update, `None` keeps them.
    pub ip_addresses: Option<Vec<String>>,
    /// TTL of the address records.
    pub address_ttl: Option<u32>,
}

impl DnsResourceParams {
    /// The form pairs MAAS expects.
    pub fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_opt(&mut p, "fqdn", self.fqdn.as_deref());
        if let Some(ips) = &self.ip_addresses {
            push(&mut p, "ip_addresses", ips.join(" "));
        }
        if let Some(ttl) = self.address_ttl {
            push(&mut p, "address_ttl", ttl.to_string());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn allocate_sends_every_constraint_and_repeats_lists() {
        let params = AllocateParams {
            cpu_count: Some(4),
            mem: Some(8192),
            tags: vec!["gpu".into(), "nvme".into()],
            not_tags: vec!["old".into()],
            zone: Some("az1".into()),
            not_in_zone: vec!["az9".into(), "az8".into()],
            pool: Some("prod".into()),
            storage: Some("100".into()),
            devices: DeviceConstraint {
                vendor_id: Some("10de".into()),
                product_name: Some("H100".into()),
                ..Default::default()
            }
            .to_constraint(),
            arch: Some("arm64/generic".into()),
            system_id: Some("abc123".into()),
            agent_name: Some("capmaas:uid-1".into()),
            comment: Some("for cluster c1".into()),
            dry_run: true,
        };
        assert_eq!(
            params.to_pairs(),
            pairs(&[
                ("cpu_count", "4"),
                ("mem", "8192"),
                ("tags", "gpu"),
                ("tags", "nvme"),
                ("not_tags", "old"),
                ("zone", "az1"),
                ("not_in_zone", "az9"),
                ("not_in_zone", "az8"),
                ("pool", "prod"),
                ("storage", "100"),
                ("devices", "vendor_id=10de,product_name=H100"),
                ("arch", "arm64/generic"),
                ("system_id", "abc123"),
                ("agent_name", "capmaas:uid-1"),
                ("comment", "for cluster c1"),
                ("dry_run", "true"),
            ])
        );
        assert!(AllocateParams::default().to_pairs().is_empty());
    }

    #[test]
    fn deploy_base64_encodes_user_data_and_debug_hides_it() {
        let params = DeployParams {
            distro_series: Some("jammy".into()),
            user_data: Some(b"#cloud-config\ntoken: s3cret\n".to_vec()),
            hwe_kernel: Some("hwe-22.04".into()),
            ephemeral_deploy: true,
            agent_name: Some("capmaas:u".into()),
        };
        assert_eq!(
            params.to_pairs(),
            pairs(&[
                ("distro_series", "jammy"),
                ("user_data", "I2Nsb3VkLWNvbmZpZwp0b2tlbjogczNjcmV0Cg=="),
                ("hwe_kernel", "hwe-22.04"),
                ("ephemeral_deploy", "true"),
                ("agent_name", "capmaas:u"),
            ])
        );
        let shown = format!("{params:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("I2Nsb3Vk"));
        assert!(shown.contains("<28 bytes>"));
    }

    #[test]
    fn release_flags() {
        let params = ReleaseParams {
            erase: true,
            quick_erase: true,
            secure_erase: false,
            force: true,
            comment: Some("bye".into()),
        };
        assert_eq!(
            params.to_pairs(),
            pairs(&[
                ("erase", "true"),
                ("quick_erase", "true"),
                ("force", "true"),
                ("comment", "bye")
            ])
        );
    }

    #[test]
    fn machine_filter_repeats_ids_and_names_the_status() {
        let filter = MachineFilter {
            id: vec!["a".into(), "b".into()],
            agent_name: Some("capmaas:u".into()),
            hostname: vec!["h1".into()],
            zone: Some("z".into()),
            pool: Some("p".into()),
            tags: vec!["t1".into(), "t2".into()],
            status: Some(MachineStatus::FailedDeployment),
        };
        assert_eq!(
            filter.to_pairs(),
            pairs(&[
                ("id", "a"),
                ("id", "b"),
                ("agent_name", "capmaas:u"),
                ("hostname", "h1"),
                ("zone", "z"),
                ("pool", "p"),
                ("tags", "t1"),
                ("tags", "t2"),
                ("status", "failed_deployment"),
            ])
        );
    }

    #[test]
    fn owner_data_keeps_empty_values_for_deletion() {
        let data: BTreeMap<String, String> = [
            ("capmaas-uid".to_owned(), "u1".to_owned()),
            ("stale".to_owned(), String::new()),
        ]
        .into();
        assert_eq!(
            owner_data_pairs(&data),
            pairs(&[("capmaas-uid", "u1"), ("stale", "")])
        );
    }

    #[test]
    fn dns_resource_ips_are_space_separated() {
        let params = DnsResourceParams {
            fqdn: Some("c1-ab12.maas".into()),
            ip_addresses: Some(vec!["10.0.0.5".into(), "10.0.0.6".into()]),
            address_ttl: Some(10),
        };
        assert_eq!(
            params.to_pairs(),
            pairs(&[
                ("fqdn", "c1-ab12.maas"),
                ("ip_addresses", "10.0.0.5 10.0.0.6"),
                ("address_ttl", "10")
            ])
        );
        assert_eq!(DeviceConstraint::default().to_constraint(), None);
    }
}
