//! Which MaasMachines read which Secret, so a change to the Secret wakes exactly those
//! MaasMachines. The bootstrap index is filled from the Machine watch (every Machine event records
//! the Secret its `spec.bootstrap.dataSecretName` names), so no extra list or cache of Machines is
//! needed; the identity readers are filled by the machine pass, which resolves each MaasMachine's
//! credentials Secret anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use capmaas_api::MaasMachine;
use capmaas_api::capi::Machine;
use kube::runtime::reflector::ObjectRef;

use crate::machine::watches::machine_to_maas_machine;

/// A namespaced Secret name.
pub type SecretKey = (String, String);
/// A namespaced MaasMachine name.
pub type MachineKey = (String, String);

#[derive(Default, Debug)]
struct Maps {
    readers: BTreeMap<SecretKey, BTreeSet<MachineKey>>,
    reads: BTreeMap<MachineKey, SecretKey>,
}

/// Which MaasMachines read which Secret, one Secret per MaasMachine; cheap to share behind an
/// `Arc`. One instance holds the bootstrap Secrets, another the identity Secrets.
#[derive(Default, Debug)]
pub struct SecretReaders {
    maps: Mutex<Maps>,
}

impl SecretReaders {
    /// Records that the MaasMachine `machine` now reads `secret` (`None`: no Secret).
    pub fn set(&self, machine: MachineKey, secret: Option<SecretKey>) {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if maps.reads.get(&machine) == secret.as_ref() {
            return;
        }
        if let Some(old) = maps.reads.remove(&machine)
            && let Some(set) = maps.readers.get_mut(&old)
        {
            set.remove(&machine);
            if set.is_empty() {
                maps.readers.remove(&old);
            }
        }
        if let Some(secret) = secret {
            maps.readers
                .entry(secret.clone())
                .or_default()
                .insert(machine.clone());
            maps.reads.insert(machine, secret);
        }
    }

    /// The MaasMachines that read the Secret `name` in `namespace`.
    pub fn readers(&self, namespace: &str, name: &str) -> Vec<ObjectRef<MaasMachine>> {
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        maps.readers
            .get(&(namespace.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|(ns, n)| ObjectRef::new(n).within(ns))
            .collect()
    }
}

/// The bootstrap Secret -> MaasMachines index, filled from the Machine watch.
#[derive(Default, Debug)]
pub struct BootstrapIndex {
    readers: SecretReaders,
}

impl BootstrapIndex {
    /// Records what a Machine tells: its MaasMachine now reads `secret` (or nothing). A Machine
    /// that is gone leaves its last entry behind, which costs at most one spare wake-up of a
    /// MaasMachine that no longer exists.
    pub fn record(&self, machine: &Machine) {
        let Some(mm) = machine_to_maas_machine(machine) else {
            return;
        };
        let Some(ns) = mm.namespace.clone() else {
            return;
        };
        let secret = machine
            .bootstrap_data_secret_name()
            .map(|s| (ns.clone(), s.to_string()));
        self.readers.set((ns, mm.name.clone()), secret);
    }

    /// The MaasMachines that read the Secret `name` in `namespace`.
    pub fn readers(&self, namespace: &str, name: &str) -> Vec<ObjectRef<MaasMachine>> {
        self.readers.readers(namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine(name: &str, mm: &str, secret: Option<&str>) -> Machine {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {
                "clusterName": "c",
                "bootstrap": {"dataSecretName": secret},
                "infrastructureRef": {"kind": "MaasMachine", "name": mm, "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1"}
            }
        }))
        .unwrap()
    }

    fn names(refs: Vec<ObjectRef<MaasMachine>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn secret_maps_to_the_machines_that_read_it() {
        let index = BootstrapIndex::default();
        index.record(&machine("m1", "mm1", Some("boot-a")));
        index.record(&machine("m2", "mm2", Some("boot-a")));
        index.record(&machine("m3", "mm3", Some("boot-b")));
        index.record(&machine("m4", "mm4", None));
        assert_eq!(names(index.readers("ns", "boot-a")), ["mm1", "mm2"]);
        assert_eq!(names(index.readers("ns", "boot-b")), ["mm3"]);
        assert!(index.readers("other", "boot-a").is_empty());
        assert!(index.readers("ns", "unrelated").is_empty());
    }

    #[test]
    fn a_changed_secret_name_moves_the_machine() {
        let index = BootstrapIndex::default();
        index.record(&machine("m1", "mm1", Some("boot-a")));
        index.record(&machine("m1", "mm1", Some("boot-b")));
        assert!(index.readers("ns", "boot-a").is_empty());
        assert_eq!(names(index.readers("ns", "boot-b")), ["mm1"]);
        index.record(&machine("m1", "mm1", None));
        assert!(index.readers("ns", "boot-b").is_empty());
    }

    #[test]
    fn identity_readers_follow_what_each_pass_resolved() {
        let readers = SecretReaders::default();
        let key = |n: &str| ("ns".to_string(), n.to_string());
        readers.set(key("mm1"), Some(key("site-a")));
        readers.set(key("mm2"), Some(key("site-a")));
        assert_eq!(names(readers.readers("ns", "site-a")), ["mm1", "mm2"]);
        readers.set(key("mm1"), None);
        assert_eq!(names(readers.readers("ns", "site-a")), ["mm2"]);
    }

    #[test]
    fn machines_of_other_providers_are_ignored() {
        let index = BootstrapIndex::default();
        let m: Machine = serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "ns"},
            "spec": {"bootstrap": {"dataSecretName": "boot"}, "infrastructureRef": {"kind": "DockerMachine", "name": "d"}}
        }))
        .unwrap();
        index.record(&m);
        assert!(index.readers("ns", "boot").is_empty());
    }
}
