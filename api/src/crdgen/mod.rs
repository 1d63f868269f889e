//! Generates the CRDs from the Rust types: the full shape the provider installs and the reduced
//! shape HyperShift installs, as YAML files under `config/crd/bases`, and checks checked-in files
//! against what the types produce. The `crdgen` binary is a thin wrapper around this module.

mod fields_doc;
mod hypershift;
mod output;
pub mod structural;
mod templates;

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use fields_doc::render_fields_doc;
pub use output::{
    CrdgenError, Drift, check_dir, crd_file_name, default_out_dir, render_yaml, rendered_files,
    write_dir,
};

use crate::{MaasCluster, MaasClusterTemplate, MaasMachine, MaasMachineTemplate, labels};

/// Which CRD shape to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Every field and validation, both contract labels: what the provider installs.
    Full,
    /// The Go provider's base shape that HyperShift installs from its embedded copy: only the
    /// Go fields, contract v1beta1 only, no CEL. Tests install it to prove the controllers work
    /// when the API server prunes everything we added.
    Hypershift,
}

impl Profile {
    /// Both profiles, for tests that check every generated schema.
    pub const ALL: [Profile; 2] = [Profile::Full, Profile::Hypershift];
}

/// The CRDs of a profile, labelled with the contracts that profile advertises.
pub fn crds(profile: Profile) -> Vec<CustomResourceDefinition> {
    match profile {
        Profile::Full => [
            MaasCluster::crd(),
            MaasMachine::crd(),
            templates::without_transition_rules(MaasMachineTemplate::crd()),
            templates::without_transition_rules(MaasClusterTemplate::crd()),
        ]
        .into_iter()
        .map(|crd| with_contract_labels(crd, &[labels::CONTRACT_V1BETA1, labels::CONTRACT_V1BETA2]))
        .collect(),
        Profile::Hypershift => [
            MaasCluster::crd(),
            MaasMachine::crd(),
            MaasMachineTemplate::crd(),
        ]
        .into_iter()
        .map(hypershift::reduce)
        .map(|crd| with_contract_labels(crd, &[labels::CONTRACT_V1BETA1]))
        .collect(),
    }
}

/// Edits every version's OpenAPI schema of `crd` as a JSON value; a schema that does not
/// round-trip through JSON is left as it was.
fn edit_schemas(
    mut crd: CustomResourceDefinition,
    mut edit: impl FnMut(&mut serde_json::Value),
) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(validation) = version.schema.as_mut() else {
            continue;
        };
        let Some(props) = validation.open_api_v3_schema.take() else {
            continue;
        };
        let Ok(mut schema) = serde_json::to_value(&props) else {
            validation.open_api_v3_schema = Some(props);
            continue;
        };
        edit(&mut schema);
        validation.open_api_v3_schema = serde_json::from_value(schema).ok().or(Some(props));
    }
    crd
}

/// The contract labels are added here rather than with `#[kube(label)]`, which would also stamp
/// them onto every object built with the generated `new()` constructors.
fn with_contract_labels(
    mut crd: CustomResourceDefinition,
    contracts: &[&str],
) -> CustomResourceDefinition {
    let crd_labels = crd.metadata.labels.get_or_insert_with(BTreeMap::new);
    for key in contracts {
        crd_labels.insert((*key).to_owned(), labels::CONTRACT_LABEL_VALUE.to_owned());
    }
    crd
}

/// The openAPIV3Schema of a CRD's only version, as JSON, for walking and checking.
pub fn schema_of(crd: &CustomResourceDefinition) -> serde_json::Value {
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(serde_json::Value::Null)
}
