//! The Cluster API objects the controllers read (Cluster, Machine), as partial hand-written
//! types: serde ignores every field not listed, so one type reads both the `v1beta1` and the
//! `v1beta2` shape. Each implements [`kube::Resource`] with [`CapiVersion`] as its dynamic type,
//! so controllers pick the served version at start-up and then use `Api<Cluster>` as usual:
//!
//! ```text
//! let version = CapiVersion::preferred(&served_versions).unwrap_or_default();
//! let clusters: Api<Cluster> = Api::namespaced_with(client, ns, &version);
//! ```
//!
//! These types are never emitted by crdgen: Cluster API installs its own CRDs.

mod cluster;
mod machine;
mod object_ref;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use cluster::{Cluster, ClusterInitialization, ClusterSpec, ClusterStatus};
pub use machine::{
    Bootstrap, Machine, MachineInitialization, MachineNodeReference, MachineSpec, MachineStatus,
};
pub use object_ref::ObjectReference;

use crate::{annotations, labels};

/// API group of the Cluster API core types.
pub const GROUP: &str = "cluster.x-k8s.io";

/// Version of the Cluster API core types to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CapiVersion {
    /// `cluster.x-k8s.io/v1beta1`, served by every CAPI release up to 1.14.
    V1Beta1,
    /// `cluster.x-k8s.io/v1beta2`, served by CAPI >= 1.11; the default because it is the storage
    /// version there.
    #[default]
    V1Beta2,
}

impl CapiVersion {
    /// The version string in API paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1Beta1 => "v1beta1",
            Self::V1Beta2 => "v1beta2",
        }
    }

    /// The best version among those the API server serves for `cluster.x-k8s.io` (v1beta2 when
    /// available, else v1beta1); `None` when Cluster API is not installed.
    pub fn preferred<S: AsRef<str>>(served: &[S]) -> Option<Self> {
        let serves = |v: &str| served.iter().any(|s| s.as_ref() == v);
        if serves("v1beta2") {
            Some(Self::V1Beta2)
        } else if serves("v1beta1") {
            Some(Self::V1Beta1)
        } else {
            None
        }
    }

    pub(crate) fn api_version(self) -> Cow<'static, str> {
        Cow::Owned(format!("{GROUP}/{}", self.as_str()))
    }
}

/// The `cluster.x-k8s.io/cluster-name` label of any object, the way every CAPI object names
/// its Cluster.
pub fn cluster_name_label(meta: &ObjectMeta) -> Option<&str> {
    label(meta, labels::CLUSTER_NAME).filter(|v| !v.is_empty())
}

/// Whether an object carries the `cluster.x-k8s.io/paused` annotation (any value).
pub fn has_paused_annotation(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::PAUSED))
}

pub(crate) fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn preferred_version_picks_v1beta2_when_served() {
        assert_eq!(
            CapiVersion::preferred(&["v1beta1", "v1beta2"]),
            Some(CapiVersion::V1Beta2)
        );
        assert_eq!(
            CapiVersion::preferred(&["v1beta1"]),
            Some(CapiVersion::V1Beta1)
        );
        assert_eq!(CapiVersion::preferred::<&str>(&[]), None);
        assert_eq!(
            CapiVersion::V1Beta1.api_version(),
            "cluster.x-k8s.io/v1beta1"
        );
    }

    #[test]
    fn labels_and_annotations() {
        let meta = ObjectMeta {
            labels: Some(BTreeMap::from([(labels::CLUSTER_NAME.into(), "c1".into())])),
            annotations: Some(BTreeMap::from([(
                annotations::PAUSED.into(),
                String::new(),
            )])),
            ..Default::default()
        };
        assert_eq!(cluster_name_label(&meta), Some("c1"));
        assert!(has_paused_annotation(&meta));
        assert!(!has_paused_annotation(&ObjectMeta::default()));
        assert_eq!(cluster_name_label(&ObjectMeta::default()), None);
    }
}
