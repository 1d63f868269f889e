//! Forgiving field decoders: MAAS versions differ in whether a number is an integer or a float,
//! whether an absent value is `null`, and whether a reference is an object or a name.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Renders a scalar as text: strings as they are, `null` as empty, anything else as JSON.
fn value_to_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A number from an integer, a float (truncated) or a numeric string; `null` or garbage is 0.
pub(crate) fn value_to_u64(value: &Value) -> u64 {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map_or(0, |f| f as u64),
        _ => 0,
    }
}

/// A string; `null` becomes empty, a number becomes its text.
pub(crate) fn string<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(value_to_string(Value::deserialize(de)?))
}

/// An optional string; `null` and the empty string become `None`.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let s = value_to_string(Value::deserialize(de)?);
    Ok((!s.is_empty()).then_some(s))
}

/// An unsigned integer that may arrive as a float or a string.
pub(crate) fn u64_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    Ok(value_to_u64(&Value::deserialize(de)?))
}

/// A u32 that may arrive as a float or a string; saturates instead of failing.
pub(crate) fn u32_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    Ok(u32::try_from(value_to_u64(&Value::deserialize(de)?)).unwrap_or(u32::MAX))
}

/// An optional unsigned integer; `null` is `None`.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(de)?;
    Ok((!value.is_null()).then(|| value_to_u64(&value)))
}

/// A signed integer that may arrive as a float or string; `None` when absent or unparseable.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A float that may arrive as an integer or a string; `null` is 0.
pub(crate) fn f64_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    })
}

/// A boolean; `null` is false, and `"true"`/`1` are accepted.
pub(crate) fn bool_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        _ => false,
    })
}

/// A list of strings; `null` is empty, and each item may be a string, a number, or an object
/// with an `ip` or `name` member (MAAS renders addresses and references either way).
pub(crate) fn string_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(mut map) => map
                    .remove("ip")
                    .or_else(|| map.remove("name"))
                    .map(value_to_string)
                    .filter(|s| !s.is_empty()),
                Value::Null => None,
                other => Some(value_to_string(other)),
            })
            .collect(),
        // A space- or comma-separated string, as some write paths echo it back.
        Value::String(s) => s
            .split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    })
}

/// A string-to-string map; `null` is empty, non-string values are rendered as text.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| (key, value_to_string(value)))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// The name of a referenced object (`zone`, `pool`, `domain`): accepts `{"name": ..}`, a plain
/// string, or `null`.
pub(crate) fn name_ref<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Object(mut map) => map.remove("name").map(value_to_string),
        Value::String(s) => Some(s),
        _ => None,
    }
    .filter(|s| !s.is_empty()))
}

/// A list of objects of type `T`; `null` is empty and items that do not decode are skipped, so
/// one odd entry from a newer MAAS does not make the whole machine unreadable.
pub(crate) fn lenient_list<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(match Value::deserialize(de)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "string")]
        s: String,
        #[serde(deserialize_with = "opt_string")]
        os: Option<String>,
        #[serde(deserialize_with = "u64_lenient")]
        n: u64,
        #[serde(deserialize_with = "u32_lenient")]
        small: u32,
        #[serde(deserialize_with = "opt_u64")]
        on: Option<u64>,
        #[serde(deserialize_with = "opt_i64")]
        oi: Option<i64>,
        #[serde(deserialize_with = "f64_lenient")]
        f: f64,
        #[serde(deserialize_with = "bool_lenient")]
        b: bool,
        #[serde(deserialize_with = "string_list")]
        list: Vec<String>,
        #[serde(deserialize_with = "string_map")]
        map: BTreeMap<String, String>,
        #[serde(deserialize_with = "name_ref")]
        r: Option<String>,
    }

    fn probe(value: serde_json::Value) -> Probe {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn nulls_become_defaults() {
        let p = probe(
            json!({"s": null, "os": null, "n": null, "small": null, "on": null, "oi": null,
            "f": null, "b": null, "list": null, "map": null, "r": null}),
        );
        assert_eq!(p.s, "");
        assert_eq!(p.os, None);
        assert_eq!((p.n, p.small, p.on, p.oi), (0, 0, None, None));
        assert_eq!(p.f, 0.0);
        assert!(!p.b);
        assert!(p.list.is_empty() && p.map.is_empty() && p.r.is_none());
    }

    #[test]
    fn floats_and_strings_are_accepted_for_numbers() {
        let p = probe(json!({"n": 8192.0, "small": "4", "on": 3.9, "oi": -2.0, "f": 9204, "s": 5}));
        assert_eq!((p.n, p.small, p.on, p.oi), (8192, 4, Some(3), Some(-2)));
        assert_eq!(p.f, 9204.0);
        assert_eq!(p.s, "5");
        assert_eq!(probe(json!({"small": 1e12})).small, u32::MAX);
    }

    #[test]
    fn lists_accept_objects_and_separated_strings() {
        let p = probe(json!({"list": ["10.0.0.1", {"ip": "10.0.0.2"}, {"name": "n"}, null, 7]}));
        assert_eq!(p.list, vec!["10.0.0.1", "10.0.0.2", "n", "7"]);
        assert_eq!(probe(json!({"list": "a b,c"})).list, vec!["a", "b", "c"]);
    }

    #[test]
    fn maps_and_refs() {
        let p = probe(
            json!({"map": {"a": "x", "b": 2, "c": null}, "r": {"name": "zone-a", "id": 1}, "b": "true"}),
        );
        assert_eq!(p.map["a"], "x");
        assert_eq!(p.map["b"], "2");
        assert_eq!(p.map["c"], "");
        assert_eq!(p.r.as_deref(), Some("zone-a"));
        assert!(p.b);
        assert_eq!(probe(json!({"r": "pool-b"})).r.as_deref(), Some("pool-b"));
    }
}
