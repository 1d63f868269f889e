//! A MAAS that refuses every call, used when no credentials are configured: the decisions still
//! run (gates, waits, finalizer removal of never-allocated machines) and only a step that really
//! needs MAAS fails, with a clear error instead of a crash.

use std::collections::BTreeMap;

use maas_client::{
    AllocateParams, DeployParams, DnsResource, DnsResourceFilter, DnsResourceParams, Domain,
    MaasApi, MaasError, Machine, MachineFilter, NodeDevice, PowerState, ReleaseParams,
    ResourcePool, Version, Zone,
};

/// The refusing MAAS.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMaas;

/// The error every call returns.
pub fn missing() -> MaasError {
    MaasError::Config("no MAAS credentials configured".to_string())
}

impl MaasApi for NoMaas {
    async fn version(&self) -> Result<Version, MaasError> {
        Err(missing())
    }
    async fn list_machines(&self, _: &MachineFilter) -> Result<Vec<Machine>, MaasError> {
        Err(missing())
    }
    async fn read_machine(&self, _: &str) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn allocate(&self, _: &AllocateParams) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn deploy(&self, _: &str, _: &DeployParams) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn release(&self, _: &str, _: &ReleaseParams) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn set_owner_data(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn power_on(&self, _: &str) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn power_off(&self, _: &str) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn query_power_state(&self, _: &str) -> Result<PowerState, MaasError> {
        Err(missing())
    }
    async fn abort(&self, _: &str, _: Option<&str>) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn mark_broken(&self, _: &str, _: Option<&str>) -> Result<Machine, MaasError> {
        Err(missing())
    }
    async fn node_devices(&self, _: &str, _: Option<&str>) -> Result<Vec<NodeDevice>, MaasError> {
        Err(missing())
    }
    async fn zones(&self) -> Result<Vec<Zone>, MaasError> {
        Err(missing())
    }
    async fn resource_pools(&self) -> Result<Vec<ResourcePool>, MaasError> {
        Err(missing())
    }
    async fn domains(&self) -> Result<Vec<Domain>, MaasError> {
        Err(missing())
    }
    async fn list_dns_resources(
        &self,
        _: &DnsResourceFilter,
    ) -> Result<Vec<DnsResource>, MaasError> {
        Err(missing())
    }
    async fn create_dns_resource(&self, _: &DnsResourceParams) -> Result<DnsResource, MaasError> {
        Err(missing())
    }
    async fn update_dns_resource(
        &self,
        _: i64,
        _: &DnsResourceParams,
    ) -> Result<DnsResource, MaasError> {
        Err(missing())
    }
    async fn delete_dns_resource(&self, _: i64) -> Result<(), MaasError> {
        Err(missing())
    }
}
