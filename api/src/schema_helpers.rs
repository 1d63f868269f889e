//! Hand-written schemas for the few Kubernetes types whose k8s-openapi schema would drag a long,
//! version-dependent description into our CRDs (and so make the checked-in YAML depend on which
//! Kubernetes version feature the workspace happens to enable).

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema of a `metav1.Time` field: an RFC 3339 timestamp string.
pub fn time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time",
    })
}

/// Schema of a `ResourceList` (`map[string]resource.Quantity`), as Kubernetes writes it.
pub fn resource_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [{ "type": "integer" }, { "type": "string" }],
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
            "x-kubernetes-int-or-string": true,
        },
    })
}
