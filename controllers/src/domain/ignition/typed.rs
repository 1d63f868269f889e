//! Patching through the ignition-config types, for the 3.x versions the crate knows: the config
//! is checked against its version's schema on the way in, and written back by the same types.

use ignition_config::Config;

use super::additions::{Additions, PartitionWipe};

/// Why a typed patch could not be applied.
#[derive(Debug)]
pub enum TypedPatch {
    /// Applied.
    Done,
    /// The crate parsed a config variant this code does not know (a newer crate): patch the
    /// JSON instead.
    UnknownVariant,
}

/// Applies the additions in each version's own storage types. The entries are built from the
/// same JSON the value patcher writes, so both paths produce the same config.
macro_rules! patch_storage {
    ($config:expr, $add:expr) => {{
        let storage = $config.storage.get_or_insert_with(Default::default);
        if !$add.files.is_empty() {
            let files = storage.files.get_or_insert_with(Vec::new);
            for f in &$add.files {
                files.retain(|e| e.path != f.path);
                files.push(serde_json::from_value(f.to_json())?);
            }
        }
        if let Some(wipe) = &$add.wipe {
            let disks = storage.disks.get_or_insert_with(Vec::new);
            if !disks.iter().any(|d| d.device == wipe.device) {
                disks.push(serde_json::from_value(wipe.disk_json())?);
            }
            if let Some(disk) = disks.iter_mut().find(|d| d.device == wipe.device) {
                let partitions = disk.partitions.get_or_insert_with(Vec::new);
                for n in &wipe.numbers {
                    partitions.retain(|p| p.number != Some(*n));
                    partitions.push(serde_json::from_value(PartitionWipe::partition_json(*n))?);
                }
            }
        }
    }};
}

/// Applies the additions to a parsed config.
pub fn apply(config: &mut Config, add: &Additions) -> Result<TypedPatch, serde_json::Error> {
    match config {
        Config::V3_0(c) => patch_storage!(c, add),
        Config::V3_1(c) => patch_storage!(c, add),
        Config::V3_2(c) => patch_storage!(c, add),
        Config::V3_3(c) => patch_storage!(c, add),
        Config::V3_4(c) => patch_storage!(c, add),
        Config::V3_5(c) => patch_storage!(c, add),
        Config::V3_6(c) => patch_storage!(c, add),
        _ => return Ok(TypedPatch::UnknownVariant),
    }
    Ok(TypedPatch::Done)
}
