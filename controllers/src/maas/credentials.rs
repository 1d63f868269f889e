//! MAAS credentials: provider-wide from the environment, per cluster from an identity Secret,
//! and a client per distinct credential pair, shared by every reconcile that uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use capmaas_api::MaasMachine;
use capmaas_api::identity::{SECRET_KEY_API_KEY, SECRET_KEY_ENDPOINT};
use capmaas_api::{MaasCluster, annotations};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};
use maas_client::{MaasClient, MaasConfig, MaasError, RequestObserver, TlsConfig};
use tokio::sync::mpsc;

use crate::maas::observer::MachineObserver;
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::shutdown::Shutdown;

/// An endpoint and API key. The key never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MaasCredentials {
    /// MAAS URL.
    pub endpoint: String,
    /// `consumer:token:secret`.
    pub api_key: String,
}

impl std::fmt::Debug for MaasCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaasCredentials")
            .field("endpoint", &self.endpoint)
            .field("api_key", &"<hidden>")
            .finish()
    }
}

impl MaasCredentials {
    /// Credentials from two optional values; `None` unless both are non-blank.
    pub fn from_parts(endpoint: Option<&str>, api_key: Option<&str>) -> Option<Self> {
        let endpoint = endpoint.map(str::trim).filter(|s| !s.is_empty())?;
        let api_key = api_key.map(str::trim).filter(|s| !s.is_empty())?;
        Some(MaasCredentials {
            endpoint: endpoint.to_string(),
            api_key: api_key.to_string(),
        })
    }
}

/// The objects a machine observer wakes.
pub type MachineRef = ObjectRef<MaasMachine>;

/// One MAAS endpoint as the controllers use it: its client and the observer of its machines in
/// transit.
#[derive(Clone)]
pub struct MaasEndpoint {
    /// The client.
    pub client: MaasClient,
    /// The observer (one per endpoint, its polling task started with it).
    pub observer: Arc<MachineObserver<MachineRef>>,
}

/// Where observers send the objects to wake, and what stops their polling.
pub struct ObserverWiring {
    /// The machine controller's trigger.
    pub wake: mpsc::UnboundedSender<MachineRef>,
    /// The manager's shutdown.
    pub shutdown: Shutdown,
}

/// Builds and caches MAAS clients, and one observer per endpoint.
pub struct MaasConnector {
    default: Option<MaasCredentials>,
    tls: TlsConfig,
    observer: Arc<dyn RequestObserver>,
    cache: Mutex<HashMap<MaasCredentials, MaasClient>>,
    observers: Mutex<HashMap<MaasCredentials, Arc<MachineObserver<MachineRef>>>>,
    wiring: Option<ObserverWiring>,
}

impl MaasConnector {
    /// A connector with the provider-wide credentials (if any), TLS settings and the request
    /// observer every client reports to.
    pub fn new(
        default: Option<MaasCredentials>,
        tls: TlsConfig,
        observer: Arc<dyn RequestObserver>,
    ) -> Self {
        MaasConnector {
            default,
            tls,
            observer,
            cache: Mutex::new(HashMap::new()),
            observers: Mutex::new(HashMap::new()),
            wiring: None,
        }
    }

    /// Lets [`endpoint`](Self::endpoint) start observers that wake objects through `wiring`.
    pub fn with_observers(mut self, wiring: ObserverWiring) -> Self {
        self.wiring = Some(wiring);
        self
    }

    /// The endpoint for `creds` (or the provider-wide credentials): its client, and its observer,
    /// whose polling task starts on first use. `Ok(None)` without credentials or without
    /// observer wiring (then callers read MAAS themselves).
    pub fn endpoint(
        &self,
        creds: Option<&MaasCredentials>,
    ) -> Result<Option<MaasEndpoint>, MaasError> {
        let (Some(creds), Some(wiring)) = (creds.or(self.default.as_ref()), &self.wiring) else {
            return Ok(None);
        };
        let Some(client) = self.client(Some(creds))? else {
            return Ok(None);
        };
        let mut observers = self
            .observers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let observer = observers
            .entry(creds.clone())
            .or_insert_with(|| {
                let observer = Arc::new(MachineObserver::new(wiring.wake.clone()));
                let (task, maas, stop) = (observer.clone(), client.clone(), wiring.shutdown.wait());
                tokio::spawn(async move { task.run(maas, stop).await });
                observer
            })
            .clone();
        Ok(Some(MaasEndpoint { client, observer }))
    }

    /// Whether provider-wide credentials are configured.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// The client for `creds`, or for the provider-wide credentials when `None`. `Ok(None)` when
    /// no credentials are configured at all.
    pub fn client(&self, creds: Option<&MaasCredentials>) -> Result<Option<MaasClient>, MaasError> {
        let Some(creds) = creds.or(self.default.as_ref()) else {
            return Ok(None);
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = cache.get(creds) {
            return Ok(Some(client.clone()));
        }
        let config = MaasConfig::new(creds.endpoint.clone(), creds.api_key.clone())
            .with_tls(self.tls.clone());
        let client = MaasClient::new(config)?.with_observer(self.observer.clone());
        cache.insert(creds.clone(), client.clone());
        Ok(Some(client))
    }
}

/// The identity Secret a MaasCluster names: `spec.identityRef`, else the annotation (which
/// survives HyperShift's CRDs).
pub fn identity_secret_name(cluster: &MaasCluster) -> Option<String> {
    cluster
        .spec
        .identity_ref
        .as_ref()
        .map(|r| r.name.clone())
        .or_else(|| {
            cluster
                .metadata
                .annotations
                .as_ref()?
                .get(annotations::IDENTITY_SECRET)
                .cloned()
        })
        .filter(|n| !n.trim().is_empty())
}

/// Reads per-cluster credentials from the identity Secret, when the MaasCluster names one.
pub async fn identity_credentials(
    client: &Client,
    namespace: &str,
    cluster: Option<&MaasCluster>,
) -> Result<Option<MaasCredentials>, ReconcileError> {
    Ok(identity_secret(client, namespace, cluster)
        .await?
        .map(|(creds, _)| creds))
}

/// The identity Secret a MaasCluster names, read once: its credentials and its metadata (for
/// the Secret's finalizer).
pub async fn identity_secret(
    client: &Client,
    namespace: &str,
    cluster: Option<&MaasCluster>,
) -> Result<Option<(MaasCredentials, Secret)>, ReconcileError> {
    let Some(secret_name) = cluster.and_then(identity_secret_name) else {
        return Ok(None);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&secret_name)
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "read identity Secret"))?
        .ok_or_else(|| {
            ReconcileError::Invalid(format!(
                "identity Secret {namespace}/{secret_name} not found"
            ))
        })?;
    let read = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let creds = MaasCredentials::from_parts(
        read(SECRET_KEY_ENDPOINT).as_deref(),
        read(SECRET_KEY_API_KEY).as_deref(),
    );
    creds.map(|c| Some((c, secret))).ok_or_else(|| {
            ReconcileError::Invalid(format!(
                "identity Secret {namespace}/{secret_name} lacks {SECRET_KEY_ENDPOINT} or {SECRET_KEY_API_KEY}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_both_parts_and_hide_the_key() {
        assert_eq!(
            MaasCredentials::from_parts(Some("http://m"), Some(" ")),
            None
        );
        assert_eq!(MaasCredentials::from_parts(None, Some("a:b:c")), None);
        let c = MaasCredentials::from_parts(Some(" http://m/MAAS "), Some("a:b:c")).unwrap();
        assert_eq!(c.endpoint, "http://m/MAAS");
        assert!(!format!("{c:?}").contains("a:b:c"));
    }

    #[test]
    fn clients_are_cached_per_credentials() {
        let observer: Arc<dyn RequestObserver> = Arc::new(maas_client::NoopObserver);
        let none = MaasConnector::new(None, TlsConfig::default(), observer.clone());
        assert!(none.client(None).unwrap().is_none());
        let creds =
            MaasCredentials::from_parts(Some("http://127.0.0.1:1/MAAS"), Some("a:b:c")).unwrap();
        let c = MaasConnector::new(Some(creds.clone()), TlsConfig::default(), observer);
        let a = c.client(None).unwrap().unwrap();
        let b = c.client(Some(&creds)).unwrap().unwrap();
        assert_eq!(a.base_url(), b.base_url());
        assert_eq!(c.cache.lock().unwrap().len(), 1);
    }
}
