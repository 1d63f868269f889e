//! Template CRDs without the transition rules (`oldSelf`) of the objects they stamp out. A
//! MaasMachine's `image` or a MaasCluster's `dnsDomain` is immutable on the object; in a template
//! the whole `spec.template` is, and the release's ValidatingAdmissionPolicy says so, because
//! only it can let Cluster API's topology dry-run through (the CRD cannot see the request).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The CRD with every `oldSelf` rule below `spec.template` removed; other rules stay.
pub(super) fn without_transition_rules(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    super::edit_schemas(crd, |schema| {
        if let Some(template) = schema.pointer_mut("/properties/spec/properties/template") {
            drop_transition_rules(template);
        }
    })
}

/// Removes the rules that read `oldSelf` from `node` and everything below it.
pub(super) fn drop_transition_rules(node: &mut Value) {
    let Value::Object(map) = node else { return };
    if let Some(Value::Array(rules)) = map.get_mut("x-kubernetes-validations") {
        rules.retain(|r| !r["rule"].as_str().unwrap_or_default().contains("oldSelf"));
        if rules.is_empty() {
            map.remove("x-kubernetes-validations");
        }
    }
    for key in ["properties", "additionalProperties", "items"] {
        match map.get_mut(key) {
            Some(Value::Object(children)) if key == "properties" => {
                children.values_mut().for_each(drop_transition_rules);
            }
            Some(child) => drop_transition_rules(child),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_transition_rules_go_at_every_depth() {
        let mut schema = json!({"properties": {
            "image": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "immutable"}]},
            "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [
                {"rule": "!self.contains(' ')", "message": "no spaces"},
                {"rule": "oldSelf == self", "message": "immutable"}]}},
        }});
        drop_transition_rules(&mut schema);
        assert_eq!(
            schema,
            json!({"properties": {
                "image": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "!self.contains(' ')", "message": "no spaces"}]}},
            }})
        );
    }
}
