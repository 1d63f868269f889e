#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests of the bootstrap data on its way to MAAS: any valid Ignition 3.x config is
//! patched into a config that parses, keeps every pointer field (merge and replace sources with
//! their headers, the CAs) and the user's files and units, and patching twice equals patching
//! once; format detection never panics and finds Ignition exactly where it is. The case count is
//! proptest's default in `make test`; `make fuzz` raises it with PROPTEST_CASES.

use capmaas_controllers::domain::ignition::{DeployTarget, IgnitionPatchOptions, patch_ignition};
use capmaas_controllers::domain::user_data::{UserDataFormat, detect_format};
use proptest::prelude::*;
use serde_json::{Value, json};

const VERSIONS: [&str; 6] = ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"];

fn source() -> impl Strategy<Value = String> {
    ("[a-z]{1,8}", "[a-z0-9/]{0,16}").prop_map(|(host, path)| format!("https://{host}.test/{path}"))
}

/// The pointer part of a config: where the real config comes from, how to fetch it, whom to
/// trust. HTTP headers exist from 3.1 on.
fn pointer(minor: usize) -> impl Strategy<Value = Value> {
    let header =
        ("[A-Za-z-]{1,12}", "[ -~]{0,24}").prop_map(|(n, v)| json!({"name": n, "value": v}));
    let headers = prop::collection::vec(header, 0..3);
    let merge = prop::collection::vec((source(), headers.clone()), 0..3);
    let cas = prop::collection::vec(source(), 0..2);
    (merge, cas).prop_map(move |(merge, cas)| {
        let merge: Vec<Value> = merge
            .into_iter()
            .map(|(s, h)| {
                if minor >= 1 && !h.is_empty() {
                    json!({"source": s, "httpHeaders": h})
                } else {
                    json!({"source": s})
                }
            })
            .collect();
        let cas: Vec<Value> = cas.into_iter().map(|s| json!({"source": s})).collect();
        json!({"config": {"merge": merge}, "security": {"tls": {"certificateAuthorities": cas}}})
    })
}

/// A valid Ignition 3.x config: a pointer, files, units and users of the user's own.
fn ignition_config() -> impl Strategy<Value = Value> {
    (0..VERSIONS.len()).prop_flat_map(|minor| {
        let file = ("/[a-z]{1,8}/[a-z]{1,8}", "[a-z ]{0,16}", 0o400i64..0o777).prop_map(
            |(p, c, m)| json!({"path": p, "contents": {"source": format!("data:,{c}")}, "mode": m}),
        );
        let unit = ("[a-z]{1,8}\\.service", any::<bool>(), "[ -~]{0,32}")
            .prop_map(|(n, e, c)| json!({"name": n, "enabled": e, "contents": c}));
        let user = (
            "[a-z]{1,8}",
            prop::collection::vec("ssh-ed25519 [A-Za-z0-9]{8}", 0..2),
        )
            .prop_map(|(n, k)| json!({"name": n, "sshAuthorizedKeys": k}));
        (
            pointer(minor),
            prop::collection::vec(file, 0..3),
            prop::collection::vec(unit, 0..3),
            prop::collection::vec(user, 0..2),
        )
            .prop_map(move |(mut ignition, files, units, users)| {
                ignition["version"] = json!(VERSIONS[minor]);
                json!({
                    "ignition": ignition,
                    "storage": {"files": files},
                    "systemd": {"units": units},
                    "passwd": {"users": users},
                })
            })
    })
}

fn target() -> impl Strategy<Value = DeployTarget> {
    ("[a-z0-9]{6}", "[a-z][a-z0-9-]{0,12}", "[a-z0-9-]{1,8}").prop_map(|(id, host, zone)| {
        DeployTarget {
            system_id: id,
            hostname: host,
            zone,
        }
    })
}

fn options() -> impl Strategy<Value = IgnitionPatchOptions> {
    prop::collection::btree_set(1i64..16, 0..3).prop_map(|set| IgnitionPatchOptions {
        wipe_partitions: set.into_iter().collect(),
    })
}

/// The names or paths of the entries of `list` at `section.key`.
fn names(config: &Value, section: &str, key: &str, field: &str) -> Vec<String> {
    config[section][key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #[test]
    fn a_patched_config_parses_keeps_the_pointer_and_is_stable(
        config in ignition_config(),
        target in target(),
        options in options(),
    ) {
        let bytes = serde_json::to_vec(&config).unwrap();
        let once = patch_ignition(&bytes, &target, &options).unwrap();
        let patched: Value = serde_json::from_slice(&once.bytes).unwrap();
        prop_assert_eq!(&patched["ignition"]["version"], &config["ignition"]["version"]);
        prop_assert_eq!(&patched["ignition"]["config"], &config["ignition"]["config"]);
        prop_assert_eq!(&patched["ignition"]["security"], &config["ignition"]["security"]);
        for (section, key, field) in [("storage", "files", "path"), ("systemd", "units", "name"), ("passwd", "users", "name")] {
            let before = names(&config, section, key, field);
            let after = names(&patched, section, key, field);
            for name in &before {
                prop_assert!(after.contains(name), "{section}.{key}: {name} lost");
            }
        }
        prop_assert!(
            names(&patched, "storage", "files", "path").contains(&"/etc/hostname".to_string()),
            "the host name is written"
        );
        let twice = patch_ignition(&once.bytes, &target, &options).unwrap();
        prop_assert_eq!(
            serde_json::from_slice::<Value>(&twice.bytes).unwrap(),
            patched,
            "patching twice equals patching once"
        );
    }

    #[test]
    fn format_detection_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let format = detect_format(None, None, &bytes);
        let is_ignition = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .is_some_and(|v| v["ignition"]["version"].is_string());
        prop_assert_eq!(format == UserDataFormat::Ignition, is_ignition);
    }

    #[test]
    fn a_valid_config_is_detected_as_ignition(config in ignition_config()) {
        let bytes = serde_json::to_vec(&config).unwrap();
        prop_assert_eq!(detect_format(None, None, &bytes), UserDataFormat::Ignition);
    }
}
