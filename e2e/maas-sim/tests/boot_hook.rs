#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The boot hook registers a Ready Node (no providerID) in a Kubernetes API when a machine
//! reaches Deployed, with its hardware and the labels and taints of its bootstrap data, and
//! deletes it on release. The API here is a small loopback stand-in that records what the kube
//! client sends.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, body::Bytes};
use common::*;
use maas_sim::SimConfig;
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    calls: Vec<(String, String, Value)>,
    /// Nodes that exist already: creating them is a conflict.
    existing: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "resourceVersion": "1"}})
}

async fn create(State(s): State<Shared>, body: Bytes) -> (StatusCode, Json<Value>) {
    let v: Value = serde_json::from_slice(&body).unwrap();
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    let mut seen = s.lock().unwrap();
    seen.calls.push(("create".into(), name.clone(), v));
    if seen.existing.contains(&name) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("nodes \"{name}\" already exists"), "reason": "AlreadyExists",
            "code": 409});
        return (StatusCode::CONFLICT, Json(status));
    }
    (StatusCode::CREATED, Json(node(&name)))
}

async fn update(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Json<Value> {
    let v: Value = serde_json::from_slice(&body).unwrap();
    s.lock()
        .unwrap()
        .calls
        .push(("patch".into(), name.clone(), v));
    Json(node(&name))
}

async fn status(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Json<Value> {
    let v: Value = serde_json::from_slice(&body).unwrap();
    s.lock()
        .unwrap()
        .calls
        .push(("status".into(), name.clone(), v));
    Json(node(&name))
}

async fn remove(State(s): State<Shared>, Path(name): Path<String>) -> Json<Value> {
    s.lock()
        .unwrap()
        .calls
        .push(("delete".into(), name.clone(), Value::Null));
    Json(node(&name))
}

async fn wait_for(seen: &Shared, kind: &str, name: &str) -> Value {
    for _ in 0..400 {
        if let Some((_, _, v)) = seen
            .lock()
            .unwrap()
            .calls
            .iter()
            .find(|(k, n, _)| k == kind && n == name)
        {
            return v.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no {kind} call for {name}: {:?}",
        seen.lock()
            .unwrap()
            .calls
            .iter()
            .map(|(k, n, _)| (k, n))
            .collect::<Vec<_>>()
    );
}

/// Serves the stand-in API and writes a kubeconfig for it into `dir`.
async fn stand_in(seen: &Shared, dir: &std::path::Path) -> std::path::PathBuf {
    let app = Router::new()
        .route("/api/v1/nodes", post(create))
        .route("/api/v1/nodes/{name}/status", patch(status))
        .route("/api/v1/nodes/{name}", patch(update).delete(remove))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{api}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    kubeconfig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_machines_join_as_nodes_and_leave_on_release() {
    let seen: Shared = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = stand_in(&seen, dir.path()).await;
    let sim = start(SimConfig {
        machines: 2,
        gpu_machines: 0,
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    })
    .await;
    let c = Raw::new(&sim);
    let m = c.allocate(&[]).await.json();
    let id = m["system_id"].as_str().unwrap().to_string();
    let hostname = m["hostname"].as_str().unwrap().to_string();
    c.post(&format!("machines/{id}/"), "deploy", &[]).await;
    c.wait_status(&id, "Deployed").await;

    let created = wait_for(&seen, "create", &hostname).await;
    assert_eq!(created["metadata"]["name"], hostname.as_str());
    assert!(created["spec"].get("providerID").is_none_or(Value::is_null));
    let status = wait_for(&seen, "status", &hostname).await;
    let ready = &status["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True"))
    );
    // No pressure, as a healthy kubelet reports: CAPI counts such a Machine available.
    let pressures: Vec<(&str, &str)> = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pressures,
        vec![
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False")
        ]
    );

    c.post(&format!("machines/{id}/"), "release", &[]).await;
    wait_for(&seen, "delete", &hostname).await;
    let calls: Vec<String> = seen
        .lock()
        .unwrap()
        .calls
        .iter()
        .map(|(k, _, _)| k.clone())
        .collect();
    assert_eq!(calls, vec!["create", "status", "delete"]);
    sim.shutdown().await.unwrap();
}

/// User data as Cluster API's kubeadm bootstrap provider renders it for a GPU worker.
const GPU_WORKER: &str = "## template: jinja
#cloud-config
write_files:
-   path: /run/kubeadm/kubeadm-join-config.yaml
    owner: root:root
    permissions: '0640'
    content: |
      ---
      apiVersion: kubeadm.k8s.io/v1beta4
      discovery:
        bootstrapToken:
          apiServerEndpoint: 10.20.0.100:6443
          token: abcdef.0123456789abcdef
      kind: JoinConfiguration
      nodeRegistration:
        kubeletExtraArgs:
        - name: node-labels
          value: nvidia.com/gpu.present=true
        name: '{{ ds.meta_data.local_hostname }}'
        taints:
        - effect: NoSchedule
          key: nvidia.com/gpu
        - effect: NoSchedule
          key: node.cluster.x-k8s.io/uninitialized
runcmd:
  - /usr/local/sbin/capmaas-node-prep v1.34.1 '1.7.*'
  - kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml && echo success > /run/cluster-api/bootstrap-success.complete
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_their_hardware_and_the_bootstrap_datas_labels_and_taints() {
    let seen: Shared = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = stand_in(&seen, dir.path()).await;
    let sim = start(SimConfig {
        machines: 1,
        gpu_machines: 1,
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    })
    .await;
    let c = Raw::new(&sim);
    let gpu = c.allocate(&[("tags", "gpu")]).await.json();
    let (id, hostname) = (
        gpu["system_id"].as_str().unwrap(),
        gpu["hostname"].as_str().unwrap(),
    );
    c.post(
        &format!("machines/{id}/"),
        "deploy",
        &[("user_data", &b64(GPU_WORKER))],
    )
    .await;
    c.wait_status(id, "Deployed").await;

    let created = wait_for(&seen, "create", hostname).await;
    let labels = &created["metadata"]["labels"];
    assert_eq!(labels["nvidia.com/gpu.present"], "true");
    assert_eq!(labels["kubernetes.io/arch"], "amd64");
    assert_eq!(
        created["spec"]["taints"],
        json!([{"key": "nvidia.com/gpu", "effect": "NoSchedule"},
               {"key": "node.cluster.x-k8s.io/uninitialized", "effect": "NoSchedule"}])
    );
    let status = &wait_for(&seen, "status", hostname).await["status"];
    let capacity = json!({"cpu": "64", "memory": "536870912Ki", "pods": "110",
                          "nvidia.com/gpu": "4"});
    assert_eq!(status["capacity"], capacity);
    assert_eq!(status["allocatable"], capacity);
    assert_eq!(status["nodeInfo"]["architecture"], "amd64");
    assert_eq!(status["nodeInfo"]["kubeletVersion"], "v1.34.1");

    // A Node that is there already (the simulator restarted, its Nodes stayed) gets the labels
    // merged in; junk user data registers as a bare Node.
    let plain = c.allocate(&[]).await.json();
    let (id, hostname) = (
        plain["system_id"].as_str().unwrap(),
        plain["hostname"].as_str().unwrap(),
    );
    seen.lock().unwrap().existing.push(hostname.to_string());
    c.post(
        &format!("machines/{id}/"),
        "deploy",
        &[("user_data", &b64("#cloud-config\n: ["))],
    )
    .await;
    c.wait_status(id, "Deployed").await;
    let merged = wait_for(&seen, "patch", hostname).await;
    assert_eq!(
        merged["metadata"]["labels"]["kubernetes.io/hostname"],
        hostname
    );
    assert_eq!(merged["metadata"]["labels"].as_object().unwrap().len(), 3);
    let status = &wait_for(&seen, "status", hostname).await["status"];
    assert!(status["capacity"].get("nvidia.com/gpu").is_none());
    sim.shutdown().await.unwrap();
}
