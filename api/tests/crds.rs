#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The generated CRDs: checked-in files in sync, structural schemas in both profiles, names,
//! labels, columns and the HyperShift base shape.

use capmaas_api::crdgen::{
    self, Profile, check_dir, crds, default_out_dir, render_fields_doc, schema_of,
    structural::structural_violations,
};
use capmaas_api::labels;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

fn by_kind(profile: Profile, kind: &str) -> CustomResourceDefinition {
    crds(profile)
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} CRD in {profile:?}"))
}

fn at<'a>(schema: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = schema;
    for part in path {
        node = match *part {
            "[]" => node.get("items")?,
            name => node.get("properties")?.get(name)?,
        };
    }
    Some(node)
}

#[test]
fn checked_in_crds_match_the_generator() {
    let drift = check_dir(&default_out_dir(), Profile::Full).unwrap();
    assert!(
        drift.is_empty(),
        "config/crd/bases is stale, run `make crds`: {drift:?}"
    );
}

#[test]
fn checked_in_fields_doc_matches_the_generator() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("FIELDS.md");
    let current = std::fs::read_to_string(&path).unwrap();
    assert!(
        current == render_fields_doc(),
        "api/FIELDS.md is stale, run `cargo run -p capmaas-api --features crdgen --bin crdgen -- --fields-doc`"
    );
}

#[test]
fn check_dir_reports_a_changed_and_a_missing_file() {
    let dir = std::env::temp_dir().join(format!("capmaas-crdgen-check-{}", std::process::id()));
    let written = crdgen::write_dir(&dir, Profile::Full).unwrap();
    assert_eq!(written.len(), 4);
    assert!(check_dir(&dir, Profile::Full).unwrap().is_empty());
    std::fs::write(&written[0], "changed").unwrap();
    std::fs::remove_file(&written[1]).unwrap();
    let drift = check_dir(&dir, Profile::Full).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(matches!(drift[0], crdgen::Drift::Changed(_)));
    assert!(matches!(drift[1], crdgen::Drift::Missing(_)));
}

#[test]
fn every_schema_is_structural_in_both_profiles() {
    for profile in Profile::ALL {
        for crd in crds(profile) {
            let schema = schema_of(&crd);
            assert!(schema.is_object(), "{} has no schema", crd.spec.names.kind);
            let violations = structural_violations(&schema);
            assert!(
                violations.is_empty(),
                "{profile:?} {}: {violations:#?}",
                crd.spec.names.kind
            );
        }
    }
}

#[test]
fn file_names_follow_kubebuilder() {
    let names: Vec<String> = crds(Profile::Full)
        .iter()
        .map(crdgen::crd_file_name)
        .collect();
    assert_eq!(
        names,
        [
            "infrastructure.cluster.x-k8s.io_maasclusters.yaml",
            "infrastructure.cluster.x-k8s.io_maasmachines.yaml",
            "infrastructure.cluster.x-k8s.io_maasmachinetemplates.yaml",
            "infrastructure.cluster.x-k8s.io_maasclustertemplates.yaml",
        ]
    );
}

#[test]
fn names_scope_category_and_contract_labels() {
    let expected = [
        ("MaasCluster", "maasc"),
        ("MaasMachine", "maasm"),
        ("MaasMachineTemplate", "maasmt"),
        ("MaasClusterTemplate", "maasct"),
    ];
    let all = crds(Profile::Full);
    assert_eq!(all.len(), expected.len());
    for (kind, short) in expected {
        let crd = by_kind(Profile::Full, kind);
        assert_eq!(crd.spec.group, "infrastructure.cluster.x-k8s.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.versions.len(), 1);
        assert_eq!(crd.spec.versions[0].name, "v1beta1");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_owned()][..])
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["cluster-api".to_owned()][..])
        );
        let crd_labels = crd.metadata.labels.clone().unwrap();
        assert_eq!(
            crd_labels.get(labels::CONTRACT_V1BETA1).map(String::as_str),
            Some("v1beta1")
        );
        assert_eq!(
            crd_labels.get(labels::CONTRACT_V1BETA2).map(String::as_str),
            Some("v1beta1")
        );
    }
    for kind in ["MaasCluster", "MaasMachine", "MaasMachineTemplate"] {
        let crd = by_kind(Profile::Full, kind);
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has no status subresource"
        );
    }
}

#[test]
fn printer_columns() {
    let columns = |kind: &str| -> Vec<(String, String)> {
        by_kind(Profile::Full, kind).spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.json_path))
            .collect()
    };
    let cluster_label = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']";
    assert_eq!(
        columns("MaasCluster"),
        [
            ("Cluster".to_owned(), cluster_label.to_owned()),
            ("Ready".to_owned(), ".status.ready".to_owned()),
            (
                "Endpoint".to_owned(),
                ".spec.controlPlaneEndpoint.host".to_owned()
            ),
            ("Age".to_owned(), ".metadata.creationTimestamp".to_owned()),
        ]
    );
    let machine: Vec<String> = columns("MaasMachine").into_iter().map(|c| c.0).collect();
    assert_eq!(
        machine,
        ["Cluster", "State", "SystemID", "ProviderID", "Ready", "Age"]
    );
}

#[test]
fn full_schema_has_the_json_names_and_validation() {
    let machine = schema_of(&by_kind(Profile::Full, "MaasMachine"));
    for field in [
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
        "gpu",
        "userDataFormat",
        "release",
        "ignition",
    ] {
        assert!(
            at(&machine, &["spec", field]).is_some(),
            "spec.{field} missing"
        );
    }
    for field in [
        "ready",
        "initialization",
        "machineState",
        "machinePowered",
        "hostname",
        "addresses",
        "hardware",
        "conditions",
        "failureReason",
        "failureMessage",
    ] {
        assert!(
            at(&machine, &["status", field]).is_some(),
            "status.{field} missing"
        );
    }
    assert_eq!(
        at(&machine, &["spec", "minCPU", "minimum"]),
        None,
        "minimum is a keyword, not a property"
    );
    assert_eq!(at(&machine, &["spec", "minCPU"]).unwrap()["minimum"], 0.0);
    assert_eq!(
        at(&machine, &["spec", "minMemory"]).unwrap()["minimum"],
        0.0
    );
    assert_eq!(
        at(&machine, &["spec", "gpu", "minCount"]).unwrap()["minimum"],
        1.0
    );
    assert_eq!(at(&machine, &["spec", "image"]).unwrap()["minLength"], 1);
    assert_eq!(
        at(&machine, &["spec", "userDataFormat"]).unwrap()["enum"],
        serde_json::json!(["cloud-config", "ignition"])
    );
    for gpu_field in [
        "vendorId",
        "vendorName",
        "productId",
        "productName",
        "pciAddress",
        "numaNode",
    ] {
        assert!(at(&machine, &["status", "hardware", "gpus", "[]", gpu_field]).is_some());
    }

    let cluster = schema_of(&by_kind(Profile::Full, "MaasCluster"));
    assert_eq!(
        at(&cluster, &["spec"]).unwrap()["required"],
        serde_json::json!(["dnsDomain"])
    );
    let fd = at(&cluster, &["status", "failureDomains"]).unwrap();
    assert_eq!(fd["x-kubernetes-preserve-unknown-fields"], true);
    assert!(
        fd.get("type").is_none(),
        "a type would forbid one of the two shapes"
    );
    assert!(at(&cluster, &["status", "network", "dnsName"]).is_some());
    assert!(at(&cluster, &["spec", "identityRef", "name"]).is_some());

    let template = schema_of(&by_kind(Profile::Full, "MaasMachineTemplate"));
    assert!(at(&template, &["status", "capacity"]).is_some());
    assert!(at(&template, &["status", "nodeInfo", "architecture"]).is_some());
    assert!(at(&template, &["status", "nodeInfo", "operatingSystem"]).is_some());
    assert!(at(&template, &["spec", "template", "spec", "image"]).is_some());

    let cluster_template = schema_of(&by_kind(Profile::Full, "MaasClusterTemplate"));
    assert!(
        at(
            &cluster_template,
            &["spec", "template", "spec", "dnsDomain"]
        )
        .is_some()
    );
}

fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => {
            usize::from(m.contains_key(key)) + m.values().map(|c| count_key(c, key)).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(|c| count_key(c, key)).sum(),
        _ => 0,
    }
}

#[test]
fn hypershift_profile_is_the_go_base_shape() {
    let all = crds(Profile::Hypershift);
    let kinds: Vec<&str> = all.iter().map(|c| c.spec.names.kind.as_str()).collect();
    assert_eq!(kinds, ["MaasCluster", "MaasMachine", "MaasMachineTemplate"]);
    for crd in &all {
        let crd_labels = crd.metadata.labels.clone().unwrap();
        assert_eq!(crd_labels.len(), 1);
        assert_eq!(
            crd_labels.get(labels::CONTRACT_V1BETA1).map(String::as_str),
            Some("v1beta1")
        );
        let schema = schema_of(crd);
        assert_eq!(count_key(&schema, "x-kubernetes-validations"), 0);
        assert_eq!(count_key(&schema, "nullable"), 0);
    }

    let machine = schema_of(&by_kind(Profile::Hypershift, "MaasMachine"));
    let spec_fields: Vec<&String> = at(&machine, &["spec"]).unwrap()["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        spec_fields,
        [
            "failureDomain",
            "image",
            "minCPU",
            "minMemory",
            "providerID",
            "resourcePool",
            "systemID",
            "tags"
        ]
    );
    assert_eq!(
        at(&machine, &["spec"]).unwrap()["required"],
        serde_json::json!(["image", "minCPU", "minMemory"])
    );
    assert_eq!(
        at(&machine, &["status"]).unwrap()["required"],
        serde_json::json!(["ready"])
    );
    assert!(at(&machine, &["status", "hardware"]).is_none());
    assert!(at(&machine, &["status", "initialization"]).is_none());
    assert!(
        at(
            &machine,
            &["status", "conditions", "[]", "observedGeneration"]
        )
        .is_none()
    );
    assert_eq!(
        at(&machine, &["status", "conditions", "[]"]).unwrap()["required"],
        serde_json::json!(["lastTransitionTime", "status", "type"])
    );
    assert_eq!(
        at(&machine, &["status", "addresses", "[]", "type"]).unwrap()["enum"],
        serde_json::json!([
            "Hostname",
            "ExternalIP",
            "InternalIP",
            "ExternalDNS",
            "InternalDNS"
        ])
    );

    let cluster = schema_of(&by_kind(Profile::Hypershift, "MaasCluster"));
    assert!(at(&cluster, &["spec", "identityRef"]).is_none());
    assert_eq!(
        at(&cluster, &["status"]).unwrap()["required"],
        serde_json::json!(["ready"])
    );
    assert_eq!(
        at(&cluster, &["status", "failureDomains"]).unwrap()["type"],
        "object"
    );

    let template = schema_of(&by_kind(Profile::Hypershift, "MaasMachineTemplate"));
    assert!(at(&template, &["status"]).is_none());
    assert!(at(&template, &["spec", "template", "metadata"]).is_none());
    assert_eq!(
        at(&template, &["spec", "template", "spec"]).unwrap()["required"],
        serde_json::json!(["image", "minCPU", "minMemory"])
    );
}

#[test]
fn hypershift_profile_renders_as_yaml() {
    let files = crdgen::rendered_files(Profile::Hypershift).unwrap();
    assert_eq!(files.len(), 3);
    for (name, content) in files {
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&content).unwrap();
        assert_eq!(crdgen::crd_file_name(&parsed), name);
    }
}

#[test]
fn rendered_yaml_reads_back_as_the_same_crds() {
    for profile in Profile::ALL {
        let files = crdgen::rendered_files(profile).unwrap();
        for (crd, (name, content)) in crds(profile).iter().zip(&files) {
            let parsed: Value = serde_saphyr::from_str(content).unwrap();
            assert_eq!(
                parsed,
                serde_json::to_value(crd).unwrap(),
                "{name} ({profile:?}) does not read back as the CRD it was rendered from"
            );
        }
    }
}
