//! What bare metal needs added to an Ignition config, decided from the MAAS machine and the
//! MaasMachine's options alone, as plain data both patchers apply the same way.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::domain::provider_id;

/// Where the kubelet provider-id drop-in goes. OpenShift's kubelet unit (machine-config-operator)
/// starts the kubelet with `--provider-id=${KUBELET_PROVIDERID}` and reads drop-ins from this
/// directory, the same mechanism its cloud platforms use to set the provider ID per node.
pub const PROVIDER_ID_DROPIN: &str =
    "/etc/systemd/system/kubelet.service.d/20-maas-providerid.conf";

/// The host name file systemd-hostnamed reads at boot.
pub const HOSTNAME_FILE: &str = "/etc/hostname";

/// The boot disk as Fedora CoreOS and RHCOS name it in the initramfs, whatever its kernel name.
pub const BOOT_DISK: &str = "/dev/disk/by-id/coreos-boot-disk";

/// Mode 0644, as Ignition wants it: a decimal integer.
const MODE_0644: i64 = 0o644;

/// The machine a config is patched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployTarget {
    /// MAAS system id.
    pub system_id: String,
    /// MAAS host name (short); empty when MAAS gave none.
    pub hostname: String,
    /// MAAS zone, the middle part of the provider ID.
    pub zone: String,
}

/// Options from `spec.ignition` of the MaasMachine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnitionPatchOptions {
    /// Partition numbers of the boot disk to delete before the OS uses it; empty: none.
    pub wipe_partitions: Vec<i64>,
}

impl IgnitionPatchOptions {
    /// Reads the API type; non-positive partition numbers are not partitions and are dropped.
    pub fn from_spec(spec: Option<&capmaas_api::IgnitionOptions>) -> Self {
        let mut wipe: Vec<i64> = spec
            .and_then(|s| s.wipe_partitions.as_ref())
            .map(|v| v.iter().map(|n| i64::from(*n)).filter(|n| *n > 0).collect())
            .unwrap_or_default();
        wipe.sort_unstable();
        wipe.dedup();
        IgnitionPatchOptions {
            wipe_partitions: wipe,
        }
    }
}

/// A file Ignition writes, replacing any entry of the config for the same path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAddition {
    /// Absolute path on the node.
    pub path: String,
    /// Exact contents.
    pub contents: String,
}

impl FileAddition {
    /// The Ignition 3.x `storage.files[]` entry (the same JSON in every 3.x version).
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "contents": {"source": data_url(&self.contents)},
            "mode": MODE_0644,
            "overwrite": true,
        })
    }
}

/// Partitions to delete from one disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionWipe {
    /// Disk device path.
    pub device: String,
    /// Partition numbers, ascending, without duplicates.
    pub numbers: Vec<i64>,
}

impl PartitionWipe {
    /// The Ignition 3.x `storage.disks[]` entry without partitions.
    pub fn disk_json(&self) -> Value {
        json!({"device": self.device})
    }

    /// The Ignition 3.x `partitions[]` entry that deletes partition `number`.
    pub fn partition_json(number: i64) -> Value {
        json!({"number": number, "shouldExist": false, "wipePartitionEntry": true})
    }
}

/// Everything added to one machine's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Additions {
    /// Files to write.
    pub files: Vec<FileAddition>,
    /// Partitions to delete, when asked for.
    pub wipe: Option<PartitionWipe>,
}

/// The additions for a machine: the host name file (when MAAS named the host), the kubelet
/// provider-id drop-in, and the partition wipe when the options ask for one.
pub fn additions_for(target: &DeployTarget, options: &IgnitionPatchOptions) -> Additions {
    let mut files = Vec::new();
    if !target.hostname.is_empty() {
        files.push(FileAddition {
            path: HOSTNAME_FILE.to_string(),
            contents: format!("{}\n", target.hostname),
        });
    }
    files.push(FileAddition {
        path: PROVIDER_ID_DROPIN.to_string(),
        contents: provider_id_dropin(&provider_id::build(&target.zone, &target.system_id)),
    });
    let wipe = (!options.wipe_partitions.is_empty()).then(|| PartitionWipe {
        device: BOOT_DISK.to_string(),
        numbers: options.wipe_partitions.clone(),
    });
    Additions { files, wipe }
}

/// The systemd drop-in that hands the provider ID to the kubelet.
pub fn provider_id_dropin(provider_id: &str) -> String {
    format!("[Service]\nEnvironment=\"KUBELET_PROVIDERID={provider_id}\"\n")
}

/// An RFC 2397 data URL; base64 keeps any byte exact without percent-encoding rules.
pub fn data_url(contents: &str) -> String {
    format!(
        "data:text/plain;charset=utf-8;base64,{}",
        STANDARD.encode(contents)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(hostname: &str) -> DeployTarget {
        DeployTarget {
            system_id: "abc123".into(),
            hostname: hostname.into(),
            zone: "az1".into(),
        }
    }

    #[test]
    fn hostname_and_provider_id_files() {
        let a = additions_for(&target("node-7"), &IgnitionPatchOptions::default());
        assert_eq!(a.files.len(), 2);
        assert_eq!(a.files[0].path, "/etc/hostname");
        assert_eq!(a.files[0].contents, "node-7\n");
        assert_eq!(a.files[1].path, PROVIDER_ID_DROPIN);
        assert_eq!(
            a.files[1].contents,
            "[Service]\nEnvironment=\"KUBELET_PROVIDERID=maas:///az1/abc123\"\n"
        );
        assert_eq!(a.wipe, None, "no wipe unless asked");
    }

    #[test]
    fn no_hostname_file_without_a_hostname() {
        let a = additions_for(&target(""), &IgnitionPatchOptions::default());
        let paths: Vec<_> = a.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [PROVIDER_ID_DROPIN]);
    }

    #[test]
    fn wipe_options_are_positive_sorted_and_unique() {
        let spec = capmaas_api::IgnitionOptions {
            wipe_partitions: Some(vec![5, 0, 3, 5, -1]),
        };
        let opts = IgnitionPatchOptions::from_spec(Some(&spec));
        assert_eq!(opts.wipe_partitions, [3, 5]);
        let a = additions_for(&target("h"), &opts);
        assert_eq!(
            a.wipe,
            Some(PartitionWipe {
                device: BOOT_DISK.into(),
                numbers: vec![3, 5]
            })
        );
        assert_eq!(
            IgnitionPatchOptions::from_spec(None),
            IgnitionPatchOptions::default()
        );
    }

    #[test]
    fn file_json_is_an_ignition_file_entry() {
        let f = FileAddition {
            path: "/etc/hostname".into(),
            contents: "h\n".into(),
        };
        let v = f.to_json();
        assert_eq!(v["mode"], 420);
        assert_eq!(v["overwrite"], true);
        let source = v["contents"]["source"].as_str().unwrap();
        let encoded = source
            .strip_prefix("data:text/plain;charset=utf-8;base64,")
            .unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"h\n");
    }
}
