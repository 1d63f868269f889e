#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `maas-sim` binary: flags, port 0, the printed URL and key, YAML and TOML inventories,
//! fault flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Running {
    child: Child,
    url: String,
    key: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maas-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("MAAS URL: ")
        .unwrap()
        .to_string();
    let key = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("API key: ")
        .unwrap()
        .to_string();
    Running { child, url, key }
}

fn auth(key: &str, nonce: &str) -> String {
    let p: Vec<&str> = key.split(':').collect();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{ts}\"",
        p[0], p[1], p[2]
    )
}

async fn get(r: &Running, path: &str, nonce: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}api/2.0/{path}", r.url))
        .header("Authorization", auth(&r.key, nonce))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn port_zero_generated_key_and_generated_inventory() {
    let r = run(&[
        "--listen",
        "127.0.0.1:0",
        "--machines",
        "5",
        "--gpu-machines",
        "2",
        "--deploy-seconds",
        "0",
    ]);
    assert!(r.url.starts_with("http://127.0.0.1:") && r.url.ends_with("/MAAS/"));
    assert!(!r.url.contains(":0/"), "{}", r.url);
    assert_eq!(r.key.split(':').filter(|p| !p.is_empty()).count(), 3);
    let (code, body) = get(&r, "machines/", "a").await;
    assert_eq!(code, 200);
    let machines: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(machines.as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn yaml_and_toml_inventories() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("inv.yaml");
    std::fs::write(
        &yaml,
        "zones: [rack1, rack2]\npools: [ml]\nimages: [ubuntu/noble, custom/rhcos]\nmachines:\n  - hostname: big\n    cpu: 96\n    memory: 1048576\n    storage: [1920]\n    zone: rack1\n    pool: ml\n    tags: [gpu, h100]\n    gpus:\n      - product_id: \"2330\"\n        product_name: GH100 [H100 SXM5 80GB]\n        numa_node: 1\n  - hostname: small\n    cpu: 4\n    memory: 8192\n    zone: rack2\n",
    )
    .unwrap();
    let toml = dir.path().join("inv.toml");
    std::fs::write(
        &toml,
        "zones = [\"rack1\"]\n[[machines]]\nhostname = \"only\"\ncpu = 8\nmemory = 16384\nzone = \"rack1\"\ntags = [\"ssd\"]\n",
    )
    .unwrap();
    let y = run(&[
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        "c:t:s",
        "--inventory",
        yaml.to_str().unwrap(),
    ]);
    assert_eq!(y.key, "c:t:s");
    let (_, body) = get(&y, "machines/", "y1").await;
    let machines: serde_json::Value = serde_json::from_str(&body).unwrap();
    let big = machines
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["hostname"] == "big")
        .unwrap();
    assert_eq!(big["cpu_count"], 96);
    assert_eq!(big["pool"]["name"], "ml");
    let id = big["system_id"].as_str().unwrap();
    let (_, devices) = get(&y, &format!("nodes/{id}/devices/?hardware_type=gpu"), "y2").await;
    let devices: serde_json::Value = serde_json::from_str(&devices).unwrap();
    assert_eq!(devices[0]["product_name"], "GH100 [H100 SXM5 80GB]");
    assert_eq!(devices[0]["numa_node"], 1);
    let (_, boot) = get(&y, "boot-resources/", "y3").await;
    assert!(boot.contains("custom/rhcos") && !boot.contains("ubuntu/jammy"));

    let t = run(&[
        "--listen",
        "127.0.0.1:0",
        "--inventory",
        toml.to_str().unwrap(),
    ]);
    let (_, body) = get(&t, "machines/", "t1").await;
    let machines: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(machines.as_array().unwrap().len(), 1);
    assert_eq!(machines[0]["tag_names"], serde_json::json!(["ssd"]));
}

#[tokio::test]
async fn fault_flags_apply() {
    let r = run(&[
        "--listen",
        "127.0.0.1:0",
        "--machines",
        "2",
        "--gpu-machines",
        "0",
        "--error-rate",
        "machines:read:1:503:10",
        "--seed",
        "1",
    ]);
    let resp = reqwest::Client::new()
        .get(format!("{}api/2.0/machines/", r.url))
        .header("Authorization", auth(&r.key, "f1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "10");
    let (code, _) = get(&r, "zones/", "f2").await;
    assert_eq!(code, 200);
}

#[test]
fn bad_inventory_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "machines:\n  - hostname: a\n    cpus: 4\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_maas-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--inventory",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inventory"));
}
