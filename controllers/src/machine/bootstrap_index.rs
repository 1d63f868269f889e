//! Which MaasMachines read which bootstrap Secret, so a change to the Secret wakes exactly
//! those MaasMachines. Filled from the Machine watch (every Machine event records the Secret
//! its `spec.bootstrap.dataSecretName` names), so no extra list or cache of Machines is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use capmaas_api::MaasMachine;
use capmaas_api::capi::Machine;
use kube::runtime::reflector::ObjectRef;

use crate::machine::watches::machine_to_maas_machine;

/// A namespaced Secret name.
type SecretKey = (String, String);
/// A namespaced MaasMachine name.
type MachineKey = (String, String);

#[derive(Default, Debug)]
struct Maps {
    readers: BTreeMap<SecretKey, BTreeSet<MachineKey>>,
    reads: BTreeMap<MachineKey, SecretKey>,
}

/// The Secret -> MaasMachines index; cheap to share behind an `Arc`.
#[derive(Default, Debug)]
pub struct BootstrapIndex {
    maps: Mutex<Maps>,
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
        let key = (ns.clone(), mm.name.clone());
        let secret = machine
            .bootstrap_data_secret_name()
            .map(|s| (ns, s.to_string()));
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if maps.reads.get(&key) == secret.as_ref() {
            return;
        }
        if let Some(old) = maps.reads.remove(&key)
            && let Some(set) = maps.readers.get_mut(&old)
        {
            set.remove(&key);
            if set.is_empty() {
                maps.readers.remove(&old);
            }
        }
        if let Some(secret) = secret {
            maps.readers
                .entry(secret.clone())
                .or_default()
                .insert(key.clone());
            maps.reads.insert(key, secret);
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
