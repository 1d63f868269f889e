#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The simulator refuses what MAAS refuses, with MAAS's status codes and texts.
//!
//! What exactly is asserted about JSON bodies: MAAS never reads parameters from a JSON body, so
//! (1) `allocate` with constraints only in a JSON body allocates as if no constraint were given
//! (the cheapest machine, not the GPU machine the JSON asked for); (2) `deploy` whose user data
//! came only as JSON deploys with no user data; (3) `set_owner_data` with JSON changes nothing;
//! (4) a JSON body with an unknown constraint is not refused, because it is not read at all.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn json_body_is_ignored_as_maas_ignores_it() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let r = c
        .send_body(
            "POST",
            "machines/",
            &[("op", "allocate")],
            "application/json",
            json!({"tags": ["gpu"], "flavour": "x"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert!(
        !m["tag_names"].as_array().unwrap().contains(&json!("gpu")),
        "JSON constraints must be ignored"
    );
    let cheapest = c
        .get("machines/", &[])
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cpu_count"].as_f64().unwrap() + m["memory"].as_f64().unwrap() / 1024.0)
        .fold(f64::MAX, f64::min);
    assert_eq!(
        m["cpu_count"].as_f64().unwrap() + m["memory"].as_f64().unwrap() / 1024.0,
        cheapest
    );
    let id = m["system_id"].as_str().unwrap().to_string();

    let r = c
        .send_body(
            "POST",
            &format!("machines/{id}/"),
            &[("op", "set_owner_data")],
            "application/json",
            json!({"k": "v"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["owner_data"], json!({}));

    let r = c
        .send_body(
            "POST",
            &format!("machines/{id}/"),
            &[("op", "deploy")],
            "application/json",
            json!({"user_data": b64("#cloud-config\n")}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.wait_status(&id, "Deployed").await;
    let state = sim.state();
    let view = state.machine(&id).unwrap();
    assert_eq!(view.user_data, None);
    assert!(view.owner_data.is_empty());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_trailing_slash_redirects_and_loses_the_post_body() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let r = c.get("machines", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "/MAAS/api/2.0/machines/");
    let r = c.post("machines", "allocate", &[("tags", "gpu")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "/MAAS/api/2.0/machines/?op=allocate");
    // Following the redirect as HTTP clients do turns the POST into a body-less GET.
    let follow = c.get("machines/", &[("op", "allocate")]).await;
    assert_eq!(follow.status, 400);
    assert_eq!(
        follow.text,
        "Unrecognised signature: method=GET op=allocate"
    );
    assert!(
        sim.state().machines.iter().all(|m| m.owner.is_none()),
        "nothing was allocated"
    );
    let r = c.get("nothing/here/", &[]).await;
    assert_eq!(r.status, 404);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_constraint_and_unknown_names_are_400() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let r = c
        .allocate(&[("cpu_count", "2"), ("flavour", "large")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"flavour": ["No such constraint."]}));
    let r = c.allocate(&[("zone", "mars")]).await;
    assert_eq!(r.status, 400);
    assert!(r.json().get("zone").is_some(), "{}", r.text);
    let r = c.allocate(&[("pool", "deep")]).await;
    assert_eq!(r.status, 400);
    assert!(r.json().get("pool").is_some(), "{}", r.text);
    let r = c.allocate(&[("tags", "gpu"), ("tags", "unicorn")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"tags": ["No such tag(s): 'unicorn'."]}));
    let r = c.allocate(&[("cpu_count", "1000")]).await;
    assert_eq!(r.status, 409);
    assert!(r.headers.get("retry-after").is_none());
    assert!(
        r.text
            .starts_with("No available machine matches constraints: [('cpu_count', ['1000'])]"),
        "{}",
        r.text
    );
    assert!(sim.state().machines.iter().all(|m| m.owner.is_none()));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn oauth_refusals() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let nonce = fresh_nonce();
    let ok = c
        .send_with("GET", "machines/", &[], None, &nonce, now())
        .await;
    assert_eq!(ok.status, 200);
    let replay = c
        .send_with("GET", "machines/", &[], None, &nonce, now())
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(
        replay.text,
        format!("Authorization Error: 'Nonce already used: {nonce}'")
    );

    let stale_ts = now() - 301;
    let stale = c
        .send_with("GET", "machines/", &[], None, &fresh_nonce(), stale_ts)
        .await;
    assert_eq!(stale.status, 401);
    assert!(
        stale.text.starts_with(&format!(
            "Authorization Error: 'Expired timestamp: given {stale_ts} and now "
        )),
        "{}",
        stale.text
    );
    assert!(
        stale
            .text
            .ends_with("has a greater difference than threshold 300'")
    );
    let future = c
        .send_with("GET", "machines/", &[], None, &fresh_nonce(), now() + 400)
        .await;
    assert_eq!(future.status, 401);

    let mut unknown = c.clone();
    unknown.token = "nosuchtoken".into();
    let r = unknown.get("machines/", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, "Authorization Error: Invalid API key.")
    );

    let mut wrong = c.clone();
    wrong.secret = "wrong".into();
    assert_eq!(wrong.get("machines/", &[]).await.status, 401);
    assert_eq!(wrong.clone().hmac().get("machines/", &[]).await.status, 401);

    let anon = reqwest::get(format!("{}machines/", sim.api_url()))
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    // version/ and describe/ are anonymous, as in MAAS.
    let v = reqwest::get(format!("{}version/", sim.api_url()))
        .await
        .unwrap();
    assert_eq!(v.status().as_u16(), 200);
    let d: serde_json::Value = reqwest::get(format!("{}describe/", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        d["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "MachinesHandler")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_method_op_pairs() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let r = c.get("machines/", &[("op", "allocate")]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Unrecognised signature: method=GET op=allocate")
    );
    let id = sim.state().machines[0].system_id.clone();
    let r = c
        .post(&format!("machines/{id}/"), "query_power_state", &[])
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            400,
            "Unrecognised signature: method=POST op=query_power_state"
        )
    );
    let r = c.post(&format!("machines/{id}/"), "fly", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Unrecognised signature: method=POST op=fly")
    );
    let r = c.send("PUT", "zones/", &[], Some(&[])).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Unrecognised signature: method=PUT op=None")
    );
    let r = c.get("machines/zzzzzz/", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "No Machine matches the given query.")
    );
    let counts = sim.requests();
    assert_eq!(counts.count("machines:allocate", 400), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn op_is_read_from_the_query_else_from_the_form_body() {
    let sim = start_default().await;
    let c = Raw::new(&sim);
    let r = c
        .send(
            "POST",
            "machines/",
            &[],
            Some(&[("op", "allocate"), ("tags", "gpu")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["tag_names"]
            .as_array()
            .unwrap()
            .contains(&json!("gpu"))
    );
    // A JSON body is not read, so an op there is no op at all.
    let id = sim.state().machines[0].system_id.clone();
    let r = c
        .send_body(
            "POST",
            &format!("machines/{id}/"),
            &[],
            "application/json",
            json!({"op": "deploy"}).to_string(),
        )
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Unrecognised signature: method=POST op=None")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_put_signature_covers_the_query_only_a_post_signature_the_form_too() {
    let sim = start_default().await;
    let c = Raw::new(&sim).hmac();
    let r = c
        .send(
            "POST",
            "dnsresources/",
            &[],
            Some(&[("fqdn", "api.maas"), ("ip_addresses", "10.0.0.1")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let path = format!("dnsresources/{}/", r.json()["id"]);
    // As the Go client signs it: the PUT body is not part of the base string.
    let r = c
        .send_signing("PUT", &path, &[], &[("ip_addresses", "10.0.0.2")], false)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["ip_addresses"][0]["ip"], "10.0.0.2");
    // Signed over the body as well, the base string differs from MAAS's: refused.
    let r = c
        .send_signing("PUT", &path, &[], &[("ip_addresses", "10.0.0.3")], true)
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, "Authorization Error: 'Invalid signature.'")
    );
    // A POST's form body is signed: leaving it out is refused, including it accepted.
    let form = [("fqdn", "other.maas")];
    let r = c
        .send_signing("POST", "dnsresources/", &[], &form, false)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = c
        .send_signing("POST", "dnsresources/", &[], &form, true)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        sim.state().dnsresources[0].ip_addresses,
        vec!["10.0.0.2".to_string()]
    );
    sim.shutdown().await.unwrap();
}
