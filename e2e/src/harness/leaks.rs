//! What must never leave the objects that hold it: the MAAS API key and its token secret, and the
//! tokens in bootstrap user data (kubeadm join tokens, Ignition bearer tokens). After a test, every
//! component log, event and condition of the environment is scanned for them.

use std::path::Path;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::harness::HarnessError;

/// Bootstrap Secrets, as CAPI types them.
const BOOTSTRAP_SECRET_TYPE: &str = "cluster.x-k8s.io/secret";
/// The shortest token looked for: shorter runs of letters and digits occur in any log.
const MIN_TOKEN: usize = 20;

/// A secret to look for, and what it is (the report names the kind, never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needle {
    /// What it is.
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

/// The needles of a MAAS API key (`consumer:token:secret`): the whole key and its secret.
pub fn api_key_needles(api_key: &str) -> Vec<Needle> {
    let mut needles = vec![Needle {
        kind: "MAAS API key",
        text: api_key.to_string(),
    }];
    if let Some(secret) = api_key.rsplit(':').next().filter(|s| s.len() >= 8) {
        needles.push(Needle {
            kind: "MAAS token secret",
            text: secret.to_string(),
        });
    }
    needles
}

/// The tokens in bootstrap user data: runs of at least 20 letters, digits and
/// `+/=._` holding both a letter and a digit (join tokens, bearer tokens, keys). Names of
/// Kubernetes objects carry dashes and are not taken.
pub fn user_data_needles(value: &[u8]) -> Vec<Needle> {
    let text = String::from_utf8_lossy(value);
    let token_char = |c: char| c.is_ascii_alphanumeric() || "+/=._".contains(c);
    text.split(|c: char| !token_char(c))
        .filter(|t| t.len() >= MIN_TOKEN)
        .filter(|t| {
            t.chars().any(|c| c.is_ascii_digit()) && t.chars().any(|c| c.is_ascii_alphabetic())
        })
        .map(|t| Needle {
            kind: "bootstrap token",
            text: t.to_string(),
        })
        .collect()
}

/// Where each needle occurs in `text` (from `origin`): one finding per needle and place.
pub fn scan_text(origin: &str, text: &str, needles: &[Needle]) -> Vec<String> {
    needles
        .iter()
        .filter(|n| text.contains(n.text.as_str()))
        .map(|n| format!("{} found in {origin}", n.kind))
        .collect()
}

/// Scans log files.
pub fn scan_logs(logs: &[impl AsRef<Path>], needles: &[Needle]) -> Vec<String> {
    logs.iter()
        .filter_map(|path| {
            let text = std::fs::read(path.as_ref()).ok()?;
            let origin = path.as_ref().display().to_string();
            Some(scan_text(&origin, &String::from_utf8_lossy(&text), needles))
        })
        .flatten()
        .collect()
}

/// The needles of every bootstrap Secret of `namespace` (all namespaces when `None`).
pub async fn bootstrap_needles(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Needle>, HarnessError> {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secrets = api.list(&ListParams::default()).await?;
    Ok(secrets
        .items
        .iter()
        .filter(|s| s.type_.as_deref() == Some(BOOTSTRAP_SECRET_TYPE))
        .filter_map(|s| s.data.as_ref()?.get("value"))
        .flat_map(|v| user_data_needles(&v.0))
        .collect())
}

/// Scans the events and the conditions of our kinds and CAPI's in `namespace`.
pub async fn scan_objects(
    client: &kube::Client,
    namespace: Option<&str>,
    needles: &[Needle],
) -> Result<Vec<String>, HarnessError> {
    let events: Api<Event> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut found = Vec::new();
    for e in events.list(&ListParams::default()).await?.items {
        let text = format!(
            "{} {}",
            e.message.unwrap_or_default(),
            e.reason.unwrap_or_default()
        );
        found.extend(scan_text("an event", &text, needles));
    }
    for (group, version, kind, plural) in [
        (
            "infrastructure.cluster.x-k8s.io",
            "v1beta1",
            "MaasMachine",
            "maasmachines",
        ),
        (
            "infrastructure.cluster.x-k8s.io",
            "v1beta1",
            "MaasCluster",
            "maasclusters",
        ),
        ("cluster.x-k8s.io", "v1beta2", "Machine", "machines"),
        ("cluster.x-k8s.io", "v1beta2", "Cluster", "clusters"),
    ] {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        for object in list.items {
            let status = object.data["status"].to_string();
            found.extend(scan_text(
                &format!("the status of a {kind}"),
                &status,
                needles,
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_secret_are_looked_for_and_named_without_their_value() {
        let needles = api_key_needles("ck1:tk2:s3cr3tValueOfTheToken");
        assert_eq!(needles.len(), 2);
        let found = scan_text(
            "manager.log",
            "signing with s3cr3tValueOfTheToken",
            &needles,
        );
        assert_eq!(found, ["MAAS token secret found in manager.log"]);
        assert!(
            !found[0].contains("s3cr3t"),
            "the report never holds the value"
        );
        assert!(scan_text("x", "nothing here", &needles).is_empty());
    }

    #[test]
    fn tokens_in_user_data_are_found_and_names_are_not() {
        let value = br#"#cloud-config
runcmd:
  - kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c
  - echo workers-abc12-bootstrap-0123456789
"#;
        let texts: Vec<String> = user_data_needles(value)
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert!(
            texts.contains(&"abcdef.0123456789abcdef".to_string()),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.starts_with("1f2e3d4c")), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains("workers")), "{texts:?}");
        let ignition = br#"{"ignition":{"config":{"merge":[{"httpHeaders":[{"name":"Authorization","value":"Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig123"}]}]}}}"#;
        let texts: Vec<String> = user_data_needles(ignition)
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert_eq!(texts, ["eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig123"]);
    }
}
