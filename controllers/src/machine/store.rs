//! The Kubernetes side of a MaasMachine pass: annotations, spec fields, the bootstrap Secret and
//! the finalizer, each written before the pass goes on.

use capmaas_api::{MaasMachine, annotations, finalizers};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use serde_json::{Value, json};

use crate::domain::timing::DeployFailures;
use crate::k8s::objects::{merge_patch, set_finalizer};
use crate::machine::source::gpu::{GPU_REJECTED, render_rejected};
use crate::machine::steps::BootstrapData;
use crate::machine::steps::MachineStore;
use crate::runtime::error::{ReconcileError, Stage};

/// Writes through the API server.
pub struct KubeMachineStore {
    /// MaasMachines of the namespace.
    pub api: Api<MaasMachine>,
    /// Secrets of the namespace.
    pub secrets: Api<Secret>,
    /// The object's metadata as read at the start of the pass.
    pub meta: ObjectMeta,
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
            .map_err(|source| ReconcileError::Kube {
                stage: Stage::Fetch,
                action: "read bootstrap Secret",
                source,
            })?
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
