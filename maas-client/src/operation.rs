//! The named MAAS operations, used as stable labels for metrics, logs and errors.

use std::fmt;

/// One MAAS API operation the client performs.
///
/// A closed set so the metric label `op` has bounded cardinality and every dashboard query keeps
/// working across releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `GET version/`
    Version,
    /// `GET machines/`
    ListMachines,
    /// `GET machines/{id}/`
    ReadMachine,
    /// `POST machines/?op=allocate`
    Allocate,
    /// `POST machines/{id}/?op=deploy`
    Deploy,
    /// `POST machines/{id}/?op=release`
    Release,
    /// `POST machines/{id}/?op=power_on`
    PowerOn,
    /// `POST machines/{id}/?op=power_off`
    PowerOff,
    /// `GET machines/{id}/?op=query_power_state`
    QueryPowerState,
    /// `POST machines/{id}/?op=set_owner_data`
    SetOwnerData,
    /// `POST machines/{id}/?op=abort`
    Abort,
    /// `POST machines/{id}/?op=mark_broken`
    MarkBroken,
    /// `GET nodes/{id}/devices/`
    NodeDevices,
    /// `GET zones/`
    ListZones,
    /// `GET resourcepools/`
    ListResourcePools,
    /// `GET tags/`
    ListTags,
    /// `GET domains/`
    ListDomains,
    /// `GET dnsresources/`
    ListDnsResources,
    /// `GET dnsresources/{id}/`
    ReadDnsResource,
    /// `POST dnsresources/`
    CreateDnsResource,
    /// `PUT dnsresources/{id}/`
    UpdateDnsResource,
    /// `DELETE dnsresources/{id}/`
    DeleteDnsResource,
    /// `GET boot-resources/`
    ListBootResources,
}

impl Operation {
    /// Every operation, for exporters that pre-register label values.
    pub const ALL: [Operation; 23] = [
        Operation::Version,
        Operation::ListMachines,
        Operation::ReadMachine,
        Operation::Allocate,
        Operation::Deploy,
        Operation::Release,
        Operation::PowerOn,
        Operation::PowerOff,
        Operation::QueryPowerState,
        Operation::SetOwnerData,
        Operation::Abort,
        Operation::MarkBroken,
        Operation::NodeDevices,
        Operation::ListZones,
        Operation::ListResourcePools,
        Operation::ListTags,
        Operation::ListDomains,
        Operation::ListDnsResources,
        Operation::ReadDnsResource,
        Operation::CreateDnsResource,
        Operation::UpdateDnsResource,
        Operation::DeleteDnsResource,
        Operation::ListBootResources,
    ];

    /// The stable snake_case label (the `op` label of `capmaas_maas_requests_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Version => "version",
            Operation::ListMachines => "list_machines",
            Operation::ReadMachine => "read_machine",
            Operation::Allocate => "allocate",
            Operation::Deploy => "deploy",
            Operation::Release => "release",
            Operation::PowerOn => "power_on",
            Operation::PowerOff => "power_off",
            Operation::QueryPowerState => "query_power_state",
            Operation::SetOwnerData => "set_owner_data",
            Operation::Abort => "abort",
            Operation::MarkBroken => "mark_broken",
            Operation::NodeDevices => "node_devices",
            Operation::ListZones => "list_zones",
            Operation::ListResourcePools => "list_resource_pools",
            Operation::ListTags => "list_tags",
            Operation::ListDomains => "list_domains",
            Operation::ListDnsResources => "list_dns_resources",
            Operation::ReadDnsResource => "read_dns_resource",
            Operation::CreateDnsResource => "create_dns_resource",
            Operation::UpdateDnsResource => "update_dns_resource",
            Operation::DeleteDnsResource => "delete_dns_resource",
            Operation::ListBootResources => "list_boot_resources",
        }
    }
}

impl Operation {
    /// Whether sending the operation twice can do more than sending it once. Such a call whose
    /// outcome is unknown (MAAS may have acted, the answer was lost) is never resent: the caller
    /// finds out by looking.
    pub fn is_non_idempotent(self) -> bool {
        matches!(
            self,
            Operation::Allocate
                | Operation::Deploy
                | Operation::Release
                | Operation::PowerOn
                | Operation::PowerOff
                | Operation::Abort
                | Operation::MarkBroken
                | Operation::CreateDnsResource
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calls_that_change_state_by_being_sent_are_non_idempotent() {
        let changing: Vec<&str> = Operation::ALL
            .iter()
            .filter(|op| op.is_non_idempotent())
            .map(|op| op.as_str())
            .collect();
        assert_eq!(
            changing,
            [
                "allocate",
                "deploy",
                "release",
                "power_on",
                "power_off",
                "abort",
                "mark_broken",
                "create_dns_resource"
            ]
        );
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let labels: std::collections::BTreeSet<&str> =
            Operation::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(labels.len(), Operation::ALL.len());
        for label in labels {
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
        }
    }
}
