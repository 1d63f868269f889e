//! A reference to another object in either CAPI version's shape.

use serde::{Deserialize, Serialize};

/// `infrastructureRef` and friends: v1beta1 writes `apiVersion` (and maybe `namespace`),
/// v1beta2 writes `apiGroup`; both have `kind` and `name`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// v1beta1: `group/version` of the referenced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// v1beta2: API group of the referenced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind of the referenced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the referenced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// v1beta1 only: namespace of the referenced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectReference {
    /// The API group, whichever version wrote the reference.
    pub fn group(&self) -> Option<&str> {
        self.api_group.as_deref().or_else(|| {
            self.api_version
                .as_deref()
                .map(|av| av.split_once('/').map_or("", |(g, _)| g))
        })
    }

    /// Whether this reference points at the given kind in the given group.
    pub fn refers_to(&self, group: &str, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind) && self.group() == Some(group)
    }
}
