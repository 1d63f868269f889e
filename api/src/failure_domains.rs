//! `MaasCluster.status.failureDomains`: a map under the v1beta1 contract, a list under v1beta2.
//! The CRD keeps the field schemaless (`x-kubernetes-preserve-unknown-fields`) so one CRD accepts
//! both; this module renders the shape a contract asks for and reads either shape back.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::Contract;

/// One failure domain (a MAAS zone) as the controller knows it, independent of wire shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureDomain {
    /// The MAAS zone name.
    pub name: String,
    /// Whether control-plane machines may be placed there.
    pub control_plane: bool,
    /// Free-form attributes Cluster API passes through.
    pub attributes: BTreeMap<String, String>,
}

/// A value under `status.failureDomains` that is neither shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FailureDomainsError {
    /// The field is neither an object nor an array.
    #[error("status.failureDomains must be a map or a list, found {found}")]
    WrongShape {
        /// JSON type that was found.
        found: &'static str,
    },
    /// One entry could not be read.
    #[error("status.failureDomains entry {entry}: {reason}")]
    BadEntry {
        /// The map key or list index of the entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The raw field as stored: either shape, or absent (`null`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FailureDomainsField(pub Value);

impl FailureDomainsField {
    /// Renders `domains` in the shape `contract` expects (sorted by name, so repeated renders of
    /// the same set compare equal and cause no status write).
    pub fn render(domains: &[FailureDomain], contract: Contract) -> Self {
        let mut sorted: Vec<&FailureDomain> = domains.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.dedup_by(|a, b| a.name == b.name);
        let value = match contract {
            Contract::V1Beta1 => Value::Object(
                sorted
                    .into_iter()
                    .map(|d| (d.name.clone(), Value::Object(entry_body(d))))
                    .collect(),
            ),
            Contract::V1Beta2 => Value::Array(
                sorted
                    .into_iter()
                    .map(|d| {
                        let mut body = entry_body(d);
                        body.insert("name".into(), Value::String(d.name.clone()));
                        Value::Object(body)
                    })
                    .collect(),
            ),
        };
        Self(value)
    }

    /// True when the field holds nothing, so it is left out of the serialized status.
    pub fn is_absent(&self) -> bool {
        self.0.is_null()
    }

    /// Reads either shape back into domains, sorted by name.
    pub fn domains(&self) -> Result<Vec<FailureDomain>, FailureDomainsError> {
        let mut out = match &self.0 {
            Value::Null => Vec::new(),
            Value::Object(map) => map
                .iter()
                .map(|(name, body)| read_entry(name.clone(), body, name))
                .collect::<Result<Vec<_>, _>>()?,
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let name = item.get("name").and_then(Value::as_str).ok_or_else(|| {
                        FailureDomainsError::BadEntry {
                            entry: i.to_string(),
                            reason: "has no string `name`".into(),
                        }
                    })?;
                    read_entry(name.to_owned(), item, &i.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(FailureDomainsError::WrongShape {
                    found: json_type(other),
                });
            }
        };
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn entry_body(d: &FailureDomain) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("controlPlane".into(), Value::Bool(d.control_plane));
    if !d.attributes.is_empty() {
        body.insert(
            "attributes".into(),
            Value::Object(
                d.attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    body
}

fn read_entry(
    name: String,
    body: &Value,
    entry: &str,
) -> Result<FailureDomain, FailureDomainsError> {
    let bad = |reason: &str| FailureDomainsError::BadEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let Value::Object(body) = body else {
        return Err(bad("is not an object"));
    };
    let control_plane = match body.get("controlPlane") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`controlPlane` is not a boolean")),
    };
    let attributes = match body.get("attributes") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(attrs)) => attrs
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| bad("an attribute value is not a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("`attributes` is not a map")),
    };
    Ok(FailureDomain {
        name,
        control_plane,
        attributes,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl JsonSchema for FailureDomainsField {
    fn schema_name() -> Cow<'static, str> {
        "FailureDomainsField".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Failure domains (MAAS zones) of the cluster: a map {name: {controlPlane, attributes}} under the v1beta1 contract, a list [{name, controlPlane, attributes}] under v1beta2.",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zones() -> Vec<FailureDomain> {
        vec![
            FailureDomain {
                name: "zone-b".into(),
                control_plane: false,
                attributes: BTreeMap::new(),
            },
            FailureDomain {
                name: "zone-a".into(),
                control_plane: true,
                attributes: BTreeMap::from([("rack".into(), "r1".into())]),
            },
        ]
    }

    #[test]
    fn v1beta1_renders_a_map() {
        let field = FailureDomainsField::render(&zones(), Contract::V1Beta1);
        assert_eq!(
            field.0,
            json!({
                "zone-a": {"controlPlane": true, "attributes": {"rack": "r1"}},
                "zone-b": {"controlPlane": false},
            })
        );
    }

    #[test]
    fn v1beta2_renders_a_sorted_list() {
        let field = FailureDomainsField::render(&zones(), Contract::V1Beta2);
        assert_eq!(
            field.0,
            json!([
                {"name": "zone-a", "controlPlane": true, "attributes": {"rack": "r1"}},
                {"name": "zone-b", "controlPlane": false},
            ])
        );
    }

    #[test]
    fn both_shapes_read_back_to_the_same_domains() {
        let mut expected = zones();
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        for contract in [Contract::V1Beta1, Contract::V1Beta2] {
            let field = FailureDomainsField::render(&zones(), contract);
            assert_eq!(field.domains().unwrap(), expected, "{contract:?}");
        }
    }

    #[test]
    fn duplicates_collapse() {
        let mut z = zones();
        z.push(z[0].clone());
        let field = FailureDomainsField::render(&z, Contract::V1Beta2);
        assert_eq!(field.0.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn absent_and_wrong_shapes() {
        assert!(FailureDomainsField::default().is_absent());
        assert_eq!(FailureDomainsField::default().domains().unwrap(), vec![]);
        assert_eq!(
            FailureDomainsField(json!("zone-a")).domains(),
            Err(FailureDomainsError::WrongShape { found: "a string" })
        );
        let err = FailureDomainsField(json!([{"controlPlane": true}]))
            .domains()
            .unwrap_err();
        assert!(matches!(err, FailureDomainsError::BadEntry { ref entry, .. } if entry == "0"));
        let err = FailureDomainsField(json!({"z": {"controlPlane": "yes"}}))
            .domains()
            .unwrap_err();
        assert!(err.to_string().contains("controlPlane"), "{err}");
    }
}
