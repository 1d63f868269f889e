//! The structural-schema rule the API server enforces on CRDs, checked before an API server
//! ever sees them: every node has a `type` unless it preserves unknown fields or is an
//! int-or-string, `type` is a single string, no `$ref`, and no `anyOf`/`oneOf` on a node
//! without a type.

use serde_json::Value;

/// Every violation in `schema`, each as `<path>: <what is wrong>`; empty means structural.
pub fn structural_violations(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "<root>", &mut out);
    out
}

fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = node else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    let flag = |key: &str| map.get(key).and_then(Value::as_bool) == Some(true);
    let preserves = flag("x-kubernetes-preserve-unknown-fields");
    let int_or_string = flag("x-kubernetes-int-or-string");
    if map.contains_key("$ref") {
        out.push(format!("{path}: has a $ref"));
    }
    match map.get("type") {
        Some(Value::String(t)) if t == "null" => out.push(format!("{path}: type null")),
        Some(Value::String(_)) => {}
        Some(other) => out.push(format!("{path}: type is not a single string: {other}")),
        None if preserves || int_or_string => {}
        None => out.push(format!("{path}: no type")),
    }
    for key in ["anyOf", "oneOf"] {
        if map.contains_key(key) && !map.contains_key("type") && !int_or_string {
            out.push(format!("{path}: {key} on a node without a type"));
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, child) in props {
            walk(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = map.get("items") {
        walk(items, &format!("{path}[]"), out);
    }
    if let Some(additional @ Value::Object(_)) = map.get("additionalProperties") {
        walk(additional, &format!("{path}{{*}}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_typed_and_special_nodes() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"x-kubernetes-preserve-unknown-fields": true},
                "c": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "d": {"type": "array", "items": {"type": "integer"}},
                "e": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        });
        assert_eq!(structural_violations(&schema), Vec::<String>::new());
    }

    #[test]
    fn reports_each_violation_with_its_path() {
        let schema = json!({
            "type": "object",
            "properties": {
                "untyped": {"description": "x"},
                "nullable_array": {"type": ["string", "null"]},
                "reffed": {"$ref": "#/definitions/X", "type": "object"},
                "list": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                "map": {"type": "object", "additionalProperties": {"properties": {}}},
            }
        });
        let v = structural_violations(&schema);
        assert_eq!(v.len(), 6, "{v:#?}");
        assert!(v.contains(&"<root>.untyped: no type".to_owned()));
        assert!(
            v.iter()
                .any(|m| m.starts_with("<root>.nullable_array: type is not"))
        );
        assert!(v.contains(&"<root>.reffed: has a $ref".to_owned()));
        assert!(v.contains(&"<root>.list[]: no type".to_owned()));
        assert!(v.contains(&"<root>.list[]: anyOf on a node without a type".to_owned()));
        assert!(v.contains(&"<root>.map{*}: no type".to_owned()));
    }
}
