//! Reduction of a full CRD to the Go provider's base shape, the one HyperShift installs from its
//! embedded copy: only the fields listed here survive, CEL rules and our size limits go, and
//! the Go provider's required fields come back. Built from our own types so the two shapes can
//! never disagree on a field name.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};

/// Machine spec fields of the base shape (relative to a MaasMachine spec).
const MACHINE_SPEC_FIELDS: &[&str] = &[
    "providerID",
    "systemID",
    "failureDomain",
    "resourcePool",
    "minCPU",
    "minMemory",
    "tags",
    "image",
];

/// Condition fields of the Go provider (no `observedGeneration`).
const CONDITION_FIELDS: &[&str] = &[
    "type",
    "status",
    "lastTransitionTime",
    "reason",
    "message",
    "severity",
];

/// Fields kept per kind, as dotted paths below the object root; a path keeps its whole subtree.
pub(super) fn kept_paths(kind: &str) -> Vec<String> {
    let machine_spec = |prefix: &str| {
        MACHINE_SPEC_FIELDS
            .iter()
            .map(move |f| format!("{prefix}{f}"))
            .collect::<Vec<_>>()
    };
    let conditions = || {
        CONDITION_FIELDS
            .iter()
            .map(|f| format!("status.conditions.{f}"))
            .collect::<Vec<_>>()
    };
    let fixed = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    match kind {
        "MaasCluster" => fixed(&[
            "spec.dnsDomain",
            "spec.controlPlaneEndpoint",
            "spec.failureDomains",
            "status.ready",
            "status.network",
            "status.failureDomains",
        ])
        .into_iter()
        .chain(conditions())
        .collect(),
        "MaasMachine" => {
            let mut paths = machine_spec("spec.");
            paths.extend(fixed(&[
                "status.ready",
                "status.machineState",
                "status.machinePowered",
                "status.hostname",
                "status.addresses",
                "status.failureReason",
                "status.failureMessage",
            ]));
            paths.extend(conditions());
            paths
        }
        "MaasMachineTemplate" => machine_spec("spec.template.spec."),
        _ => Vec::new(),
    }
}

/// Schema keywords the Go provider's CRDs do not carry (the few it has are put back below).
const DROPPED_KEYWORDS: &[&str] = &[
    "x-kubernetes-validations",
    "maxItems",
    "maxLength",
    "minLength",
    "enum",
    "nullable",
];

/// Address types the Go provider's CRDs allow.
const ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "ExternalIP",
    "InternalIP",
    "ExternalDNS",
    "InternalDNS",
];

pub(super) fn reduce(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    let keep = kept_paths(&kind);
    super::edit_schemas(crd, |schema| reduce_schema(&kind, schema, &keep))
}

/// The whole reduction on a schema value, separate from the CRD plumbing so tests can call it.
pub(super) fn reduce_schema(kind: &str, schema: &mut Value, keep: &[String]) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for root in ["spec", "status"] {
            let below: Vec<&str> = keep
                .iter()
                .filter_map(|p| p.strip_prefix(root).and_then(|r| r.strip_prefix('.')))
                .collect();
            match props.get_mut(root) {
                Some(node) if !below.is_empty() => prune(node, &below),
                Some(_) => {
                    props.remove(root);
                }
                None => {}
            }
        }
    }
    strip_keywords(schema);
    match kind {
        "MaasCluster" => {
            set_required(schema, &["spec"], &["dnsDomain"]);
            set_keyword(schema, &["spec", "dnsDomain"], "minLength", json!(1));
            set_required(schema, &["status"], &["ready"]);
            if let Some(fd) = node_mut(schema, &["status", "failureDomains"]) {
                *fd = go_failure_domains_map();
            }
            conditions_required(schema);
        }
        "MaasMachine" => {
            set_required(schema, &["spec"], &["image", "minCPU", "minMemory"]);
            set_keyword(schema, &["spec", "image"], "minLength", json!(1));
            set_required(schema, &["status"], &["ready"]);
            if let Some(Value::Object(address_type)) = node_mut(schema, &["status", "addresses"])
                .and_then(|a| a.get_mut("items"))
                .and_then(|i| i.get_mut("properties"))
                .and_then(|p| p.get_mut("type"))
            {
                address_type.insert("enum".into(), json!(ADDRESS_TYPES));
            }
            conditions_required(schema);
        }
        "MaasMachineTemplate" => {
            set_required(
                schema,
                &["spec", "template", "spec"],
                &["image", "minCPU", "minMemory"],
            );
            set_keyword(
                schema,
                &["spec", "template", "spec", "image"],
                "minLength",
                json!(1),
            );
            set_required(schema, &["spec", "template"], &["spec"]);
        }
        _ => {}
    }
}

/// Keeps only the properties named by `paths` (relative to `node`), descending through arrays.
fn prune(node: &mut Value, paths: &[&str]) {
    let node = if node.get("items").is_some() {
        &mut node["items"]
    } else {
        node
    };
    let Some(props) = node.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let names: Vec<String> = props.keys().cloned().collect();
    for name in names {
        let whole = paths.iter().any(|p| *p == name);
        let deeper: Vec<&str> = paths
            .iter()
            .filter_map(|p| {
                p.strip_prefix(name.as_str())
                    .and_then(|r| r.strip_prefix('.'))
            })
            .collect();
        if whole {
            continue;
        }
        if deeper.is_empty() {
            props.remove(&name);
        } else if let Some(child) = props.get_mut(&name) {
            prune(child, &deeper);
        }
    }
    let kept: Vec<String> = props.keys().cloned().collect();
    if let Some(Value::Array(required)) = node.get_mut("required") {
        required.retain(|r| r.as_str().is_some_and(|r| kept.iter().any(|k| k == r)));
    }
}

fn strip_keywords(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    for k in DROPPED_KEYWORDS {
        map.remove(*k);
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(strip_keywords);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            strip_keywords(child);
        }
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            branches.iter_mut().for_each(strip_keywords);
        }
    }
}

fn node_mut<'a>(schema: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut node = schema;
    for part in path {
        node = node.get_mut("properties")?.get_mut(*part)?;
    }
    Some(node)
}

fn set_required(schema: &mut Value, path: &[&str], fields: &[&str]) {
    set_keyword(schema, path, "required", json!(fields));
}

fn set_keyword(schema: &mut Value, path: &[&str], keyword: &str, value: Value) {
    if let Some(Value::Object(node)) = node_mut(schema, path) {
        node.insert(keyword.into(), value);
    }
}

fn conditions_required(schema: &mut Value) {
    if let Some(Value::Object(items)) =
        node_mut(schema, &["status", "conditions"]).and_then(|c| c.get_mut("items"))
    {
        items.insert(
            "required".into(),
            json!(["lastTransitionTime", "status", "type"]),
        );
    }
}

/// The Go provider's v1beta1 map of failure domains.
fn go_failure_domains_map() -> Value {
    let mut entry = Map::new();
    entry.insert("type".into(), json!("object"));
    entry.insert(
        "properties".into(),
        json!({
            "controlPlane": {"type": "boolean"},
            "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        }),
    );
    json!({
        "description": "Failure domains (MAAS zones) of the cluster, keyed by name (v1beta1 contract).",
        "type": "object",
        "additionalProperties": Value::Object(entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdgen::{Profile, crds, schema_of};

    fn exists(schema: &Value, path: &str) -> bool {
        let mut node = schema;
        for part in path.split('.') {
            if let Some(items) = node.get("items") {
                node = items;
            }
            match node.get("properties").and_then(|p| p.get(part)) {
                Some(child) => node = child,
                None => return false,
            }
        }
        true
    }

    #[test]
    fn every_kept_path_exists_in_the_full_schema() {
        for crd in crds(Profile::Full) {
            let kind = &crd.spec.names.kind;
            let schema = schema_of(&crd);
            for path in kept_paths(kind) {
                assert!(
                    exists(&schema, &path),
                    "{kind}: {path} is not in the full schema"
                );
            }
        }
        assert!(kept_paths("MaasClusterTemplate").is_empty());
    }

    #[test]
    fn pruning_keeps_listed_subtrees_and_required_entries() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["a", "b"],
                    "properties": {
                        "a": {"type": "object", "properties": {"x": {"type": "string"}}},
                        "b": {"type": "string", "maxLength": 3},
                        "c": {"type": "array", "items": {"type": "object", "properties": {
                            "keep": {"type": "string"}, "drop": {"type": "string"}}}}
                    }
                },
                "status": {"type": "object", "properties": {"z": {"type": "string"}}}
            }
        });
        let keep: Vec<String> = ["spec.a", "spec.c.keep"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        reduce_schema("Other", &mut schema, &keep);
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["a"],
                        "properties": {
                            "a": {"type": "object", "properties": {"x": {"type": "string"}}},
                            "c": {"type": "array", "items": {"type": "object", "properties": {
                                "keep": {"type": "string"}}}}
                        }
                    }
                }
            })
        );
    }
}
