//! Bad runtime input, each case a MaasCluster of its own through the real API server: its
//! identity Secret missing or incomplete, a key MAAS refuses, a MAAS nobody listens for, a TLS
//! endpoint whose certificate no trusted CA signed, MAAS answering an HTML page, truncated JSON,
//! and a storm of 500s. Each must end in the Ready condition's reason and message and a Warning
//! event with the same reason, never a crash: the manager is still healthy at the end. The
//! README's catalogue of bad runtime input lists these rows; `catalogue_rows` keeps the two
//! in step.

use std::collections::BTreeMap;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{
    Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests, tools,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject, ListParams};
use maas_sim::{FaultConfig, FaultRule, SimConfig, SimHandle, Simulator};

const NS: &str = "bad-runtime-input";
const LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);

/// The catalogue: each case's MaasCluster name, the Ready condition's reason, a piece of its
/// message and a piece of the Warning event's note (which carries the whole error).
const CATALOGUE: &[(&str, &str, &str, &str)] = &[
    (
        "no-secret",
        "InvalidObject",
        "identity Secret bad-runtime-input/no-secret-credentials not found",
        "not found",
    ),
    (
        "no-key",
        "InvalidObject",
        "lacks MAAS_ENDPOINT or MAAS_API_KEY",
        "lacks",
    ),
    (
        "wrong-key",
        "MaasAuthFailed",
        "the API key was refused; check the credentials",
        "Invalid API key",
    ),
    (
        "unreachable",
        "MaasUnavailable",
        "MAAS is unreachable or busy; retrying with backoff",
        "Connection refused",
    ),
    (
        "wrong-ca",
        "MaasConfigInvalid",
        "the client configuration is invalid (endpoint, API key or CA bundle)",
        "TLS certificate is not trusted",
    ),
    (
        "html",
        "MaasError",
        "unexpected answer; see the events",
        "cannot decode the response",
    ),
    (
        "truncated",
        "MaasError",
        "unexpected answer; see the events",
        "cannot decode the response",
    ),
    (
        "storm-500",
        "MaasError",
        "unexpected answer; see the events",
        "500",
    ),
];

/// One case: its catalogue row and what its identity Secret holds (`None`: no Secret).
struct Case {
    name: &'static str,
    reason: &'static str,
    message: &'static str,
    note: &'static str,
    secret: Option<(String, String)>,
}

/// A MAAS whose every answer is `status` with `body`.
async fn answering(status: u16, body: &str) -> SimHandle {
    Simulator::start(SimConfig {
        machines: 1,
        gpu_machines: 0,
        faults: FaultConfig {
            rules: vec![FaultRule {
                error_rate: 1.0,
                status,
                body: Some(body.to_string()),
                ..FaultRule::on("*")
            }],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The API server's own HTTPS address: a real TLS endpoint whose CA the manager does not trust.
fn untrusted_tls_endpoint(env: &Env) -> String {
    let kubeconfig = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("the kubeconfig names its server");
    format!("{server}/MAAS/")
}

/// The endpoint and key of each case's identity Secret.
fn secret_for(name: &str, env: &Env, sims: &[SimHandle]) -> Option<(String, String)> {
    let key = env.sim.api_key().to_string();
    let [html, truncated, storm] = sims else {
        panic!("three simulators");
    };
    // The faulty simulators check each request's signature before they answer it badly.
    let own = |sim: &SimHandle| (sim.url(), sim.api_key().to_string());
    Some(match name {
        "no-secret" => return None,
        "no-key" => (env.sim.url(), String::new()),
        "wrong-key" => (env.sim.url(), "not:our:key".to_string()),
        "unreachable" => (format!("http://127.0.0.1:{}/MAAS/", closed_port()), key),
        "wrong-ca" => (untrusted_tls_endpoint(env), key),
        "html" => own(html),
        "truncated" => own(truncated),
        "storm-500" => own(storm),
        other => panic!("no endpoint for case {other}"),
    })
}

fn cases(env: &Env, sims: &[SimHandle]) -> Vec<Case> {
    CATALOGUE
        .iter()
        .map(|&(name, reason, message, note)| Case {
            name,
            reason,
            message,
            note,
            secret: secret_for(name, env, sims),
        })
        .collect()
}

fn manifest(case: &Case) -> String {
    let name = case.name;
    let secret = case
        .secret
        .as_ref()
        .map(|(url, key)| {
            let key_line = if key.is_empty() {
                String::new()
            } else {
                format!("  MAAS_API_KEY: \"{key}\"\n")
            };
            format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-credentials\nstringData:\n  MAAS_ENDPOINT: \"{url}\"\n{key_line}"
            )
        })
        .unwrap_or_default();
    secret + &cluster_yaml::dns_cluster(name, Some(&format!("{name}-credentials")))
}

/// Every MaasCluster's Ready condition (reason, message), by name.
async fn ready_conditions(env: &Env) -> Result<BTreeMap<String, (String, String)>, HarnessError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_clusters_resource());
    let mut out = BTreeMap::new();
    for c in api.list(&ListParams::default()).await? {
        let conditions = c.data["status"]["conditions"].as_array().cloned();
        if let Some(ready) = conditions
            .unwrap_or_default()
            .iter()
            .find(|c| c["type"] == "Ready")
        {
            let text = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
            out.insert(
                c.metadata.name.clone().unwrap_or_default(),
                (text("reason"), text("message")),
            );
        }
    }
    Ok(out)
}

/// Warning events (reason, note), by the name of the object they are about.
async fn warnings(env: &Env) -> Result<BTreeMap<String, Vec<(String, String)>>, HarnessError> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), NS);
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in events.list(&ListParams::default()).await? {
        if e.type_.as_deref() == Some("Warning") {
            let name = e.involved_object.name.clone().unwrap_or_default();
            let reason = e.reason.clone().unwrap_or_default();
            out.entry(name)
                .or_default()
                .push((reason, e.message.clone().unwrap_or_default()));
        }
    }
    Ok(out)
}

async fn scenario(env: &Env, cases: &[Case]) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    let text: String = cases.iter().map(manifest).collect();
    let objects = manifests::parse(&text, std::path::Path::new("bad_runtime_input.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let conditions = wait_for("every case's Ready reason", POLL, LIMIT, || async {
        let now = ready_conditions(env).await?;
        let done = cases.iter().all(|c| {
            now.get(c.name)
                .is_some_and(|(reason, _)| reason == c.reason)
        });
        Ok((done.then(|| now.clone()), format!("{now:?}")))
    })
    .await?;
    let events = warnings(env).await?;
    for case in cases {
        let (reason, message) = &conditions[case.name];
        let notes: Vec<&String> = events
            .get(case.name)
            .into_iter()
            .flatten()
            .filter(|(r, _)| r == case.reason)
            .map(|(_, note)| note)
            .collect();
        eprintln!(
            "{:<12} {reason:<16} {message} | event: {notes:?}",
            case.name
        );
        assert!(
            message.contains(case.message),
            "{}: {message:?} should say {:?}",
            case.name,
            case.message
        );
        assert!(
            notes.iter().any(|n| n.contains(case.note)),
            "{}: a Warning event {} saying {:?}; events: {events:?}",
            case.name,
            case.reason,
            case.note
        );
    }
    Ok(())
}

#[tokio::test]
async fn bad_runtime_input_becomes_a_condition_and_an_event() {
    let Some(mut env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 1,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let sims = vec![
        answering(200, "<html><body><h1>Sign in</h1></body></html>").await,
        answering(
            200,
            r#"[{"id": 1, "fqdn": "a.maas", "ip_addresses": [{"ip": "10.0"#,
        )
        .await,
        answering(500, "Internal server error.").await,
    ];
    let cases = cases(&env, &sims);
    let started = std::time::Instant::now();
    let result = scenario(&env, &cases).await;
    for (name, sim) in ["html", "truncated", "storm-500"].iter().zip(&sims) {
        eprintln!(
            "{name}: {} MAAS requests in the {:.0} s until every case was reported",
            sim.requests().total,
            started.elapsed().as_secs_f64()
        );
    }
    let healthy = match env.manager.as_mut() {
        Some(m) => m.process.check_running().map_err(|e| e.to_string()),
        None => Err("no manager".to_string()),
    };
    for sim in sims {
        sim.shutdown().await.unwrap();
    }
    let result = result
        .map_err(|e| e.to_string())
        .and(healthy.map_err(|e| format!("the manager is still running: {e}")));
    env.finish(result).await;
}

/// The README's catalogue names every case of this test with its reason.
#[test]
fn sim_catalogue_rows_match_the_cases() {
    let readme = std::fs::read_to_string(tools::workspace_root().join("README.md")).unwrap();
    for &(name, reason, message, _) in CATALOGUE {
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("README has no catalogue row for `{name}`"));
        assert!(
            row.contains(reason) && row.contains(message),
            "README row for {name} names {reason} and {message:?}: {row}"
        );
    }
}
