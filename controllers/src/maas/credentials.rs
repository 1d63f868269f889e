//! MAAS credentials: provider-wide from the environment, per cluster from an identity Secret (the
//! one the MaasCluster names, else HyperShift's `<cluster>-maas-credentials`), and a client per
//! distinct set of credentials, shared by every reconcile that uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use capmaas_api::MaasMachine;
use capmaas_api::identity::{
    HOSTED_CREDENTIALS_SUFFIX, HOSTED_SECRET_KEYS, SECRET_KEY_API_KEY, SECRET_KEY_CA_BUNDLE,
    SECRET_KEY_ENDPOINT, SECRET_KEY_ZONE,
};
use capmaas_api::{MaasCluster, annotations};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use maas_client::{MaasClient, MaasConfig, MaasError, RequestObserver, TlsConfig};
use tokio::sync::mpsc;

use crate::maas::inventory::EndpointInventory;
use crate::maas::observer::MachineObserver;
use crate::runtime::error::{ReconcileError, Stage};
use crate::runtime::shutdown::Shutdown;

/// An endpoint and API key, and the CAs its TLS may need. The key never appears in `Debug`
/// output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MaasCredentials {
    /// MAAS URL.
    pub endpoint: String,
    /// `consumer:token:secret`.
    pub api_key: String,
    /// PEM CAs trusted for this endpoint on top of the provider-wide TLS settings.
    pub ca_bundle: Option<Vec<u8>>,
}

impl std::fmt::Debug for MaasCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaasCredentials")
            .field("endpoint", &self.endpoint)
            .field("api_key", &"<hidden>")
            .field("ca_bundle", &self.ca_bundle.as_ref().map(Vec::len))
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
            ca_bundle: None,
        })
    }

    /// The same credentials trusting `pem` too (ignored when blank).
    pub fn with_ca_bundle(mut self, pem: Option<Vec<u8>>) -> Self {
        self.ca_bundle = pem.filter(|p| !p.trim_ascii().is_empty());
        self
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
    inventories: Mutex<HashMap<MaasCredentials, Arc<EndpointInventory>>>,
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
            inventories: Mutex::new(HashMap::new()),
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

    /// The client and the shared inventory of free machines for `creds` (or the provider-wide
    /// credentials); `Ok(None)` without credentials.
    pub fn inventory(
        &self,
        creds: Option<&MaasCredentials>,
    ) -> Result<Option<(MaasClient, Arc<EndpointInventory>)>, MaasError> {
        let Some(creds) = creds.or(self.default.as_ref()) else {
            return Ok(None);
        };
        let Some(client) = self.client(Some(creds))? else {
            return Ok(None);
        };
        let mut inventories = self
            .inventories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let inventory = inventories.entry(creds.clone()).or_default().clone();
        Ok(Some((client, inventory)))
    }

    /// Every client built so far with its credentials, the provider-wide one included when
    /// configured: the MAAS endpoints and users this manager works with.
    pub fn clients(&self) -> Result<Vec<(MaasCredentials, MaasClient)>, MaasError> {
        if let Some(default) = &self.default {
            self.client(Some(default))?;
        }
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(cache
            .iter()
            .map(|(creds, client)| (creds.clone(), client.clone()))
            .collect())
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
        let mut tls = self.tls.clone();
        if let Some(pem) = &creds.ca_bundle {
            tls.ca_bundle_pem = Some(pem.clone());
        }
        let config = MaasConfig::new(creds.endpoint.clone(), creds.api_key.clone()).with_tls(tls);
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

/// The Secret HyperShift's MAAS platform writes for a hosted cluster, named like its MaasCluster.
pub fn hosted_secret_name(cluster: &MaasCluster) -> String {
    format!("{}{HOSTED_CREDENTIALS_SUFFIX}", cluster.name_any())
}

/// The Secret that holds a cluster's credentials, if any: the one it names, which must exist,
/// else HyperShift's, when present.
pub fn credentials_secret_names(cluster: &MaasCluster) -> (Option<String>, String) {
    (identity_secret_name(cluster), hosted_secret_name(cluster))
}

/// A cluster's own MAAS: its credentials, the zone its machines default to, and the Secret they
/// came from (for its finalizer).
#[derive(Clone, Debug)]
pub struct ClusterIdentity {
    /// Endpoint, key and CAs.
    pub creds: MaasCredentials,
    /// The default zone the Secret names.
    pub zone: Option<String>,
    /// The Secret.
    pub secret: Secret,
}

/// The cluster's credentials Secret, read once: the one the MaasCluster names (an error when it
/// is missing or incomplete), else, when `hosted_fallback` (the manager has no credentials of
/// its own, as on HyperShift's 4.21 line), HyperShift's `<cluster>-maas-credentials` if it
/// exists. Without the fallback, a cluster that names no Secret costs no read.
pub async fn identity_secret(
    client: &Client,
    namespace: &str,
    cluster: Option<&MaasCluster>,
    hosted_fallback: bool,
) -> Result<Option<ClusterIdentity>, ReconcileError> {
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    let (named, hosted) = credentials_secret_names(cluster);
    if named.is_none() && !hosted_fallback {
        return Ok(None);
    }
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let name = named.as_deref().unwrap_or(&hosted);
    let secret = api
        .get_opt(name)
        .await
        .map_err(ReconcileError::kube(Stage::Fetch, "read identity Secret"))?;
    let secret = match (secret, &named) {
        (Some(s), _) => s,
        (None, Some(_)) => {
            return Err(ReconcileError::Invalid(format!(
                "identity Secret {namespace}/{name} not found"
            )));
        }
        (None, None) => return Ok(None),
    };
    identity_from_secret(secret)
        .map(Some)
        .map_err(|why| ReconcileError::Invalid(format!("identity Secret {namespace}/{name} {why}")))
}

/// The credentials a Secret holds, in either spelling: the environment's (`MAAS_ENDPOINT`,
/// `MAAS_API_KEY`, `MAAS_ZONE`, `MAAS_CA_BUNDLE`) or HyperShift's (`endpoint`, `api-key`,
/// `zone`, `ca.crt`).
pub fn identity_from_secret(secret: Secret) -> Result<ClusterIdentity, String> {
    let read = |keys: [&str; 2]| {
        let data = secret.data.as_ref()?;
        keys.iter()
            .find_map(|k| data.get(*k))
            .map(|v| v.0.clone())
            .filter(|v| !v.trim_ascii().is_empty())
    };
    let text = |keys: [&str; 2]| read(keys).and_then(|v| String::from_utf8(v).ok());
    let [endpoint, api_key, zone, ca] = HOSTED_SECRET_KEYS;
    let creds = MaasCredentials::from_parts(
        text([SECRET_KEY_ENDPOINT, endpoint]).as_deref(),
        text([SECRET_KEY_API_KEY, api_key]).as_deref(),
    )
    .ok_or_else(|| {
        format!("lacks {SECRET_KEY_ENDPOINT} or {SECRET_KEY_API_KEY} (or {endpoint} and {api_key})")
    })?
    .with_ca_bundle(read([SECRET_KEY_CA_BUNDLE, ca]));
    Ok(ClusterIdentity {
        creds,
        zone: text([SECRET_KEY_ZONE, zone]).map(|z| z.trim().to_string()),
        secret,
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

    fn secret(data: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::ByteString(v.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn secrets_in_either_spelling_give_credentials_zone_and_ca() {
        let env_style = identity_from_secret(secret(&[
            ("MAAS_ENDPOINT", "http://m/MAAS"),
            ("MAAS_API_KEY", "a:b:c"),
        ]))
        .unwrap();
        assert_eq!(env_style.creds.endpoint, "http://m/MAAS");
        assert_eq!((env_style.zone, env_style.creds.ca_bundle), (None, None));
        let hosted = identity_from_secret(secret(&[
            ("endpoint", "https://m/MAAS"),
            ("api-key", "d:e:f"),
            ("zone", " az2 "),
            ("ca.crt", "-----BEGIN CERTIFICATE-----"),
        ]))
        .unwrap();
        assert_eq!(hosted.creds.api_key, "d:e:f");
        assert_eq!(hosted.zone.as_deref(), Some("az2"));
        assert_eq!(
            hosted.creds.ca_bundle.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----"[..])
        );
        let why = identity_from_secret(secret(&[("endpoint", "https://m/MAAS")])).unwrap_err();
        assert!(why.contains("api-key"), "{why}");
        let cluster: MaasCluster = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hosted", "namespace": "clusters-hosted"},
            "spec": {"dnsDomain": "maas.local"}
        }))
        .unwrap();
        assert_eq!(
            credentials_secret_names(&cluster),
            (None, "hosted-maas-credentials".to_string())
        );
    }

    #[test]
    fn the_sweep_sees_the_default_and_every_per_cluster_client() {
        let observer: Arc<dyn RequestObserver> = Arc::new(maas_client::NoopObserver);
        let none = MaasConnector::new(None, TlsConfig::default(), observer.clone());
        assert!(none.clients().unwrap().is_empty());
        let hosted =
            MaasCredentials::from_parts(Some("http://127.0.0.1:2/MAAS"), Some("d:e:f")).unwrap();
        none.client(Some(&hosted)).unwrap();
        assert_eq!(none.clients().unwrap().len(), 1);
        let default =
            MaasCredentials::from_parts(Some("http://127.0.0.1:1/MAAS"), Some("a:b:c")).unwrap();
        let both = MaasConnector::new(Some(default.clone()), TlsConfig::default(), observer);
        both.client(Some(&hosted)).unwrap();
        let mut seen: Vec<String> = both
            .clients()
            .unwrap()
            .into_iter()
            .map(|(creds, _)| creds.api_key)
            .collect();
        seen.sort();
        assert_eq!(seen, ["a:b:c", "d:e:f"]);
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
