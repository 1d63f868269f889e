//! The operations controllers need, as a trait so reconcilers can be tested with a fake MAAS.

use std::collections::BTreeMap;
use std::future::Future;

use reqwest::Method;

use crate::client::{Call, MaasClient};
use crate::error::MaasError;
use crate::operation::Operation;
use crate::params::{
    AllocateParams, DeployParams, DnsResourceFilter, DnsResourceParams, MachineFilter,
    ReleaseParams, owner_data_pairs,
};
use crate::types::{
    BootResource, DnsResource, Domain, Machine, NodeDevice, PowerState, PowerStateReply,
    ResourcePool, Tag, Version, Zone,
};

/// The MAAS operations the provider uses.
///
/// Implemented by [`MaasClient`]; tests implement it with an in-memory fake. Every future is
/// `Send`, so implementations can be driven from spawned tokio tasks.
pub trait MaasApi: Send + Sync {
    /// `GET version/`: reachability and credentials check.
    fn version(&self) -> impl Future<Output = Result<Version, MaasError>> + Send;

    /// `GET machines/` with filters (no pagination in MAAS).
    fn list_machines(
        &self,
        filter: &MachineFilter,
    ) -> impl Future<Output = Result<Vec<Machine>, MaasError>> + Send;

    /// `GET machines/{id}/`.
    fn read_machine(
        &self,
        system_id: &str,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/?op=allocate`: takes the cheapest Ready machine matching the constraints
    /// (409 [`MaasError::Conflict`] when none does).
    fn allocate(
        &self,
        params: &AllocateParams,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=deploy`.
    fn deploy(
        &self,
        system_id: &str,
        params: &DeployParams,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=release`.
    fn release(
        &self,
        system_id: &str,
        params: &ReleaseParams,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=set_owner_data`: sets each key; an empty value deletes the key.
    fn set_owner_data(
        &self,
        system_id: &str,
        data: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=power_on`.
    fn power_on(&self, system_id: &str) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=power_off`.
    fn power_off(&self, system_id: &str)
    -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `GET machines/{id}/?op=query_power_state`: asks the power driver now.
    fn query_power_state(
        &self,
        system_id: &str,
    ) -> impl Future<Output = Result<PowerState, MaasError>> + Send;

    /// `POST machines/{id}/?op=abort`: stops a running deployment.
    fn abort(
        &self,
        system_id: &str,
        comment: Option<&str>,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `POST machines/{id}/?op=mark_broken`.
    fn mark_broken(
        &self,
        system_id: &str,
        comment: Option<&str>,
    ) -> impl Future<Output = Result<Machine, MaasError>> + Send;

    /// `GET nodes/{id}/devices/`, optionally filtered by `hardware_type` (e.g. `gpu`).
    fn node_devices(
        &self,
        system_id: &str,
        hardware_type: Option<&str>,
    ) -> impl Future<Output = Result<Vec<NodeDevice>, MaasError>> + Send;

    /// `GET zones/`.
    fn zones(&self) -> impl Future<Output = Result<Vec<Zone>, MaasError>> + Send;

    /// `GET resourcepools/`.
    fn resource_pools(&self) -> impl Future<Output = Result<Vec<ResourcePool>, MaasError>> + Send;

    /// `GET domains/`.
    fn domains(&self) -> impl Future<Output = Result<Vec<Domain>, MaasError>> + Send;

    /// `GET dnsresources/` with filters.
    fn list_dns_resources(
        &self,
        filter: &DnsResourceFilter,
    ) -> impl Future<Output = Result<Vec<DnsResource>, MaasError>> + Send;

    /// `POST dnsresources/`.
    fn create_dns_resource(
        &self,
        params: &DnsResourceParams,
    ) -> impl Future<Output = Result<DnsResource, MaasError>> + Send;

    /// `PUT dnsresources/{id}/`.
    fn update_dns_resource(
        &self,
        id: i64,
        params: &DnsResourceParams,
    ) -> impl Future<Output = Result<DnsResource, MaasError>> + Send;

    /// `DELETE dnsresources/{id}/`.
    fn delete_dns_resource(&self, id: i64) -> impl Future<Output = Result<(), MaasError>> + Send;
}

fn comment_pairs(comment: Option<&str>) -> Vec<(String, String)> {
    comment
        .map(|c| vec![("comment".to_owned(), c.to_owned())])
        .unwrap_or_default()
}

impl MaasApi for MaasClient {
    async fn version(&self) -> Result<Version, MaasError> {
        self.json(Call::new(Operation::Version, Method::GET, &["version"]))
            .await
    }

    async fn list_machines(&self, filter: &MachineFilter) -> Result<Vec<Machine>, MaasError> {
        let call =
            Call::new(Operation::ListMachines, Method::GET, &["machines"]).query(filter.to_pairs());
        self.json(call).await
    }

    async fn read_machine(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.json(Call::new(
            Operation::ReadMachine,
            Method::GET,
            &["machines", system_id],
        ))
        .await
    }

    async fn allocate(&self, params: &AllocateParams) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::Allocate, Method::POST, &["machines"])
            .api_op("allocate")
            .form(params.to_pairs());
        self.json(call).await
    }

    async fn deploy(&self, system_id: &str, params: &DeployParams) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::Deploy, Method::POST, &["machines", system_id])
            .api_op("deploy")
            .form(params.to_pairs());
        self.json(call).await
    }

    async fn release(&self, system_id: &str, params: &ReleaseParams) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::Release, Method::POST, &["machines", system_id])
            .api_op("release")
            .form(params.to_pairs());
        self.json(call).await
    }

    async fn set_owner_data(
        &self,
        system_id: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<Machine, MaasError> {
        let call = Call::new(
            Operation::SetOwnerData,
            Method::POST,
            &["machines", system_id],
        )
        .api_op("set_owner_data")
        .form(owner_data_pairs(data));
        self.json(call).await
    }

    async fn power_on(&self, system_id: &str) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::PowerOn, Method::POST, &["machines", system_id])
            .api_op("power_on")
            .form(Vec::new());
        self.json(call).await
    }

    async fn power_off(&self, system_id: &str) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::PowerOff, Method::POST, &["machines", system_id])
            .api_op("power_off")
            .form(Vec::new());
        self.json(call).await
    }

    async fn query_power_state(&self, system_id: &str) -> Result<PowerState, MaasError> {
        let call = Call::new(
            Operation::QueryPowerState,
            Method::GET,
            &["machines", system_id],
        )
        .api_op("query_power_state");
        let reply: PowerStateReply = self.json(call).await?;
        Ok(reply.state)
    }

    async fn abort(&self, system_id: &str, comment: Option<&str>) -> Result<Machine, MaasError> {
        let call = Call::new(Operation::Abort, Method::POST, &["machines", system_id])
            .api_op("abort")
            .form(comment_pairs(comment));
        self.json(call).await
    }

    async fn mark_broken(
        &self,
        system_id: &str,
        comment: Option<&str>,
    ) -> Result<Machine, MaasError> {
        let call = Call::new(
            Operation::MarkBroken,
            Method::POST,
            &["machines", system_id],
        )
        .api_op("mark_broken")
        .form(comment_pairs(comment));
        self.json(call).await
    }

    async fn node_devices(
        &self,
        system_id: &str,
        hardware_type: Option<&str>,
    ) -> Result<Vec<NodeDevice>, MaasError> {
        let query = hardware_type
            .map(|t| vec![("hardware_type".to_owned(), t.to_owned())])
            .unwrap_or_default();
        let call = Call::new(
            Operation::NodeDevices,
            Method::GET,
            &["nodes", system_id, "devices"],
        )
        .query(query);
        self.json(call).await
    }

    async fn zones(&self) -> Result<Vec<Zone>, MaasError> {
        self.json(Call::new(Operation::ListZones, Method::GET, &["zones"]))
            .await
    }

    async fn resource_pools(&self) -> Result<Vec<ResourcePool>, MaasError> {
        self.json(Call::new(
            Operation::ListResourcePools,
            Method::GET,
            &["resourcepools"],
        ))
        .await
    }

    async fn domains(&self) -> Result<Vec<Domain>, MaasError> {
        self.json(Call::new(Operation::ListDomains, Method::GET, &["domains"]))
            .await
    }

    async fn list_dns_resources(
        &self,
        filter: &DnsResourceFilter,
    ) -> Result<Vec<DnsResource>, MaasError> {
        let call = Call::new(Operation::ListDnsResources, Method::GET, &["dnsresources"])
            .query(filter.to_pairs());
        self.json(call).await
    }

    async fn create_dns_resource(
        &self,
        params: &DnsResourceParams,
    ) -> Result<DnsResource, MaasError> {
        let call = Call::new(
            Operation::CreateDnsResource,
            Method::POST,
            &["dnsresources"],
        )
        .form(params.to_pairs());
        self.json(call).await
    }

    async fn update_dns_resource(
        &self,
        id: i64,
        params: &DnsResourceParams,
    ) -> Result<DnsResource, MaasError> {
        let id = id.to_string();
        let call = Call::new(
            Operation::UpdateDnsResource,
            Method::PUT,
            &["dnsresources", &id],
        )
        .form(params.to_pairs());
        self.json(call).await
    }

    async fn delete_dns_resource(&self, id: i64) -> Result<(), MaasError> {
        let id = id.to_string();
        let call = Call::new(
            Operation::DeleteDnsResource,
            Method::DELETE,
            &["dnsresources", &id],
        );
        self.execute(call).await.map(|_| ())
    }
}

/// Calls that only tools and tests need; kept off [`MaasApi`] so fakes stay small.
impl MaasClient {
    /// `GET tags/`.
    pub async fn tags(&self) -> Result<Vec<Tag>, MaasError> {
        self.json(Call::new(Operation::ListTags, Method::GET, &["tags"]))
            .await
    }

    /// `GET boot-resources/`.
    pub async fn boot_resources(&self) -> Result<Vec<BootResource>, MaasError> {
        self.json(Call::new(
            Operation::ListBootResources,
            Method::GET,
            &["boot-resources"],
        ))
        .await
    }

    /// `GET dnsresources/{id}/`.
    pub async fn read_dns_resource(&self, id: i64) -> Result<DnsResource, MaasError> {
        let id = id.to_string();
        self.json(Call::new(
            Operation::ReadDnsResource,
            Method::GET,
            &["dnsresources", &id],
        ))
        .await
    }
}
