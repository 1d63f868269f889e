use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::additions::{BOOT_DISK, HOSTNAME_FILE, PROVIDER_ID_DROPIN};
use super::*;

const TOKEN: &str = "Bearer c2VjcmV0LXRva2VuLWZvci10ZXN0cw==";
const SOURCE: &str = "https://ignition-server-clusters-hosted.apps.example.test/ignition";
const CA: &str =
    "data:text/plain;charset=utf-8;base64,LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ=";

/// The pointer config HyperShift writes into `user-data-<nodepool>-<hash>`.
fn pointer(version: &str) -> Value {
    json!({
        "ignition": {
            "version": version,
            "config": {"merge": [{
                "source": SOURCE,
                "httpHeaders": [
                    {"name": "Authorization", "value": TOKEN},
                    {"name": "NodePool", "value": "clusters/workers"},
                    {"name": "TargetConfigVersionHash", "value": "4f3a9c1d"}
                ]
            }]},
            "security": {"tls": {"certificateAuthorities": [{"source": CA}]}}
        }
    })
}

fn target() -> DeployTarget {
    DeployTarget {
        system_id: "x7k2pq".into(),
        hostname: "worker-3".into(),
        zone: "rack-a".into(),
    }
}

fn patch(doc: &Value, options: &IgnitionPatchOptions) -> (Value, PatchPath) {
    let out = patch_ignition(&serde_json::to_vec(doc).unwrap(), &target(), options).unwrap();
    (serde_json::from_slice(&out.bytes).unwrap(), out.path)
}

fn file_contents(doc: &Value, path: &str) -> Option<String> {
    let files = doc["storage"]["files"].as_array()?;
    let f = files.iter().find(|f| f["path"] == path)?;
    let source = f["contents"]["source"].as_str()?;
    let b64 = source.strip_prefix("data:text/plain;charset=utf-8;base64,")?;
    String::from_utf8(STANDARD.decode(b64).ok()?).ok()
}

/// Typed serialization writes unset options as `null`; Ignition reads null as unset.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn assert_pointer_intact(doc: &Value) {
    let merge = &doc["ignition"]["config"]["merge"];
    assert_eq!(merge.as_array().unwrap().len(), 1);
    assert_eq!(merge[0]["source"], SOURCE);
    assert_eq!(
        without_nulls(&merge[0]["httpHeaders"]),
        pointer("3.2.0")["ignition"]["config"]["merge"][0]["httpHeaders"]
    );
    assert_eq!(
        doc["ignition"]["security"]["tls"]["certificateAuthorities"][0]["source"],
        CA
    );
}

#[test]
fn hypershift_pointer_gets_hostname_and_provider_id_and_keeps_the_pointer() {
    let (doc, path) = patch(&pointer("3.2.0"), &IgnitionPatchOptions::default());
    assert_eq!(path, PatchPath::Typed);
    assert_eq!(doc["ignition"]["version"], "3.2.0");
    assert_pointer_intact(&doc);
    assert_eq!(
        file_contents(&doc, HOSTNAME_FILE).as_deref(),
        Some("worker-3\n")
    );
    assert_eq!(
        file_contents(&doc, PROVIDER_ID_DROPIN).as_deref(),
        Some("[Service]\nEnvironment=\"KUBELET_PROVIDERID=maas:///rack-a/x7k2pq\"\n")
    );
    assert_eq!(doc["storage"]["files"].as_array().unwrap().len(), 2);
    assert!(doc["storage"].get("disks").is_none(), "no wipe by default");
}

#[test]
fn every_3x_version_is_patched_the_same_typed_or_not() {
    let opts = IgnitionPatchOptions {
        wipe_partitions: vec![5],
    };
    for minor in 1..=6 {
        let version = format!("3.{minor}.0");
        let mut input = pointer(&version);
        input["storage"] =
            json!({"files": [{"path": "/etc/motd", "contents": {"source": "data:,hi"}}]});
        let (typed, path) = patch(&input, &opts);
        assert_eq!(path, PatchPath::Typed, "{version}");
        assert_pointer_intact(&typed);

        let mut by_value = input.clone();
        value::apply(
            by_value.as_object_mut().unwrap(),
            &additions_for(&target(), &opts),
        );
        assert_eq!(typed, by_value, "{version}: typed and JSON patching agree");
        assert_eq!(typed, without_nulls(&typed), "{version}: no nulls written");
        assert_eq!(typed["storage"]["files"].as_array().unwrap().len(), 3);
    }
    // 3.0.0 has no httpHeaders: a pointer without them.
    let v30 = json!({"ignition": {"version": "3.0.0", "config": {"merge": [{"source": SOURCE}]}}});
    let (doc, path) = patch(&v30, &opts);
    assert_eq!(path, PatchPath::Typed);
    assert_eq!(doc["ignition"]["config"]["merge"][0]["source"], SOURCE);
    assert!(file_contents(&doc, HOSTNAME_FILE).is_some());
}

#[test]
fn newer_3x_versions_are_patched_as_json() {
    let mut input = pointer("3.9.0");
    input["kernelArguments"] = json!({"shouldExist": ["x"]});
    let (doc, path) = patch(&input, &IgnitionPatchOptions::default());
    assert_eq!(path, PatchPath::Json);
    assert_eq!(doc["ignition"]["version"], "3.9.0");
    assert_eq!(doc["ignition"], input["ignition"], "pointer untouched");
    assert_eq!(doc["kernelArguments"], input["kernelArguments"]);
    assert!(file_contents(&doc, PROVIDER_ID_DROPIN).is_some());
}

#[test]
fn keys_outside_the_schema_are_kept() {
    let mut input = pointer("3.2.0");
    input["ignition"]["futureOption"] = json!(true);
    let (doc, path) = patch(&input, &IgnitionPatchOptions::default());
    assert_eq!(path, PatchPath::Json);
    assert_eq!(doc["ignition"]["futureOption"], true);
    assert_pointer_intact(&doc);
}

#[test]
fn wipe_partitions_targets_the_boot_disk_only_when_asked() {
    let opts = IgnitionPatchOptions {
        wipe_partitions: vec![5, 6],
    };
    let (doc, _) = patch(&pointer("3.2.0"), &opts);
    let disks = doc["storage"]["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 1);
    assert_eq!(disks[0]["device"], BOOT_DISK);
    let parts: Vec<_> = disks[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["number"].as_i64().unwrap(),
                p["shouldExist"].as_bool().unwrap(),
                p["wipePartitionEntry"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(parts, [(5, false, true), (6, false, true)]);
    assert_pointer_intact(&doc);
}

#[test]
fn patching_twice_changes_nothing_more() {
    let opts = IgnitionPatchOptions {
        wipe_partitions: vec![5],
    };
    let (once, _) = patch(&pointer("3.2.0"), &opts);
    let (twice, _) = patch(&once, &opts);
    assert_eq!(without_nulls(&once), without_nulls(&twice));
}

#[test]
fn existing_hostname_file_is_replaced() {
    let mut input = pointer("3.2.0");
    input["storage"] =
        json!({"files": [{"path": "/etc/hostname", "contents": {"source": "data:,localhost"}}]});
    let (doc, _) = patch(&input, &IgnitionPatchOptions::default());
    let hostname_entries = doc["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == HOSTNAME_FILE)
        .count();
    assert_eq!(hostname_entries, 1);
    assert_eq!(
        file_contents(&doc, HOSTNAME_FILE).as_deref(),
        Some("worker-3\n")
    );
}

#[test]
fn malformed_configs_are_refused_without_quoting_them() {
    let opts = IgnitionPatchOptions::default();
    let t = target();
    let err = |v: &[u8]| patch_ignition(v, &t, &opts).unwrap_err();
    assert!(matches!(
        err(b"{not json"),
        IgnitionError::NotJson { line: 1, .. }
    ));
    assert_eq!(err(br#"{"ignition": {}}"#), IgnitionError::NoVersion);
    assert_eq!(err(br#"[1]"#), IgnitionError::NoVersion);
    assert_eq!(
        err(br#"{"ignition": {"version": 3}}"#),
        IgnitionError::NoVersion
    );
    assert_eq!(
        err(br#"{"ignition": {"version": "2.2.0"}}"#),
        IgnitionError::UnsupportedVersion("2.2.0".into())
    );
    assert_eq!(
        err(br#"{"ignition": {"version": "3.0.0-experimental"}}"#),
        IgnitionError::UnsupportedVersion("3.0.0-experimental".into())
    );
    assert_eq!(
        err(br#"{"ignition": {"version": "three"}}"#),
        IgnitionError::BadVersion("three".into())
    );
    assert_eq!(
        err(br#"{"ignition": {"version": "3.2"}}"#),
        IgnitionError::BadVersion("3.2".into())
    );

    let mut wrong = pointer("3.2.0");
    wrong["storage"] = json!({"files": [{"path": TOKEN, "mode": "rw"}]});
    let e = err(&serde_json::to_vec(&wrong).unwrap());
    assert!(
        matches!(&e, IgnitionError::Schema { version, .. } if version == "3.2.0"),
        "{e:?}"
    );
    let message = e.to_string();
    assert!(!message.contains("c2VjcmV0"), "{message}");
    assert!(!message.contains("rw"), "{message}");
}

#[test]
fn cloud_config_passes_through() {
    let data = b"#cloud-config\nruncmd:\n  - kubeadm join\n";
    let out = prepare_user_data(
        UserDataFormat::CloudConfig,
        data,
        &target(),
        &IgnitionPatchOptions::default(),
    )
    .unwrap();
    assert_eq!(out, data);
    let ign = prepare_user_data(
        UserDataFormat::Ignition,
        &serde_json::to_vec(&pointer("3.2.0")).unwrap(),
        &target(),
        &IgnitionPatchOptions::default(),
    )
    .unwrap();
    let doc: Value = serde_json::from_slice(&ign).unwrap();
    assert_pointer_intact(&doc);
    assert!(
        prepare_user_data(
            UserDataFormat::Ignition,
            data,
            &target(),
            &IgnitionPatchOptions::default()
        )
        .is_err(),
        "cloud-config declared as Ignition is refused"
    );
}
