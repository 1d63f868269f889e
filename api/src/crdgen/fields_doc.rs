//! `api/FIELDS.md`: the field table (JSON path, type, required, origin) and the validation
//! rules, rendered from the generated schemas so the document cannot drift from the CRDs.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Profile, crds, hypershift::kept_paths, schema_of};

/// Fields HyperShift's MAAS fork writes, relative to the object root.
const HYPERSHIFT_WRITES: &[(&str, &[&str])] = &[
    (
        "MaasCluster",
        &["spec.dnsDomain", "spec.controlPlaneEndpoint"],
    ),
    (
        "MaasMachineTemplate",
        &[
            "spec.template.spec.image",
            "spec.template.spec.minCPU",
            "spec.template.spec.minMemory",
            "spec.template.spec.tags",
            "spec.template.spec.resourcePool",
            "spec.template.spec.failureDomain",
        ],
    ),
];

/// Go provider fields outside the base shape HyperShift installs (newer Go releases).
const GO_NEWER: &[&str] = &["minDiskSize", "deployInMemory"];

struct Row {
    path: String,
    type_: String,
    required: bool,
    rules: Vec<String>,
}

/// The whole FIELDS.md document.
pub fn render_fields_doc() -> String {
    let mut doc = String::from(
        "# capmaas-api: fields and validation\n\n\
         Generated from the CRD schemas by `cargo run -p capmaas-api --features crdgen --bin crdgen -- --fields-doc`;\n\
         a test fails when this file is out of date.\n\n\
         Origin: *Go provider* = field of the Go provider's API (HyperShift's embedded CRDs keep it);\n\
         *Go provider, HyperShift writes it* = also written by HyperShift's MAAS fork;\n\
         *Go provider (newer)* = in newer Go releases only, pruned under HyperShift's CRDs;\n\
         *ours* = our extension, optional, pruned under HyperShift's CRDs.\n",
    );
    let full = crds(Profile::Full);
    for crd in &full {
        let kind = &crd.spec.names.kind;
        let rows = rows_of(&schema_of(crd));
        let _ = write!(
            doc,
            "\n## {kind}\n\n| JSON path | type | required | origin |\n|---|---|---|---|\n"
        );
        for row in &rows {
            let _ = writeln!(
                doc,
                "| `{}` | {} | {} | {} |",
                row.path,
                row.type_,
                if row.required { "yes" } else { "no" },
                origin(kind, &row.path)
            );
        }
    }
    doc.push_str("\n## Validation rules\n\nEnforced by the API server from the full CRDs (no admission webhooks).\n");
    for crd in &full {
        let kind = &crd.spec.names.kind;
        let _ = write!(doc, "\n### {kind}\n\n");
        for row in rows_of(&schema_of(crd)) {
            if !row.rules.is_empty() {
                let _ = writeln!(doc, "- `{}`: {}", row.path, row.rules.join("; "));
            }
        }
    }
    doc.push_str(
        "\n## HyperShift profile\n\n\
         `crdgen --profile hypershift` emits the base shape HyperShift installs: MaasCluster, MaasMachine and\n\
         MaasMachineTemplate with the *Go provider* fields only, contract label `cluster.x-k8s.io/v1beta1` only,\n\
         no CEL rules and no size limits, `spec.image`, `spec.minCPU` and `spec.minMemory` required,\n\
         `status.ready` required, conditions requiring `type`, `status` and `lastTransitionTime`, and\n\
         `status.failureDomains` as the v1beta1 map.\n",
    );
    doc
}

fn origin(kind: &str, path: &str) -> &'static str {
    let bare = path.replace("[]", "");
    let under = |k: &str| bare == k || bare.starts_with(&format!("{k}."));
    let writes = HYPERSHIFT_WRITES
        .iter()
        .filter(|(k, _)| *k == kind)
        .flat_map(|(_, paths)| paths.iter());
    if writes.clone().any(|k| under(k)) {
        return "Go provider, HyperShift writes it";
    }
    let ancestor = |k: &str| k.starts_with(&format!("{bare}."));
    if kept_paths(kind).iter().any(|k| under(k) || ancestor(k)) {
        return "Go provider";
    }
    if GO_NEWER
        .iter()
        .any(|f| bare.ends_with(&format!("spec.{f}")))
    {
        return "Go provider (newer)";
    }
    "ours"
}

fn rows_of(schema: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    for root in ["spec", "status"] {
        if let Some(node) = schema.get("properties").and_then(|p| p.get(root)) {
            let required = is_required(schema, root);
            walk(node, root.to_owned(), required, &mut rows);
        }
    }
    rows
}

fn is_required(parent: &Value, name: &str) -> bool {
    parent
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name)))
}

fn walk(node: &Value, path: String, required: bool, rows: &mut Vec<Row>) {
    let mut rules = rules_of(node);
    if required && path.contains('.') {
        rules.insert(0, "required".to_owned());
    }
    rows.push(Row {
        path: path.clone(),
        type_: type_of(node),
        required,
        rules,
    });
    let (object, prefix) = match node.get("items") {
        Some(items) => {
            let item_rules = rules_of(items);
            if let Some(last) = rows.last_mut() {
                last.rules
                    .extend(item_rules.into_iter().map(|r| format!("each item: {r}")));
            }
            (items, format!("{path}[]"))
        }
        None => (node, path),
    };
    if let Some(props) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(
                child,
                format!("{prefix}.{name}"),
                is_required(object, name),
                rows,
            );
        }
    }
}

fn type_of(node: &Value) -> String {
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-preserve-unknown-fields") {
        return "any (map or list)".into();
    }
    if flag("x-kubernetes-int-or-string") {
        return "int-or-string".into();
    }
    let base = node.get("type").and_then(Value::as_str).unwrap_or("?");
    match base {
        "array" => format!(
            "[]{}",
            node.get("items").map(type_of).unwrap_or_else(|| "?".into())
        ),
        "object" => match node.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("map[string]{}", type_of(v)),
            _ => "object".into(),
        },
        other => match node.get("format").and_then(Value::as_str) {
            Some(f) => format!("{other} ({f})"),
            None => other.to_owned(),
        },
    }
}

fn rules_of(node: &Value) -> Vec<String> {
    let mut rules = Vec::new();
    let num = |k: &str| node.get(k).and_then(Value::as_f64);
    if let Some(m) = num("minimum") {
        rules.push(format!(">= {m}"));
    }
    for (key, label) in [
        ("minLength", "minLength"),
        ("maxLength", "maxLength"),
        ("maxItems", "maxItems"),
    ] {
        if let Some(n) = node.get(key).and_then(Value::as_u64) {
            rules.push(format!("{label} {n}"));
        }
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|s| format!("`{s}`"))
            .collect();
        rules.push(format!("one of {}", names.join(", ")));
    }
    if let Some(Value::Array(cel)) = node.get("x-kubernetes-validations") {
        for rule in cel {
            let expr = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
            let message = rule
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            rules.push(format!("CEL `{expr}` (\"{message}\")"));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("MaasCluster", "spec.dnsDomain"),
            "Go provider, HyperShift writes it"
        );
        assert_eq!(
            origin("MaasCluster", "spec.controlPlaneEndpoint.host"),
            "Go provider, HyperShift writes it"
        );
        assert_eq!(origin("MaasCluster", "status"), "Go provider");
        assert_eq!(
            origin("MaasCluster", "status.conditions[].severity"),
            "Go provider"
        );
        assert_eq!(
            origin("MaasCluster", "status.conditions[].observedGeneration"),
            "ours"
        );
        assert_eq!(origin("MaasMachine", "spec.image"), "Go provider");
        assert_eq!(
            origin("MaasMachine", "spec.minDiskSize"),
            "Go provider (newer)"
        );
        assert_eq!(origin("MaasMachine", "spec.gpu.minCount"), "ours");
        assert_eq!(
            origin("MaasMachineTemplate", "spec.template.spec.tags"),
            "Go provider, HyperShift writes it"
        );
        assert_eq!(origin("MaasMachineTemplate", "status.capacity"), "ours");
    }

    #[test]
    fn every_schema_field_has_a_row() {
        let doc = render_fields_doc();
        for crd in crds(Profile::Full) {
            for row in rows_of(&schema_of(&crd)) {
                assert!(doc.contains(&format!("| `{}` |", row.path)), "{}", row.path);
            }
        }
        for name in [
            "dnsDomain",
            "controlPlaneEndpoint",
            "failureDomains",
            "providerID",
            "systemID",
            "failureDomain",
            "resourcePool",
            "minCPU",
            "minMemory",
            "tags",
            "image",
            "minDiskSize",
            "deployInMemory",
            "notTags",
            "gpu.minCount",
            "userDataFormat",
            "release.secureErase",
            "identityRef",
            "ignition.wipePartitions",
            "machineState",
            "machinePowered",
            "addresses[].type",
            "hardware.gpus[].pciAddress",
            "nodeInfo",
            "capacity",
            "network.dnsName",
            "initialization.provisioned",
        ] {
            assert!(
                doc.contains(&format!(".{name}` |")),
                "{name} missing from FIELDS.md"
            );
        }
        assert!(doc.contains("| `spec.minCPU` | integer (int32) | no | Go provider |"));
    }
}
