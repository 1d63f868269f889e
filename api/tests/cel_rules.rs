#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every CEL rule in the full CRDs, evaluated client-side against valid and invalid objects
//! with the same Kubernetes CEL library the API server uses (kube's `cel` feature). The check
//! against a real API server comes with the end-to-end harness.

use capmaas_api::crdgen::{Profile, crds, schema_of};
use kube::core::cel::{Validator, compile_schema};
use serde_json::{Value, json};

fn schema(kind: &str) -> Value {
    let crd = crds(Profile::Full)
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    schema_of(&crd)
}

/// The messages of every failed rule; empty when the object is accepted.
fn failures(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(kind), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn machine(spec: Value) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachine",
        "metadata": {"name": "m", "namespace": "default"},
        "spec": spec
    })
}

fn cluster(spec: Value) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasCluster",
        "metadata": {"name": "c", "namespace": "default"},
        "spec": spec
    })
}

fn machine_template(spec: Value) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "MaasMachineTemplate",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": {"template": {"spec": spec}}
    })
}

fn assert_refused(found: &[String], message: &str) {
    assert!(
        found.iter().any(|f| f.contains(message)),
        "expected a failure containing {message:?}, got {found:?}"
    );
}

#[test]
fn dns_domain_is_immutable() {
    let old = cluster(json!({"dnsDomain": "maas"}));
    assert_eq!(failures("MaasCluster", &old, None), Vec::<String>::new());
    assert_eq!(
        failures("MaasCluster", &old, Some(&old)),
        Vec::<String>::new()
    );
    let changed = cluster(json!({"dnsDomain": "other"}));
    assert_refused(
        &failures("MaasCluster", &changed, Some(&old)),
        "dnsDomain is immutable",
    );
    // Other fields stay mutable.
    let endpoint =
        cluster(json!({"dnsDomain": "maas", "controlPlaneEndpoint": {"host": "h", "port": 6443}}));
    assert_eq!(
        failures("MaasCluster", &endpoint, Some(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn min_cpu_and_min_memory_are_immutable_as_in_the_go_provider() {
    let old = machine(json!({"image": "jammy", "minCPU": 1, "minMemory": 1024}));
    let more_cpu = machine(json!({"image": "jammy", "minCPU": 8, "minMemory": 1024}));
    assert_refused(
        &failures("MaasMachine", &more_cpu, Some(&old)),
        "minCPU is immutable",
    );
    let more_memory = machine(json!({"image": "jammy", "minCPU": 1, "minMemory": 4096}));
    assert_refused(
        &failures("MaasMachine", &more_memory, Some(&old)),
        "minMemory is immutable",
    );
    let unchanged =
        machine(json!({"image": "jammy", "minCPU": 1, "minMemory": 1024, "tags": ["a"]}));
    assert_eq!(
        failures("MaasMachine", &unchanged, Some(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn image_is_immutable() {
    let old = machine(json!({"image": "jammy", "minCPU": 1}));
    let changed = machine(json!({"image": "noble", "minCPU": 1}));
    assert_refused(
        &failures("MaasMachine", &changed, Some(&old)),
        "image is immutable",
    );
    let provider_id_set =
        machine(json!({"image": "jammy", "minCPU": 1, "providerID": "maas:///z/abc"}));
    assert_eq!(
        failures("MaasMachine", &provider_id_set, Some(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn tag_names_are_checked_in_tags_and_not_tags() {
    let good =
        machine(json!({"image": "jammy", "tags": ["gpu", "rack_1", "a-b"], "notTags": ["x9"]}));
    assert_eq!(failures("MaasMachine", &good, None), Vec::<String>::new());
    let bad_tag = machine(json!({"image": "jammy", "tags": ["gpu", "bad tag"]}));
    let found = failures("MaasMachine", &bad_tag, None);
    assert_refused(&found, "tags: a MAAS tag name may only contain");
    assert_eq!(found.len(), 1, "{found:?}");
    let bad_not_tag = machine(json!({"image": "jammy", "notTags": ["a/b"]}));
    assert_refused(
        &failures("MaasMachine", &bad_not_tag, None),
        "notTags: a MAAS tag name may only contain",
    );
}

#[test]
fn erase_options_must_be_consistent() {
    for (release, ok) in [
        (json!({"erase": true}), true),
        (json!({"erase": true, "quickErase": true}), true),
        (
            json!({"erase": true, "secureErase": true, "quickErase": true}),
            true,
        ),
        (json!({"quickErase": false}), true),
        (json!({}), true),
        (json!({"quickErase": true}), false),
        (json!({"secureErase": true}), false),
        (json!({"erase": false, "secureErase": true}), false),
    ] {
        let object = machine(json!({"image": "jammy", "release": release.clone()}));
        let found = failures("MaasMachine", &object, None);
        if ok {
            assert_eq!(found, Vec::<String>::new(), "{release}");
        } else {
            assert_refused(
                &found,
                "quickErase and secureErase only apply with erase: true",
            );
        }
    }
}

/// Template immutability is the admission policy's (config/admission, checked end to end
/// against the API server); the CRD lets a change through so that topology dry-runs pass.
#[test]
fn machine_template_rules_apply_inside_the_template() {
    let old = machine_template(json!({"image": "ubuntu/focal", "minCPU": 1, "minMemory": 1024}));
    let changed =
        machine_template(json!({"image": "ubuntu/focal", "minCPU": 2, "minMemory": 1024}));
    assert_eq!(
        failures("MaasMachineTemplate", &changed, Some(&old)),
        Vec::<String>::new(),
        "no CRD rule refuses the topology controller's dry-run"
    );
    let bad = machine_template(json!({"image": "ubuntu/focal", "tags": ["no spaces"]}));
    assert_refused(
        &failures("MaasMachineTemplate", &bad, None),
        "tags: a MAAS tag name",
    );
}

fn rules_with_nodes(node: &Value, out: &mut Vec<(String, Value)>) {
    let Value::Object(map) = node else { return };
    if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
        for rule in rules {
            out.push((rule["rule"].as_str().unwrap().to_owned(), node.clone()));
            assert!(
                rule.get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| !m.is_empty()),
                "rule {rule} has no message"
            );
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        props.values().for_each(|c| rules_with_nodes(c, out));
    }
    if let Some(items) = map.get("items") {
        rules_with_nodes(items, out);
    }
}

#[test]
fn every_rule_compiles_and_has_a_message() {
    let mut total = 0;
    for crd in crds(Profile::Full) {
        let schema = schema_of(&crd);
        let mut rules = Vec::new();
        rules_with_nodes(&schema, &mut rules);
        for (rule, node) in &rules {
            assert!(
                !compile_schema(node).has_errors(),
                "{rule} does not compile"
            );
        }
        total += rules.len();
    }
    // The compile check has teeth: a broken rule is reported.
    let broken = json!({"type": "string", "x-kubernetes-validations": [{"rule": "self ==", "message": "m"}]});
    assert!(compile_schema(&broken).has_errors());
    // The MaasCluster's dnsDomain; the MaasMachine's minCPU, minMemory, image, tags, notTags,
    // release, and architecture and hweKernel (each a spelling and an immutability rule); in the
    // MaasMachineTemplate, tags, notTags, release and the two spellings only (the transition
    // rules are the admission policy's there, and the cluster template keeps none).
    assert_eq!(total, 1 + (6 + 4) + (3 + 2));
}

#[test]
fn architecture_and_kernel_take_maas_spellings_and_stay_fixed() {
    for arch in [
        "amd64",
        "amd64/generic",
        "arm64/generic",
        "ppc64el",
        "s390x/generic",
    ] {
        let m = machine(json!({"image": "jammy", "architecture": arch}));
        assert!(failures("MaasMachine", &m, None).is_empty(), "{arch}");
    }
    for arch in ["ppc64le", "x86_64", "AMD64", "arm64/"] {
        let m = machine(json!({"image": "jammy", "architecture": arch}));
        assert_refused(
            &failures("MaasMachine", &m, None),
            "architecture: a MAAS architecture",
        );
    }
    for kernel in ["hwe-22.04", "ga-24.04", "hwe-24.04-lowlatency", "hwe-x"] {
        let m = machine(json!({"image": "jammy", "hweKernel": kernel}));
        assert!(failures("MaasMachine", &m, None).is_empty(), "{kernel}");
    }
    for kernel in ["linux-6.8", "hwe-2204", "HWE-22.04"] {
        let t = machine_template(json!({"image": "jammy", "hweKernel": kernel}));
        assert_refused(
            &failures("MaasMachineTemplate", &t, None),
            "hweKernel: a MAAS kernel name",
        );
    }
    let old = machine(json!({"image": "jammy", "architecture": "amd64", "hweKernel": "hwe-22.04"}));
    let new = machine(json!({"image": "jammy", "architecture": "arm64", "hweKernel": "ga-24.04"}));
    let found = failures("MaasMachine", &new, Some(&old));
    assert_refused(&found, "architecture is immutable");
    assert_refused(&found, "hweKernel is immutable");
}
