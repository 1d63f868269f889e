//! The default flavour, rendered by `clusterctl generate cluster`, provisioned by the real
//! kubeadm bootstrap and control-plane managers with our provider: one control-plane Machine and
//! two workers reach Running. The workload cluster is the harness API server; what a real
//! `kubeadm init` leaves behind that the control-plane manager reads (the `kubeadm-config`
//! ConfigMap and the control-plane role label on the Node) is put there by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::clusterctl_support;
use crate::kubeadm_support;
use crate::node_prep;
use crate::rbac_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::observe;
use capmaas_e2e::harness::{Env, EnvOptions, TestEnv, manifests, tools};
use serde_json::Value;

use clusterctl_support::Clusterctl;
use rbac_support::workspace_version;

const NS: &str = "kubeadm-default";
const LIMIT: Duration = Duration::from_secs(300);
const NODE_PREP: &str = "/usr/local/sbin/capmaas-node-prep";

/// What cloud-init would write and run on one machine, from the user data MAAS was given: the
/// jinja header rendered with the machine's hostname, as cloud-init's MAAS datasource does.
struct CloudConfig {
    files: BTreeMap<String, String>,
    commands: Vec<String>,
}

fn cloud_config(user_data: &str, hostname: &str) -> CloudConfig {
    let body = user_data
        .strip_prefix("## template: jinja\n")
        .unwrap_or(user_data)
        .replace("{{ ds.meta_data.local_hostname }}", hostname);
    assert!(body.starts_with("#cloud-config"), "{body}");
    let doc: Value = serde_saphyr::from_str(&body).unwrap();
    let files = doc["write_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let commands = doc["runcmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    CloudConfig { files, commands }
}

/// kubeadm's own validation of the configuration a machine was given (`kubeadm config validate`,
/// the kubeadm of the tools build).
fn kubeadm_validate(env: &Env, name: &str, config: &str) -> String {
    let file = env.run_dir().join(format!("{name}-kubeadm.yaml"));
    std::fs::write(&file, config).unwrap();
    let output = std::process::Command::new(tools::bin_dir().unwrap().join("kubeadm"))
        .args(["config", "validate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kubeadm config validate for {name}: {text}"
    );
    text
}

/// Every deployed machine's cloud-config: the node preparation from the template's Secret runs
/// first with the Machine's version, then kubeadm with a configuration kubeadm accepts.
fn check_cloud_configs(env: &Env, version: &str) {
    let script = node_prep::script_of("cluster-template.yaml");
    let machines: Vec<(String, String)> = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .filter_map(|m| Some((m.hostname.clone(), m.user_data.clone()?)))
        .collect();
    assert_eq!(machines.len(), 3);
    for (hostname, user_data) in machines {
        let config = cloud_config(&user_data, &hostname);
        assert_eq!(
            config.files.get(NODE_PREP),
            Some(&script),
            "{hostname}: the bootstrap provider wrote the script from the Secret"
        );
        eprintln!("{hostname} runs:\n  {}", config.commands.join("\n  "));
        assert_eq!(
            config.commands[0],
            format!("{NODE_PREP} {version} '1.7.*'"),
            "{hostname}: the preparation runs first, for the Machine's version"
        );
        let (kubeadm_file, verb) = if config.files.contains_key("/run/kubeadm/kubeadm.yaml") {
            ("/run/kubeadm/kubeadm.yaml", "kubeadm init")
        } else {
            ("/run/kubeadm/kubeadm-join-config.yaml", "kubeadm join")
        };
        let kubeadm_at = config
            .commands
            .iter()
            .position(|c| c.contains(verb))
            .unwrap_or_else(|| panic!("{hostname}: {verb} in {:#?}", config.commands));
        assert!(kubeadm_at > 0, "{hostname}: {verb} after the preparation");
        let validated = kubeadm_validate(env, &hostname, &config.files[kubeadm_file]);
        eprintln!(
            "{hostname}: kubeadm config validate {kubeadm_file}: {}",
            validated.trim()
        );
    }
}

async fn scenario(env: &Env, work: &Path) {
    let _kubeadm = kubeadm_support::start(env, "").await;

    let version = workspace_version();
    let kubernetes = kubeadm_support::kubeadm_version();
    let (clusterctl, _) =
        Clusterctl::for_release(env, work, "registry.example/capmaas-manager:test");
    let rendered = clusterctl.run(
        &[
            "generate",
            "cluster",
            "demo",
            "--infrastructure",
            &format!("maas:v{version}"),
            "--target-namespace",
            NS,
            "--kubernetes-version",
            &kubernetes,
            "--control-plane-machine-count",
            "1",
            "--worker-machine-count",
            "2",
        ],
        &[
            ("MAAS_DNS_DOMAIN", "maas"),
            ("CONTROL_PLANE_MACHINE_MINCPU", "1"),
            ("CONTROL_PLANE_MACHINE_MINMEMORY", "1024"),
            ("WORKER_MACHINE_MINCPU", "1"),
            ("WORKER_MACHINE_MINMEMORY", "1024"),
        ],
    );
    env.namespace(NS).await.unwrap();
    env.workload_kubeconfig_secret(NS, "demo").await.unwrap();
    let objects = manifests::parse(&rendered, Path::new("generated")).unwrap();
    manifests::apply_all(&env.client, NS, &objects)
        .await
        .unwrap();

    // The control-plane Machine runs first; its Node gets the role label kubeadm would set.
    kubeadm_support::wait_first_control_plane(env, NS, &kubernetes, LIMIT).await;
    let rows = observe::wait_machines_running(&env.client, NS, 3, LIMIT)
        .await
        .unwrap();
    eprintln!("{}", observe::render_table(&rows));
    // MAAS deployed each machine with the kubeadm provider's cloud-config: one init, two joins,
    // each naming its Node after the MAAS hostname through cloud-init's jinja.
    let user_data: Vec<String> = env
        .sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .filter_map(|m| m.user_data.clone())
        .collect();
    let count = |needle: &str| user_data.iter().filter(|u| u.contains(needle)).count();
    assert_eq!(count("kubeadm init"), 1, "one control-plane init");
    assert_eq!(count("kubeadm join"), 2, "two workers join");
    assert_eq!(count("## template: jinja"), 3);
    assert_eq!(count("{{ ds.meta_data.local_hostname }}"), 3);
    check_cloud_configs(env, &kubernetes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_flavour_provisions_with_the_kubeadm_providers() {
    // The kubeadm providers' CRDs and managers are cluster-wide.
    let Some(env) = TestEnv::own(
        "kubeadm",
        EnvOptions {
            machines: 6,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let work = env.run_dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    scenario(&env, &work).await;
    env.stop().await;
}
