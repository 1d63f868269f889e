//! The node preparation script of the cloud-config flavours, run for real by bash against a
//! scratch root with the system commands it calls (apt-get, swapoff, modprobe, systemctl ...)
//! replaced by recorders: what a stock Ubuntu image gets (swap off, modules, sysctls, pinned
//! packages) and what an image that already has kubeadm keeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use capmaas_e2e::harness::{manifests, tools};
use serde_json::Value;

use crate::clusterctl_packaging::fill;

const CLOUD_CONFIG_FLAVOURS: &[&str] = &[
    "cluster-template.yaml",
    "cluster-template-gpu.yaml",
    "cluster-template-kube-vip.yaml",
];

/// The flavour's documents with every variable filled by a placeholder.
fn documents(file: &str) -> Vec<Value> {
    let path = tools::workspace_root().join("templates").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    manifests::parse(&fill(&text), &path).unwrap()
}

/// The script as the flavour ships it, in its Secret.
pub(crate) fn script_of(file: &str) -> String {
    let docs = documents(file);
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret")
        .unwrap_or_else(|| panic!("{file} ships the node-prep Secret"));
    secret["stringData"]["node-prep.sh"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every kubeadm config of a flavour: the control plane's and each KubeadmConfigTemplate's.
fn kubeadm_configs(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter_map(|d| match d["kind"].as_str() {
            Some("KubeadmControlPlane") => {
                Some(("control plane".into(), &d["spec"]["kubeadmConfigSpec"]))
            }
            Some("KubeadmControlPlaneTemplate") => Some((
                "control plane template".into(),
                &d["spec"]["template"]["spec"]["kubeadmConfigSpec"],
            )),
            Some("KubeadmConfigTemplate") => Some((
                d["metadata"]["name"].as_str().unwrap().to_string(),
                &d["spec"]["template"]["spec"],
            )),
            _ => None,
        })
        .collect()
}

/// A scratch root and a PATH whose system commands record their arguments.
struct Sandbox {
    root: PathBuf,
    stubs: PathBuf,
    calls: PathBuf,
}

const RECORDED: &[&str] = &[
    "swapoff",
    "modprobe",
    "sysctl",
    "apt-get",
    "apt-mark",
    "curl",
    "gpg",
    "systemctl",
    "containerd",
];

impl Sandbox {
    fn new(dir: &Path, image_kubeadm: Option<&str>) -> Self {
        let root = dir.join("root");
        let stubs = dir.join("stubs");
        let calls = dir.join("calls.log");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&stubs).unwrap();
        std::fs::write(
            root.join("etc/fstab"),
            "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
        )
        .unwrap();
        let mut names: Vec<&str> = RECORDED.to_vec();
        if image_kubeadm.is_some() {
            names.push("kubeadm");
        }
        for name in names {
            let output = match (name, image_kubeadm) {
                ("kubeadm", Some(version)) => format!("echo {version}\n"),
                ("containerd", _) => "echo 'SystemdCgroup = false'\n".to_string(),
                _ => String::new(),
            };
            let stub = stubs.join(name);
            std::fs::write(
                &stub,
                format!(
                    "#!/bin/bash\necho \"{name} $*\" >> '{}'\n{output}",
                    calls.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { root, stubs, calls }
    }

    /// Runs the script with the stubs first on PATH; returns its exit code, stdout and the calls.
    fn run(&self, script: &str, args: &[&str]) -> (i32, String, Vec<String>) {
        let file = self.stubs.parent().unwrap().join("node-prep.sh");
        std::fs::write(&file, script).unwrap();
        let output = Command::new("bash")
            .arg(&file)
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", self.stubs.display()))
            .env("PREP_ROOT", &self.root)
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(&self.calls).unwrap_or_default();
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            calls.lines().map(str::to_string).collect(),
        )
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path)).unwrap_or_default()
    }
}

/// A scratch directory, removed when the test ends.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("capmaas-node-prep-{name}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn every_cloud_config_machine_runs_the_node_prep_first() {
    for file in CLOUD_CONFIG_FLAVOURS {
        let docs = documents(file);
        let configs = kubeadm_configs(&docs);
        assert!(configs.len() >= 2, "{file}: control plane and workers");
        for (name, spec) in configs {
            let file_entry = spec["files"]
                .as_array()
                .and_then(|files| {
                    files
                        .iter()
                        .find(|f| f["path"] == "/usr/local/sbin/capmaas-node-prep")
                })
                .unwrap_or_else(|| panic!("{file} {name}: the script is written"));
            assert_eq!(file_entry["permissions"], "0755");
            assert_eq!(file_entry["contentFrom"]["secret"]["name"], "1-node-prep");
            assert_eq!(file_entry["contentFrom"]["secret"]["key"], "node-prep.sh");
            let first = spec["preKubeadmCommands"][0].as_str().unwrap_or_default();
            assert!(
                first.starts_with("/usr/local/sbin/capmaas-node-prep "),
                "{file} {name}: the script runs before anything else, got {first:?}"
            );
        }
    }
    let original =
        std::fs::read_to_string(tools::workspace_root().join("templates/cluster-template.yaml"))
            .unwrap();
    assert!(
        original.contains("capmaas-node-prep ${KUBERNETES_VERSION} '${CONTAINERD_VERSION:=1.7.*}'"),
        "the Machine's Kubernetes version and the containerd pin reach the script"
    );
}

/// The documents of the default flavour that `other` must carry unchanged: all of them for the
/// gpu flavour (it only adds a pool), all but the endpoint's for kube-vip.
fn shared_with_default(other: &str, doc: &Value) -> bool {
    let kind = doc["kind"].as_str().unwrap_or_default();
    other == "cluster-template-gpu.yaml"
        || !matches!(kind, "Cluster" | "MaasCluster" | "KubeadmControlPlane")
}

#[test]
fn flavours_carry_the_default_flavours_documents_unchanged() {
    let default = documents("cluster-template.yaml");
    for other in &CLOUD_CONFIG_FLAVOURS[1..] {
        let docs = documents(other);
        let mut compared = 0;
        for doc in default.iter().filter(|d| shared_with_default(other, d)) {
            let same = docs.iter().find(|g| {
                g["kind"] == doc["kind"] && g["metadata"]["name"] == doc["metadata"]["name"]
            });
            assert_eq!(
                same,
                Some(doc),
                "{other}: {} {} as in the default flavour",
                doc["kind"],
                doc["metadata"]["name"]
            );
            compared += 1;
        }
        assert!(compared >= 5, "{other}: {compared} documents compared");
    }
}

#[test]
fn node_prep_is_valid_bash_with_nothing_left_for_clusterctl() {
    for file in CLOUD_CONFIG_FLAVOURS {
        let script = script_of(file);
        let status = Command::new("bash")
            .args(["-n", "-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "{file}: bash -n accepts the script");
        // clusterctl substitutes `${...}` and turns `$$` into `$`: the script must use neither.
        assert!(
            !script.contains("${") && !script.contains("$$"),
            "{file}: no clusterctl syntax in the script"
        );
    }
}

#[test]
fn node_prep_on_a_stock_image_turns_swap_off_and_installs_pinned_packages() {
    let dir = scratch("stock");
    let sandbox = Sandbox::new(dir.path(), None);
    let (code, out, calls) =
        sandbox.run(&script_of("cluster-template.yaml"), &["v1.33.1", "1.7.*"]);
    assert_eq!(code, 0, "{out}");
    assert!(calls.contains(&"swapoff -a".to_string()), "{calls:#?}");
    assert!(
        sandbox.read("etc/fstab").contains("#/swap.img none swap"),
        "swap stays off after a reboot"
    );
    assert!(
        sandbox.read("etc/fstab").contains("UUID=1 / ext4"),
        "other mounts untouched"
    );
    assert_eq!(
        sandbox.read("etc/modules-load.d/kubernetes.conf"),
        "overlay\nbr_netfilter\n"
    );
    let sysctls = sandbox.read("etc/sysctl.d/99-kubernetes.conf");
    for key in [
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.ipv4.ip_forward = 1",
    ] {
        assert!(sysctls.contains(key), "{key} in {sysctls}");
    }
    for module in ["modprobe overlay", "modprobe br_netfilter"] {
        assert!(calls.contains(&module.to_string()), "{module}: {calls:#?}");
    }
    let install = calls
        .iter()
        .find(|c| c.contains("kubeadm="))
        .unwrap_or_else(|| panic!("the Kubernetes packages are installed: {calls:#?}"));
    for pin in [
        "containerd=1.7.*",
        "kubelet=1.33.1-*",
        "kubeadm=1.33.1-*",
        "kubectl=1.33.1-*",
    ] {
        assert!(
            install.split(' ').any(|arg| arg == pin),
            "{pin} in {install}"
        );
    }
    assert!(
        calls
            .iter()
            .any(|c| c == "apt-mark hold containerd kubelet kubeadm kubectl")
    );
    assert!(
        sandbox
            .read("etc/apt/sources.list.d/kubernetes.list")
            .contains("https://pkgs.k8s.io/core:/stable:/v1.33/deb/"),
        "the repository of the Machine's minor release"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.contains("https://pkgs.k8s.io/core:/stable:/v1.33/deb/Release.key"))
    );
    assert_eq!(
        sandbox.read("etc/containerd/config.toml"),
        "SystemdCgroup = true\n"
    );
    assert!(calls.iter().any(|c| c == "systemctl enable kubelet"));
}

#[test]
fn node_prep_on_a_kubernetes_image_keeps_its_packages() {
    let dir = scratch("custom");
    let sandbox = Sandbox::new(dir.path(), Some("v1.33.1"));
    let (code, out, calls) =
        sandbox.run(&script_of("cluster-template.yaml"), &["v1.33.1", "1.7.*"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kubeadm v1.33.1 is in the image"), "{out}");
    assert!(
        calls.contains(&"swapoff -a".to_string()),
        "swap still goes off: {calls:#?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("apt-get")),
        "nothing installed on an image that has kubeadm: {calls:#?}"
    );
    // An image with another kubeadm gets the Machine's version.
    let older_dir = scratch("older");
    let older = Sandbox::new(older_dir.path(), Some("v1.32.4"));
    let (code, _, calls) = older.run(&script_of("cluster-template.yaml"), &["v1.33.1", "1.7.*"]);
    assert_eq!(code, 0);
    assert!(
        calls.iter().any(|c| c.contains("kubeadm=1.33.1-*")),
        "{calls:#?}"
    );
}

#[test]
fn node_prep_refuses_a_version_it_cannot_pin() {
    let dir = scratch("bad");
    let sandbox = Sandbox::new(dir.path(), None);
    let (code, out, calls) = sandbox.run(&script_of("cluster-template.yaml"), &["latest", "1.7.*"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("'latest' is not a Kubernetes version"),
        "{out}"
    );
    assert!(
        calls.is_empty(),
        "nothing changed before the refusal: {calls:#?}"
    );
    let (code, out, _) = sandbox.run(&script_of("cluster-template.yaml"), &["v1.33.1"]);
    assert_eq!(code, 2);
    assert!(out.contains("usage:"), "{out}");
}

#[test]
fn the_cluster_class_ships_the_same_node_prep_and_runs_it_first() {
    let docs = documents("clusterclass-maas.yaml");
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "maas-node-prep")
        .unwrap();
    assert_eq!(
        secret["stringData"]["node-prep.sh"].as_str(),
        Some(script_of("cluster-template.yaml").as_str()),
        "one script for the flavours and the class"
    );
    let configs = kubeadm_configs(&docs);
    assert_eq!(
        configs.len(),
        2,
        "the control plane's and the worker class's"
    );
    for (name, spec) in configs {
        let file = spec["files"]
            .as_array()
            .and_then(|files| {
                files
                    .iter()
                    .find(|f| f["path"] == "/usr/local/sbin/capmaas-node-prep")
            })
            .unwrap_or_else(|| panic!("{name}: the script is written"));
        assert_eq!(file["contentFrom"]["secret"]["name"], "maas-node-prep");
    }
}
