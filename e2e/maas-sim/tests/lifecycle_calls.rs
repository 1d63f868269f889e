#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Calls MAAS clients make in a normal lifecycle beyond the provider's own: the machine update
//! the Go provider sends after every allocate, tags' `update_nodes` (also in its `op-NAME` path
//! form, which MAAS routes), and idle keep-alive connections closed by the server.

mod common;

use std::time::Duration;

use common::*;
use maas_sim::SimConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config() -> SimConfig {
    SimConfig {
        machines: 4,
        gpu_machines: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn machine_update_after_allocate_as_the_go_client_sends_it() {
    let sim = start(config()).await;
    let c = Raw::new(&sim).hmac();
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("machines/{id}/");
    // Signed over the query only, as the Go client signs a PUT.
    let r = c
        .send_signing(
            "PUT",
            &path,
            &[],
            &[("swap_size", "0"), ("no_such_field", "x")],
            false,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["system_id"], id.as_str());
    assert_eq!(m["swap_size"], 0);
    assert_eq!(m["status_name"], "Allocated");
    let r = c
        .send_signing(
            "PUT",
            &path,
            &[],
            &[
                ("description", "spare"),
                ("zone", "az2"),
                ("swap_size", "1G"),
            ],
            false,
        )
        .await;
    let m = r.json();
    assert_eq!(
        (
            m["description"].as_str(),
            m["zone"]["name"].as_str(),
            m["swap_size"].as_u64()
        ),
        (Some("spare"), Some("az2"), Some(1_000_000_000))
    );
    let r = c
        .send_signing(
            "PUT",
            &path,
            &[],
            &[("zone", "mars"), ("memory", "lots")],
            false,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({
            "memory": ["Enter a whole number."],
            "zone": ["Select a valid choice. That choice is not one of the available choices."]
        })
    );
    assert_eq!(c.machine(&id).await["zone"]["name"], "az2");
    let r = c
        .send_signing("PUT", "machines/nosuch/", &[], &[("swap_size", "0")], false)
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "No Machine matches the given query.")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn tag_update_nodes_by_op_and_by_op_path() {
    let sim = start(config()).await;
    let c = Raw::new(&sim);
    let ids: Vec<String> = sim
        .state()
        .machines
        .iter()
        .map(|m| m.system_id.clone())
        .collect();
    let r = c
        .post(
            "tags/fast/",
            "update_nodes",
            &[("add", &ids[0]), ("add", &ids[1]), ("add", "nosuch")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"added": 2, "removed": 0}));
    let tagged = c.get("tags/fast/", &[("op", "machines")]).await.json();
    let tagged: Vec<&str> = tagged
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["system_id"].as_str().unwrap())
        .collect();
    assert!(tagged.contains(&ids[0].as_str()) && tagged.contains(&ids[1].as_str()));

    // MAAS also routes `tags/{name}/op-update_nodes` (no trailing slash), op from the path.
    let r = c
        .send(
            "POST",
            "tags/fast/op-update_nodes",
            &[],
            Some(&[("remove", &ids[0])]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"added": 0, "removed": 1}));
    let m = c.machine(&ids[0]).await;
    assert!(!m["tag_names"].as_array().unwrap().contains(&json!("fast")));
    let r = c.get("tags/fast/op-update_nodes", &[]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Unrecognised signature: method=GET op=update_nodes")
    );
    assert_eq!(
        c.send("POST", "tags/fast/op-update_nodes/", &[], Some(&[]))
            .await
            .status,
        404
    );
    assert_eq!(
        c.send("POST", "tags/fast/op-nothing", &[], Some(&[]))
            .await
            .status,
        404
    );
    let r = c
        .post("tags/nosuch/", "update_nodes", &[("add", &ids[0])])
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "No Tag matches the given query.")
    );
    let r = c
        .post("tags/fast/", "update_nodes", &[("definition", "//node")])
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            409,
            "Definition supplied '//node' doesn't match current definition ''"
        )
    );
    // Any exported op has its path form, e.g. a deploy.
    let id = c.allocate(&[]).await.json()["system_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .send("POST", &format!("machines/{id}/op-deploy"), &[], Some(&[]))
        .await;
    assert_eq!(r.json()["status_name"], "Deploying");
    sim.shutdown().await.unwrap();
}

async fn get_version(stream: &mut tokio::net::TcpStream) -> String {
    stream
        .write_all(b"GET /MAAS/api/2.0/version/ HTTP/1.1\r\nHost: sim\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let sim = start(SimConfig {
        idle_timeout_seconds: 0.3,
        ..config()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    assert!(get_version(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Within the timeout the connection is kept alive and serves the next request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(get_version(&mut stream).await.starts_with("HTTP/1.1 200"));
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("the server must close the idle connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    sim.shutdown().await.unwrap();

    // The default keeps a connection idle for longer than a second.
    let sim = start(config()).await;
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    assert!(get_version(&mut stream).await.starts_with("HTTP/1.1 200"));
    let idle = tokio::time::timeout(Duration::from_millis(1200), stream.read(&mut buf)).await;
    assert!(idle.is_err(), "closed too early: {idle:?}");
    drop(stream);
    sim.shutdown().await.unwrap();
}
