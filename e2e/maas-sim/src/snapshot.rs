//! The optional JSON snapshot of the world, so a restarted simulator keeps its machines' states.

use std::path::Path;

use crate::error::SimError;
use crate::world::World;

fn state_error(path: &Path, message: impl std::fmt::Display) -> SimError {
    SimError::StateFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Loads a snapshot; `None` when the file does not exist.
pub fn load(path: &Path) -> Result<Option<World>, SimError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| state_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_error(path, e)),
    }
}

/// Writes a snapshot atomically (temporary file, then rename).
pub fn save(path: &Path, world: &World) -> Result<(), SimError> {
    let bytes = serde_json::to_vec_pretty(world).map_err(|e| state_error(path, e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| state_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| state_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::status::NodeStatus;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none());
        let mut world = World::from_inventory(&Inventory::generate(3, 1)).unwrap();
        let id = world.machines.keys().next().unwrap().clone();
        if let Some(m) = world.machines.get_mut(&id) {
            m.status = NodeStatus::Deployed;
            m.owner_data.insert("k".into(), "v".into());
        }
        save(&path, &world).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.machines[&id].status, NodeStatus::Deployed);
        assert_eq!(back.machines[&id].owner_data["k"], "v");
        assert_eq!(back.machines.len(), 4);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_err());
    }
}
