//! What a kubeadm configuration tells the kubelet to register with: `nodeRegistration` of its
//! InitConfiguration or JoinConfiguration, `kubeletExtraArgs` `node-labels` (kubeadm v1beta4's
//! list of `name`/`value` and v1beta3's map) and `taints`. Pure; text that is no kubeadm
//! configuration yields an empty registration.

use std::collections::BTreeMap;

use serde_json::Value;

/// The taint effects a kubelet accepts.
const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Keys in Kubernetes' label namespaces a kubelet may set on its own Node (the rest of those
/// namespaces it refuses in `--node-labels`).
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
];

/// The taint kubeadm gives a control-plane node whose configuration names no taints.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// A taint a Node registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value, when there is one.
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// What the kubelet registers its Node with, from the kubeadm configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// `node-labels`, in order of the configuration (a later key wins).
    pub labels: BTreeMap<String, String>,
    /// `node-labels` keys a kubelet refuses: Kubernetes' own namespaces outside the kubelet's
    /// (`node-role.kubernetes.io/...`). A real kubelet does not start with them; the Node is
    /// registered without them.
    pub refused_labels: Vec<String>,
    /// `taints`; kubeadm's control-plane taint for a control-plane node that names none.
    pub taints: Vec<Taint>,
}

/// Reads the registration of the InitConfiguration or JoinConfiguration in `text` (a YAML
/// stream, as kubeadm reads its `--config`).
pub fn registration(text: &str) -> Registration {
    let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
        return Registration::default();
    };
    let Some(doc) = docs.iter().find(|d| {
        matches!(
            d["kind"].as_str(),
            Some("InitConfiguration" | "JoinConfiguration")
        )
    }) else {
        return Registration::default();
    };
    let control_plane = doc["kind"] == "InitConfiguration" || !doc["controlPlane"].is_null();
    let node = &doc["nodeRegistration"];
    let (labels, refused_labels) = split_refused(node_labels(&node["kubeletExtraArgs"]));
    Registration {
        labels,
        refused_labels,
        taints: taints(&node["taints"], control_plane),
    }
}

/// Every `node-labels` value of `kubeletExtraArgs`, in either form, parsed as the kubelet's
/// `--node-labels` (`key=value` pairs separated by commas; pairs without `=` dropped).
fn node_labels(args: &Value) -> Vec<(String, String)> {
    let values: Vec<&str> = match args {
        Value::Object(map) => map
            .get("node-labels")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter(|arg| arg["name"] == "node-labels")
            .filter_map(|arg| arg["value"].as_str())
            .collect(),
        _ => Vec::new(),
    };
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Labels a kubelet sets, and the keys it refuses.
fn split_refused(pairs: Vec<(String, String)>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut labels = BTreeMap::new();
    let mut refused = Vec::new();
    for (key, value) in pairs {
        if kubelet_may_set(&key) {
            labels.insert(key, value);
        } else if !refused.contains(&key) {
            refused.push(key);
        }
    }
    (labels, refused)
}

/// The kubelet's rule for `--node-labels`: a key outside `kubernetes.io` and `k8s.io` (and
/// their subdomains), a well-known kubelet label, or one in `kubelet.kubernetes.io` or
/// `node.kubernetes.io` (and their subdomains).
pub fn kubelet_may_set(key: &str) -> bool {
    let Some((namespace, _)) = key.split_once('/') else {
        return true;
    };
    let within = |domain: &str| namespace == domain || namespace.ends_with(&format!(".{domain}"));
    if !within("kubernetes.io") && !within("k8s.io") {
        return true;
    }
    KUBELET_LABELS.contains(&key) || within("kubelet.kubernetes.io") || within("node.kubernetes.io")
}

/// `nodeRegistration.taints`: absent or null means kubeadm's default (the control-plane taint
/// on a control-plane node, none elsewhere); entries without a key or a valid effect dropped.
fn taints(value: &Value, control_plane: bool) -> Vec<Taint> {
    let Some(list) = value.as_array() else {
        return if value.is_null() && control_plane {
            vec![Taint {
                key: CONTROL_PLANE_TAINT.to_string(),
                value: None,
                effect: "NoSchedule".to_string(),
            }]
        } else {
            Vec::new()
        };
    };
    list.iter()
        .filter_map(|taint| {
            let key = taint["key"].as_str().filter(|k| !k.is_empty())?;
            let effect = taint["effect"].as_str().filter(|e| EFFECTS.contains(e))?;
            Some(Taint {
                key: key.to_string(),
                value: taint["value"]
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
                effect: effect.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(str::to_string),
            effect: effect.into(),
        }
    }

    #[test]
    fn v1beta4_join_with_list_args_and_taints() {
        let text = "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n\
            discovery:\n  bootstrapToken:\n    token: abc.def\nnodeRegistration:\n  \
            kubeletExtraArgs:\n  - name: eviction-hard\n    value: nodefs.available<0%\n  \
            - name: node-labels\n    value: nvidia.com/gpu.present=true,node.cluster.x-k8s.io/tier=dedicated\n  \
            name: gpu-001\n  taints:\n  - effect: NoSchedule\n    key: nvidia.com/gpu\n  \
            - effect: NoSchedule\n    key: node.cluster.x-k8s.io/uninitialized\n  \
            - key: dedicated\n    value: tier-a\n    effect: NoExecute\n";
        let r = registration(text);
        assert_eq!(
            r.labels,
            BTreeMap::from([
                ("node.cluster.x-k8s.io/tier".into(), "dedicated".into()),
                ("nvidia.com/gpu.present".into(), "true".into()),
            ])
        );
        assert!(r.refused_labels.is_empty());
        assert_eq!(
            r.taints,
            vec![
                taint("nvidia.com/gpu", None, "NoSchedule"),
                taint("node.cluster.x-k8s.io/uninitialized", None, "NoSchedule"),
                taint("dedicated", Some("tier-a"), "NoExecute"),
            ]
        );
    }

    #[test]
    fn v1beta3_init_with_map_args_after_a_cluster_configuration() {
        let text = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
            kubernetesVersion: v1.30.2\n---\napiVersion: kubeadm.k8s.io/v1beta3\n\
            kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    \
            cloud-provider: external\n    node-labels: 'a=1, b=2,broken,=x'\n  taints: []\n";
        let r = registration(text);
        assert_eq!(
            r.labels,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert!(r.taints.is_empty(), "an empty list means no taints");
    }

    #[test]
    fn a_control_plane_without_taints_gets_kubeadms_default() {
        let cp = taint(CONTROL_PLANE_TAINT, None, "NoSchedule");
        let init = "kind: InitConfiguration\nnodeRegistration:\n  taints: null\n";
        assert_eq!(registration(init).taints, vec![cp.clone()]);
        let join = "kind: JoinConfiguration\ncontrolPlane:\n  localAPIEndpoint: {}\n";
        assert_eq!(registration(join).taints, vec![cp]);
        let worker = "kind: JoinConfiguration\nnodeRegistration: {}\n";
        assert!(registration(worker).taints.is_empty());
    }

    #[test]
    fn labels_a_kubelet_refuses_are_set_apart() {
        let text = "kind: JoinConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n  \
            - name: node-labels\n    value: node-role.kubernetes.io/worker=,topology.kubernetes.io/zone=az1\n  \
            - name: node-labels\n    value: example.k8s.io/x=y,node.kubernetes.io/pool=a,kubelet.kubernetes.io/k=v\n";
        let r = registration(text);
        assert_eq!(
            r.labels.keys().collect::<Vec<_>>(),
            vec![
                "kubelet.kubernetes.io/k",
                "node.kubernetes.io/pool",
                "topology.kubernetes.io/zone"
            ]
        );
        assert_eq!(
            r.refused_labels,
            vec!["node-role.kubernetes.io/worker", "example.k8s.io/x"]
        );
        assert!(kubelet_may_set("plain"));
        assert!(kubelet_may_set("nvidia.com/gpu.present"));
        assert!(!kubelet_may_set("kubernetes.io/role"));
    }

    #[test]
    fn invalid_taints_and_junk_yield_nothing() {
        let text = "kind: JoinConfiguration\nnodeRegistration:\n  taints:\n  - key: a\n    \
            effect: Sometimes\n  - effect: NoSchedule\n  - key: b\n    effect: NoSchedule\n";
        assert_eq!(
            registration(text).taints,
            vec![taint("b", None, "NoSchedule")]
        );
        for junk in [
            "",
            "::: not yaml [",
            "kind: ClusterConfiguration\n",
            "- 1\n- 2\n",
            "42",
        ] {
            assert_eq!(registration(junk), Registration::default(), "{junk:?}");
        }
    }
}
