//! Patching at the JSON level: used for 3.x versions the typed crate does not know yet, and for
//! configs with keys the typed schema would drop. Everything not touched stays byte-for-byte
//! the same value.

use serde_json::{Map, Value};

use super::additions::{Additions, PartitionWipe};

/// Applies the additions to a config object. `config` must be a JSON object.
pub fn apply(config: &mut Map<String, Value>, add: &Additions) {
    let Some(storage) = object_entry(config, "storage") else {
        return;
    };
    if !add.files.is_empty()
        && let Some(files) = array_entry(storage, "files")
    {
        for f in &add.files {
            files.retain(|e| e.get("path").and_then(Value::as_str) != Some(f.path.as_str()));
            files.push(f.to_json());
        }
    }
    if let Some(wipe) = &add.wipe
        && let Some(disks) = array_entry(storage, "disks")
    {
        apply_wipe(disks, wipe);
    }
}

fn apply_wipe(disks: &mut Vec<Value>, wipe: &PartitionWipe) {
    let same_device = |d: &Value| d.get("device").and_then(Value::as_str) == Some(&wipe.device);
    if !disks.iter().any(same_device) {
        disks.push(wipe.disk_json());
    }
    let Some(partitions) = disks
        .iter_mut()
        .find(|d| same_device(d))
        .and_then(Value::as_object_mut)
        .and_then(|disk| array_entry(disk, "partitions"))
    else {
        return;
    };
    for n in &wipe.numbers {
        partitions.retain(|p| p.get("number").and_then(Value::as_i64) != Some(*n));
        partitions.push(PartitionWipe::partition_json(*n));
    }
}

/// The object under `key`, created (or replacing a null or non-object) when needed; `None`
/// never happens.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The array under `key`, created (or replacing a null or non-array) when needed; `None` never
/// happens.
fn array_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

#[cfg(test)]
mod tests {
    use super::super::additions::FileAddition;
    use super::*;
    use serde_json::json;

    fn file(path: &str, contents: &str) -> FileAddition {
        FileAddition {
            path: path.into(),
            contents: contents.into(),
        }
    }

    #[test]
    fn adds_files_and_replaces_same_path() {
        let mut cfg = json!({
            "ignition": {"version": "3.9.0"},
            "storage": {"files": [
                {"path": "/etc/hostname", "contents": {"source": "data:,old"}},
                {"path": "/etc/keep", "future": 1}
            ]},
            "futureSection": {"x": 1}
        });
        let add = Additions {
            files: vec![file("/etc/hostname", "new\n")],
            wipe: None,
        };
        apply(cfg.as_object_mut().unwrap(), &add);
        let files = cfg["storage"]["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], json!({"path": "/etc/keep", "future": 1}));
        assert_eq!(files[1], add.files[0].to_json());
        assert_eq!(cfg["futureSection"], json!({"x": 1}), "unknown keys kept");
        assert!(cfg.get("storage").unwrap().get("disks").is_none());
    }

    #[test]
    fn wipe_merges_into_an_existing_disk_entry() {
        let mut cfg = json!({
            "ignition": {"version": "3.2.0"},
            "storage": {"disks": [
                {"device": "/dev/sdb", "wipeTable": true},
                {"device": "/dev/disk/by-id/coreos-boot-disk", "partitions": [
                    {"number": 4, "label": "root"},
                    {"number": 5, "shouldExist": true}
                ]}
            ]}
        });
        let add = Additions {
            files: vec![],
            wipe: Some(PartitionWipe {
                device: "/dev/disk/by-id/coreos-boot-disk".into(),
                numbers: vec![5, 6],
            }),
        };
        apply(cfg.as_object_mut().unwrap(), &add);
        let disks = cfg["storage"]["disks"].as_array().unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0], json!({"device": "/dev/sdb", "wipeTable": true}));
        assert_eq!(
            disks[1]["partitions"],
            json!([
                {"number": 4, "label": "root"},
                {"number": 5, "shouldExist": false, "wipePartitionEntry": true},
                {"number": 6, "shouldExist": false, "wipePartitionEntry": true}
            ])
        );
    }

    #[test]
    fn null_sections_become_containers() {
        let mut cfg = json!({"ignition": {"version": "3.2.0"}, "storage": null});
        let add = Additions {
            files: vec![file("/a", "b")],
            wipe: Some(PartitionWipe {
                device: "/dev/vda".into(),
                numbers: vec![1],
            }),
        };
        apply(cfg.as_object_mut().unwrap(), &add);
        assert_eq!(cfg["storage"]["files"].as_array().unwrap().len(), 1);
        assert_eq!(cfg["storage"]["disks"][0]["device"], "/dev/vda");
        assert_eq!(cfg["storage"]["disks"][0]["partitions"][0]["number"], 1);
    }
}
