//! Applying YAML manifests (any kind) with server-side apply.

use std::path::Path;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::crds::FIELD_MANAGER;
use super::error::HarnessError;

/// Every document of a multi-document YAML text, as JSON values (empty documents skipped).
pub fn parse(text: &str, origin: &Path) -> Result<Vec<Value>, HarnessError> {
    serde_saphyr::from_multiple(text).map_err(|e| HarnessError::Manifest {
        path: origin.to_path_buf(),
        message: e.to_string(),
    })
}

/// The API resource of an object, from its apiVersion and kind. Plurals follow the English rules
/// Kubernetes kinds keep to (`ClusterClass` -> `clusterclasses`, `ValidatingAdmissionPolicy` ->
/// `validatingadmissionpolicies`, else `+s`).
pub fn resource_of(object: &Value) -> ApiResource {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    ApiResource::from_gvk_with_plural(&gvk, &plural(kind))
}

/// The resource name of a kind.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if let Some(stem) = lower
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// The namespaced API of an object's kind.
pub fn api_for(client: &kube::Client, namespace: &str, object: &Value) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource_of(object))
}

/// Applies every object into `namespace` (server-side apply, forced).
pub async fn apply_all(
    client: &kube::Client,
    namespace: &str,
    objects: &[Value],
) -> Result<(), HarnessError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        api_for(client, namespace, object)
            .patch(name, &params, &Patch::Apply(object))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_is_read_and_empty_ones_are_skipped() {
        let text = "---\n# leading comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  on: 'yes'\n  n: \"1\"\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n";
        let docs = parse(text, Path::new("sample.yaml")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["data"], serde_json::json!({"on": "yes", "n": "1"}));
        assert_eq!(resource_of(&docs[1]).plural, "secrets");
    }

    #[test]
    fn plurals_of_the_kinds_the_tests_apply() {
        for (kind, resource) in [
            ("MaasMachineTemplate", "maasmachinetemplates"),
            ("ClusterClass", "clusterclasses"),
            ("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
            (
                "ValidatingAdmissionPolicyBinding",
                "validatingadmissionpolicybindings",
            ),
            ("Secret", "secrets"),
            ("Gateway", "gateways"),
        ] {
            assert_eq!(plural(kind), resource, "{kind}");
        }
    }

    #[test]
    fn a_parse_error_names_the_file() {
        let err = parse("a: [1, 2\n", Path::new("broken.yaml")).unwrap_err();
        assert!(err.to_string().contains("broken.yaml"), "{err}");
    }
}
