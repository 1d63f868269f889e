//! `GET describe/`: the API description python-libmaas reads before anything else, generated
//! from the route table in the shape MAAS produces.

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::routes::{API_PREFIX, RESOURCES, Resource};

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn handler_doc(r: &Resource, base: &str) -> Value {
    let path = format!("{API_PREFIX}{}", r.path);
    let actions: Vec<Value> = r
        .actions
        .iter()
        .map(|a| {
            json!({
                "doc": a.doc,
                "method": a.method,
                "name": a.name,
                "op": a.op,
                "restful": a.op.is_none(),
            })
        })
        .collect();
    json!({
        "actions": actions,
        "doc": r.doc,
        "name": r.handler,
        "params": path_params(r.path),
        "path": path,
        "uri": format!("{base}{path}"),
    })
}

/// The describe document for a server reached at `base` (`http://host:port`).
pub fn describe(base: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|r| {
            let doc = handler_doc(r, base);
            if r.anonymous {
                json!({"name": r.handler, "anon": doc, "auth": null})
            } else {
                json!({"name": r.handler, "anon": null, "auth": doc})
            }
        })
        .collect();
    let mut hasher = Sha1::new();
    hasher.update(
        serde_json::to_string(&resources)
            .unwrap_or_default()
            .as_bytes(),
    );
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({"doc": "MAAS API", "hash": hash, "resources": resources})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_maas() {
        let d = describe("http://127.0.0.1:5240");
        let resources = d["resources"].as_array().unwrap();
        assert_eq!(resources.len(), RESOURCES.len());
        let machine = resources
            .iter()
            .find(|r| r["name"] == "MachineHandler")
            .unwrap();
        assert!(machine["anon"].is_null());
        assert_eq!(
            machine["auth"]["path"],
            "/MAAS/api/2.0/machines/{system_id}/"
        );
        assert_eq!(
            machine["auth"]["uri"],
            "http://127.0.0.1:5240/MAAS/api/2.0/machines/{system_id}/"
        );
        assert_eq!(machine["auth"]["params"], json!(["system_id"]));
        let deploy = machine["auth"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "deploy")
            .unwrap();
        assert_eq!(deploy["method"], "POST");
        assert_eq!(deploy["op"], "deploy");
        assert_eq!(deploy["restful"], false);
        let version = resources
            .iter()
            .find(|r| r["name"] == "VersionHandler")
            .unwrap();
        assert!(version["auth"].is_null());
        assert_eq!(version["anon"]["actions"][0]["restful"], true);
        assert_eq!(d["hash"].as_str().unwrap().len(), 40);
    }
}
