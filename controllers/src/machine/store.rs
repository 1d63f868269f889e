//! The Kubernetes side of a MaasMachine pass: annotations, spec fields, the bootstrap Secret and
//! the finalizer, each written before the pass goes on. [`MachineStore`] is what a pass needs;
//! [`KubeMachineStore`] does it through the API server (tests supply an in-memory one).

use std::future::Future;

use capmaas_api::{MaasMachine, annotations, finalizers};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use serde_json::{Value, json};

use crate::domain::timing::DeployFailures;
use crate::k8s::objects::{merge_patch, set_finalizer};
use crate::machine::source::gpu::{GPU_REJECTED, render_rejected};
use crate::runtime::error::{ReconcileError, Stage};

/// Bootstrap data read from the Machine's data secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapData {
    /// The `value` key.
    pub value: Vec<u8>,
    /// The `format` key, when present.
    pub format: Option<String>,
}

impl std::fmt::Debug for BootstrapData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bootstrap data holds join tokens: never print it.
        f.debug_struct("BootstrapData")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("format", &self.format)
            .finish()
    }
}

/// The Kubernetes writes and reads a MaasMachine pass needs. Each write must be durable when it
/// returns: the next MAAS call relies on it across a crash.
pub trait MachineStore: Send + Sync {
    /// Whether a MAAS step may start now (this replica's hold on the leader Lease lasts).
    fn may_act(&self) -> bool {
        true
    }
    /// Add the allocation-attempt annotation.
    fn mark_attempt(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Record `spec.systemID`.
    fn record_system_id(
        &self,
        system_id: &str,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Add the release-intent annotation and, when given, the failure record.
    fn mark_release_intent(
        &self,
        failures: Option<DeployFailures>,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Clear systemID, providerID and the attempt and intent annotations.
    fn forget(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Read the bootstrap data secret.
    fn bootstrap_data(
        &self,
        secret: &str,
    ) -> impl Future<Output = Result<BootstrapData, ReconcileError>> + Send;
    /// Drop the finalizer.
    fn remove_finalizer(&self) -> impl Future<Output = Result<(), ReconcileError>> + Send;
    /// Write the list of machines set aside for too few GPUs and, when `clear_system_id`,
    /// clear `spec.systemID` in the same write. Stores that never see GPU requests may keep the
    /// default, which refuses.
    fn set_gpu_rejected(
        &self,
        rejected: &[String],
        clear_system_id: bool,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send {
        let _ = (rejected, clear_system_id);
        async {
            Err(ReconcileError::Invalid(
                "this store cannot record machines set aside for GPUs".into(),
            ))
        }
    }
}

/// Writes through the API server.
pub struct KubeMachineStore {
    /// MaasMachines of the namespace.
    pub api: Api<MaasMachine>,
    /// Secrets of the namespace.
    pub secrets: Api<Secret>,
    /// The object's metadata as read at the start of the pass.
    pub meta: ObjectMeta,
    /// The leader Lease's gate.
    pub gate: std::sync::Arc<crate::runtime::lease_gate::ActGate>,
}

impl KubeMachineStore {
    fn name(&self) -> String {
        self.meta.name.clone().unwrap_or_default()
    }

    async fn annotate(&self, values: Value, action: &'static str) -> Result<(), ReconcileError> {
        merge_patch(
            &self.api,
            &self.name(),
            json!({"metadata": {"annotations": values}}),
            action,
        )
        .await
    }
}

impl MachineStore for KubeMachineStore {
    fn may_act(&self) -> bool {
        self.gate.may_act()
    }

    async fn mark_attempt(&self) -> Result<(), ReconcileError> {
        let now = jiff::Timestamp::now().to_string();
        self.annotate(
            json!({ annotations::ALLOCATION_ATTEMPT: now }),
            "mark allocation attempt",
        )
        .await
    }

    async fn record_system_id(&self, system_id: &str) -> Result<(), ReconcileError> {
        merge_patch(
            &self.api,
            &self.name(),
            json!({"spec": {"systemID": system_id}}),
            "record systemID",
        )
        .await
    }

    async fn mark_release_intent(
        &self,
        failures: Option<DeployFailures>,
    ) -> Result<(), ReconcileError> {
        let mut values = json!({ annotations::RELEASE_INTENT: jiff::Timestamp::now().to_string() });
        if let Some(f) = failures {
            values[annotations::DEPLOY_ATTEMPTS] = Value::String(f.render());
        }
        self.annotate(values, "mark release intent").await
    }

    async fn forget(&self) -> Result<(), ReconcileError> {
        let patch = json!({
            "metadata": {"annotations": {annotations::ALLOCATION_ATTEMPT: null, annotations::RELEASE_INTENT: null}},
            "spec": {"systemID": null, "providerID": null},
        });
        merge_patch(&self.api, &self.name(), patch, "forget released machine").await
    }

    async fn bootstrap_data(&self, secret: &str) -> Result<BootstrapData, ReconcileError> {
        let found = self
            .secrets
            .get_opt(secret)
            .await
            .map_err(ReconcileError::kube(Stage::Fetch, "read bootstrap Secret"))?
            .ok_or_else(|| {
                ReconcileError::Invalid(format!("bootstrap Secret {secret} not found"))
            })?;
        let data = found.data.unwrap_or_default();
        let value = data.get("value").map(|v| v.0.clone()).ok_or_else(|| {
            ReconcileError::Invalid(format!("bootstrap Secret {secret} has no `value` key"))
        })?;
        let format = data
            .get("format")
            .and_then(|v| String::from_utf8(v.0.clone()).ok());
        Ok(BootstrapData { value, format })
    }

    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        set_finalizer(&self.api, &self.meta, finalizers::MAAS_MACHINE, false).await
    }

    async fn set_gpu_rejected(
        &self,
        rejected: &[String],
        clear_system_id: bool,
    ) -> Result<(), ReconcileError> {
        let mut patch = json!({
            "metadata": {"annotations": {GPU_REJECTED: render_rejected(rejected)}},
        });
        if clear_system_id {
            patch["spec"] = json!({"systemID": null});
        }
        merge_patch(
            &self.api,
            &self.name(),
            patch,
            "record machines set aside for GPUs",
        )
        .await
    }
}
