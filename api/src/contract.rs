//! Which Cluster API contract the provider speaks to, decided from the live CRD's labels.

use std::collections::BTreeMap;

use crate::labels;

/// The Cluster API provider contract whose field shapes the controller writes. The two differ
/// for this provider only in `MaasCluster.status.failureDomains` (map vs list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// CAPI <= 1.10 and HyperShift: failure domains as a map keyed by name.
    V1Beta1,
    /// CAPI >= 1.11: failure domains as a list of named entries.
    V1Beta2,
}

impl Contract {
    /// Reads the contract from the labels of the installed MaasCluster CRD: the v1beta2 label
    /// means the installer advertised the newer contract; without it (HyperShift relabels the
    /// CRDs v1beta1-only) only v1beta1 is safe. Labels absent altogether also mean v1beta1.
    pub fn from_crd_labels(crd_labels: Option<&BTreeMap<String, String>>) -> Self {
        let advertises_v1beta2 = crd_labels
            .and_then(|l| l.get(labels::CONTRACT_V1BETA2))
            .is_some_and(|v| !v.is_empty());
        if advertises_v1beta2 {
            Self::V1Beta2
        } else {
            Self::V1Beta1
        }
    }

    /// Combines the CRD labels with what the API server serves: a CAPI core that does not serve
    /// `cluster.x-k8s.io/v1beta2` (CAPI <= 1.10) reads the v1beta1 contract even when our CRD
    /// advertises both, so v1beta2 shapes are written only when both sides speak it.
    pub fn negotiate(
        crd_labels: Option<&BTreeMap<String, String>>,
        capi_serves_v1beta2: bool,
    ) -> Self {
        match Self::from_crd_labels(crd_labels) {
            Self::V1Beta2 if capi_serves_v1beta2 => Self::V1Beta2,
            _ => Self::V1Beta1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn both_labels_mean_v1beta2() {
        let l = labels_of(&[
            (labels::CONTRACT_V1BETA1, "v1beta1"),
            (labels::CONTRACT_V1BETA2, "v1beta1"),
        ]);
        assert_eq!(Contract::from_crd_labels(Some(&l)), Contract::V1Beta2);
    }

    #[test]
    fn hypershift_relabelled_crd_means_v1beta1() {
        let l = labels_of(&[(labels::CONTRACT_V1BETA1, "v1beta1")]);
        assert_eq!(Contract::from_crd_labels(Some(&l)), Contract::V1Beta1);
        assert_eq!(Contract::from_crd_labels(None), Contract::V1Beta1);
        let empty = labels_of(&[(labels::CONTRACT_V1BETA2, "")]);
        assert_eq!(Contract::from_crd_labels(Some(&empty)), Contract::V1Beta1);
    }

    #[test]
    fn old_capi_core_forces_v1beta1() {
        let l = labels_of(&[
            (labels::CONTRACT_V1BETA1, "v1beta1"),
            (labels::CONTRACT_V1BETA2, "v1beta1"),
        ]);
        assert_eq!(Contract::negotiate(Some(&l), false), Contract::V1Beta1);
        assert_eq!(Contract::negotiate(Some(&l), true), Contract::V1Beta2);
        let old = labels_of(&[(labels::CONTRACT_V1BETA1, "v1beta1")]);
        assert_eq!(Contract::negotiate(Some(&old), true), Contract::V1Beta1);
    }
}
