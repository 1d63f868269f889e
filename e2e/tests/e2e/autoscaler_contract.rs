//! The gpu flavour against cluster-autoscaler's clusterapi provider, field by field: the
//! flavour rendered by the real clusterctl from the release repository (no cluster, no MAAS), and
//! every field the autoscaler reads on its GPU MachineDeployment parsed as the autoscaler parses
//! it (`clusterapi_utils.go`, `clusterapi_unstructured.go`): the size bounds, the labels and
//! taints a Node scaled from zero will carry (equal to what the kubelet registers and Cluster API
//! syncs), the GPU type, no capacity override of the template's measured status, and the
//! infrastructure reference through which it reads that status. The autoscaler's RBAC in
//! docs/gpu.md is checked against our CRD too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use capmaas_e2e::harness::{crds, manifests, tools};
use serde_json::Value;

use crate::clusterctl_support::{Clusterctl, file_url, write_config};
use crate::rbac_support::{release, workspace_version};

/// The size-bound annotations (`CAPI_GROUP` left at its default).
pub(crate) const MIN_SIZE: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size";
/// See [`MIN_SIZE`].
pub(crate) const MAX_SIZE: &str = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size";
/// The prefix of the scale-from-zero capacity annotations.
pub(crate) const CAPACITY: &str = "capacity.cluster-autoscaler.kubernetes.io/";
/// The capacity annotations the autoscaler reads; any other key under [`CAPACITY`] is a typo.
const KNOWN_CAPACITY_KEYS: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-disk",
    "maxPods",
    "gpu-type",
    "gpu-count",
    "labels",
    "taints",
];
/// Capacity annotations that would override what the provider measures in the template's
/// `status.capacity` (`cpu`, `memory`, `ephemeral-storage`, `nvidia.com/gpu`).
const MEASURED: &[&str] = &["cpu", "memory", "ephemeral-disk", "gpu-count"];
/// The taint effects the API server accepts.
const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A taint as (key, value, effect); an absent value is empty, as the autoscaler reads it.
pub(crate) type Taint = (String, String, String);

/// A DNS-1123 subdomain: the prefix of a label key.
fn is_dns_subdomain(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_ok)
}

/// Kubernetes' `qualifiedNameFmt`, at most 63 characters; empty only when `allow_empty`.
fn is_name_part(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    s.len() <= 63
        && s.bytes()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}

/// `validation.IsQualifiedName`: a label key or taint key, `[prefix/]name`.
pub(crate) fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            is_dns_subdomain(prefix) && !name.contains('/') && is_name_part(name, false)
        }
        None => is_name_part(key, false),
    }
}

/// `validation.IsValidLabelValue`.
pub(crate) fn is_label_value(value: &str) -> bool {
    is_name_part(value, true)
}

/// The `labels` capacity annotation as the autoscaler reads it (split on `,`, then on the first
/// `=`), except that what it would skip silently (an item without `=`, an invalid key or value,
/// a key twice) is an error here.
pub(crate) fn parse_label_list(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for item in value.split(',') {
        let (key, val) = item
            .split_once('=')
            .ok_or_else(|| format!("label {item:?} has no '='"))?;
        if !is_qualified_name(key) {
            return Err(format!("label key {key:?} is not a qualified name"));
        }
        if !is_label_value(val) {
            return Err(format!("label value {val:?} of {key} is not a label value"));
        }
        if labels.insert(key.to_string(), val.to_string()).is_some() {
            return Err(format!("label {key} twice"));
        }
    }
    Ok(labels)
}

/// One taint of the `taints` capacity annotation as the autoscaler's `parseTaint` reads it
/// (`key[=value]:Effect`), with the effect required and checked as the API server checks it.
pub(crate) fn parse_taint(item: &str) -> Result<Taint, String> {
    let parts: Vec<&str> = item.split(':').collect();
    let [key_value, effect] = parts.as_slice() else {
        return Err(format!("taint {item:?} is not key[=value]:Effect"));
    };
    let kv: Vec<&str> = key_value.split('=').collect();
    let (key, value) = match kv.as_slice() {
        [key] => (*key, ""),
        [key, value] => (*key, *value),
        _ => return Err(format!("taint {item:?} has more than one '='")),
    };
    if !is_qualified_name(key) {
        return Err(format!("taint key {key:?} is not a qualified name"));
    }
    if !is_label_value(value) {
        return Err(format!(
            "taint value {value:?} of {key} is not a label value"
        ));
    }
    if !EFFECTS.contains(effect) {
        return Err(format!(
            "taint effect {effect:?} of {key} is not one of {EFFECTS:?}"
        ));
    }
    Ok((key.to_string(), value.to_string(), effect.to_string()))
}

/// The `taints` capacity annotation, sorted.
pub(crate) fn parse_taint_list(value: &str) -> Result<Vec<Taint>, String> {
    let mut taints = value
        .split(',')
        .map(parse_taint)
        .collect::<Result<Vec<_>, _>>()?;
    taints.sort();
    Ok(taints)
}

/// A size bound as the autoscaler's `strconv.Atoi` reads it.
pub(crate) fn parse_bound(annotations: &Value, key: &str) -> Result<i64, String> {
    let text = annotations[key]
        .as_str()
        .ok_or_else(|| format!("{key} is missing (or not a string)"))?;
    text.parse::<i64>()
        .map_err(|e| format!("{key}: {text:?} is not an integer: {e}"))
}

/// Whether Cluster API syncs a Machine label with this key to the Node: the
/// `node-role.kubernetes.io` prefix, the `node-restriction.kubernetes.io` and
/// `node.cluster.x-k8s.io` domains and their subdomains.
pub(crate) fn synced_by_cluster_api(key: &str) -> bool {
    let Some((prefix, _)) = key.split_once('/') else {
        return false;
    };
    let domain = |d: &str| prefix == d || prefix.ends_with(&format!(".{d}"));
    prefix == "node-role.kubernetes.io"
        || domain("node-restriction.kubernetes.io")
        || domain("node.cluster.x-k8s.io")
}

/// The labels the kubelet registers with: every `node-labels` entry of the kubeadm config's
/// `joinConfiguration.nodeRegistration.kubeletExtraArgs` (the v1beta2 list of name and value).
pub(crate) fn kubelet_labels(kubeadm_config_template: &Value) -> BTreeMap<String, String> {
    let registration = registration(kubeadm_config_template);
    let mut labels = BTreeMap::new();
    for arg in registration["kubeletExtraArgs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if arg["name"] == "node-labels" {
            let value = arg["value"].as_str().unwrap();
            labels.extend(parse_label_list(value).unwrap_or_else(|e| panic!("node-labels: {e}")));
        }
    }
    labels
}

/// The taints the kubelet registers with, sorted.
pub(crate) fn registration_taints(kubeadm_config_template: &Value) -> Vec<Taint> {
    let mut taints: Vec<Taint> = registration(kubeadm_config_template)["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let field = |f: &str| t[f].as_str().unwrap_or_default().to_string();
            (field("key"), field("value"), field("effect"))
        })
        .collect();
    taints.sort();
    taints
}

fn registration(kubeadm_config_template: &Value) -> &Value {
    &kubeadm_config_template["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]
}

/// What a pool is expected to carry for the autoscaler.
pub(crate) struct Expected<'a> {
    /// The min-size bound.
    pub min: i64,
    /// The max-size bound.
    pub max: i64,
    /// The `node.cluster.x-k8s.io/tier` label.
    pub tier: &'a str,
    /// The `cluster-api/accelerator` label.
    pub accelerator: &'a str,
}

/// The object of `kind` named `name`.
pub(crate) fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} rendered"))
}

/// Checks the autoscaler's annotations on `md` against the pool's kubeadm config and Machine
/// template labels and against `want`.
pub(crate) fn check_annotations(md: &Value, kubeadm_config: &Value, want: &Expected) {
    let name = md["metadata"]["name"].as_str().unwrap();
    let annotations = &md["metadata"]["annotations"];
    let (min, max) = (
        parse_bound(annotations, MIN_SIZE).unwrap(),
        parse_bound(annotations, MAX_SIZE).unwrap(),
    );
    assert!(
        0 <= min && min <= max,
        "{name}: 0 <= min {min} <= max {max}"
    );
    assert_eq!((min, max), (want.min, want.max), "{name}: bounds");

    let template_labels: BTreeMap<String, String> =
        serde_json::from_value(md["spec"]["template"]["metadata"]["labels"].clone()).unwrap();
    for key in template_labels.keys() {
        assert!(
            synced_by_cluster_api(key),
            "{name}: Machine label {key} never reaches the Node through Cluster API"
        );
    }
    let mut node_labels = kubelet_labels(kubeadm_config);
    node_labels.extend(template_labels);
    assert_eq!(
        node_labels
            .get("node.cluster.x-k8s.io/tier")
            .map(String::as_str),
        Some(want.tier),
        "{name}: tier label"
    );
    assert_eq!(node_labels["nvidia.com/gpu.present"], "true", "{name}");
    assert_eq!(
        node_labels["cluster-api/accelerator"], want.accelerator,
        "{name}"
    );
    let labels = annotations[format!("{CAPACITY}labels")].as_str().unwrap();
    assert_eq!(
        parse_label_list(labels).unwrap(),
        node_labels,
        "{name}: labels annotation = kubelet registration labels + synced Machine labels"
    );
    let taints = annotations[format!("{CAPACITY}taints")].as_str().unwrap();
    let registered = registration_taints(kubeadm_config);
    assert!(
        registered.contains(&("nvidia.com/gpu".into(), String::new(), "NoSchedule".into())),
        "{name}: the GPU taint is registered: {registered:?}"
    );
    assert_eq!(
        parse_taint_list(taints).unwrap(),
        registered,
        "{name}: taints annotation = kubelet registration taints"
    );
    check_capacity_keys(name, annotations);
}

/// The GPU type is set; nothing overrides what the provider measures; no unknown key.
fn check_capacity_keys(name: &str, annotations: &Value) {
    assert_eq!(
        annotations[format!("{CAPACITY}gpu-type")],
        "nvidia.com/gpu",
        "{name}: gpu-type"
    );
    for (key, _) in annotations.as_object().unwrap() {
        let Some(short) = key.strip_prefix(CAPACITY) else {
            continue;
        };
        assert!(
            KNOWN_CAPACITY_KEYS.contains(&short),
            "{name}: {key} is not an annotation the autoscaler reads"
        );
        assert!(
            !MEASURED.contains(&short),
            "{name}: {key} would override the template's measured status.capacity"
        );
    }
}

/// The MachineDeployment's references: the MaasMachineTemplate (whose status the autoscaler
/// reads, at the plural it derives from the kind) and the KubeadmConfigTemplate, both rendered.
pub(crate) fn check_references(objects: &[Value], md: &Value) -> (Value, Value) {
    let name = md["metadata"]["name"].as_str().unwrap();
    let spec = &md["spec"]["template"]["spec"];
    let infra = &spec["infrastructureRef"];
    assert_eq!(
        infra["apiGroup"], "infrastructure.cluster.x-k8s.io",
        "{name}"
    );
    assert_eq!(infra["kind"], "MaasMachineTemplate", "{name}");
    let template = find(
        objects,
        "MaasMachineTemplate",
        infra["name"].as_str().unwrap(),
    );
    assert_eq!(
        template["spec"]["template"]["spec"]["gpu"]["vendor"], "nvidia",
        "{name}: the template asks MAAS for NVIDIA GPUs"
    );
    // The autoscaler lower-cases the kind and appends `s` to find the resource.
    let crd = crds::read_file(
        &tools::workspace_root()
            .join("config/crd/bases/infrastructure.cluster.x-k8s.io_maasmachinetemplates.yaml"),
    )
    .unwrap();
    assert_eq!(
        format!("{}s", infra["kind"].as_str().unwrap().to_lowercase()),
        crd[0].spec.names.plural
    );
    let bootstrap = &spec["bootstrap"]["configRef"];
    assert_eq!(bootstrap["kind"], "KubeadmConfigTemplate", "{name}");
    let config = find(
        objects,
        "KubeadmConfigTemplate",
        bootstrap["name"].as_str().unwrap(),
    );
    (template.clone(), config.clone())
}

/// clusterctl with the release repository in `work` as its only repository and no cluster.
fn offline_clusterctl(work: &Path) -> (Clusterctl, String) {
    let version = workspace_version();
    let image = format!("registry.example/capmaas-manager:v{version}");
    let release_dir = release(&work.join("release"), &image);
    let config = work.join("clusterctl.yaml");
    write_config(
        &config,
        &[(
            "maas".into(),
            "InfrastructureProvider".into(),
            file_url(&release_dir.join("infrastructure-components.yaml")),
        )],
    );
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let clusterctl = Clusterctl {
        bin: tools::bin_dir().unwrap().join("clusterctl"),
        home,
        config,
        // `--target-namespace` is given, so clusterctl never reads a cluster.
        kubeconfig: work.join("no-cluster.kubeconfig"),
    };
    (clusterctl, format!("maas:v{version}"))
}

/// `clusterctl generate cluster demo --flavor gpu` with `vars` set.
fn render_gpu(clusterctl: &Clusterctl, provider: &str, vars: &[(&str, &str)]) -> Vec<Value> {
    let mut env = vec![("MAAS_DNS_DOMAIN", "maas")];
    env.extend_from_slice(vars);
    let rendered = clusterctl.run(
        &[
            "generate",
            "cluster",
            "demo",
            "--infrastructure",
            provider,
            "--flavor",
            "gpu",
            "--target-namespace",
            "gpu",
            "--kubernetes-version",
            "v1.33.1",
            "--control-plane-machine-count",
            "1",
            "--worker-machine-count",
            "1",
        ],
        &env,
    );
    assert!(!rendered.contains("${"), "no variable left unrendered");
    manifests::parse(&rendered, Path::new("generated")).unwrap()
}

#[test]
fn the_gpu_flavour_meets_the_cluster_autoscaler_contract() {
    if tools::require_tools().is_none() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("capmaas-e2e-autoscaler-")
        .tempdir()
        .unwrap();
    let (clusterctl, provider) = offline_clusterctl(work.path());
    let cases: [(&[(&str, &str)], Expected); 2] = [
        (
            &[],
            Expected {
                min: 0,
                max: 4,
                tier: "shared",
                accelerator: "nvidia",
            },
        ),
        (
            &[
                ("GPU_MACHINE_MIN_COUNT", "1"),
                ("GPU_MACHINE_MAX_COUNT", "6"),
                ("GPU_MACHINE_COUNT", "2"),
                ("GPU_TIER", "gold"),
                ("GPU_TYPE", "nvidia-a100"),
            ],
            Expected {
                min: 1,
                max: 6,
                tier: "gold",
                accelerator: "nvidia-a100",
            },
        ),
    ];
    for (vars, want) in &cases {
        let objects = render_gpu(&clusterctl, &provider, vars);
        let md = find(&objects, "MachineDeployment", "demo-gpu-0");
        let (template, config) = check_references(&objects, md);
        assert_eq!(
            template["metadata"]["name"], "demo-gpu-0",
            "the GPU template"
        );
        check_annotations(md, &config, want);
        // The autoscaler acts only on a pool within its bounds.
        let replicas = md["spec"]["replicas"].as_i64().unwrap();
        assert!(
            (want.min..=want.max).contains(&replicas),
            "{vars:?}: replicas {replicas} within the bounds"
        );
        // The default worker pool stays outside the autoscaler.
        let workers = find(&objects, "MachineDeployment", "demo-md-0");
        assert!(workers["metadata"]["annotations"].is_null(), "{vars:?}");
    }
}

/// The ```yaml blocks of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Whether a Role's rules grant `verbs` on `group`/`resource`.
fn grants(role: &Value, group: &str, resource: &str, verbs: &[&str]) -> bool {
    let has = |rule: &Value, field: &str, want: &str| {
        rule[field]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == want || x == "*"))
    };
    role["rules"].as_array().into_iter().flatten().any(|rule| {
        has(rule, "apiGroups", group)
            && has(rule, "resources", resource)
            && verbs.iter().all(|v| has(rule, "verbs", v))
    })
}

#[test]
fn the_documented_autoscaler_role_reads_our_templates() {
    let root = tools::workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/gpu.md")).unwrap();
    let roles: Vec<Value> = yaml_blocks(&doc)
        .iter()
        .flat_map(|b| manifests::parse(b, Path::new("docs/gpu.md")).unwrap())
        .filter(|o| o["kind"] == "Role")
        .collect();
    assert_eq!(roles.len(), 1, "docs/gpu.md shows the autoscaler's Role");
    let role = &roles[0];
    let crd = crds::read_file(
        &root.join("config/crd/bases/infrastructure.cluster.x-k8s.io_maasmachinetemplates.yaml"),
    )
    .unwrap();
    let plural = crd[0].spec.names.plural.as_str();
    assert!(grants(
        role,
        "infrastructure.cluster.x-k8s.io",
        plural,
        &["get", "list", "watch"]
    ));
    for resource in ["machinedeployments", "machinesets", "machines"] {
        assert!(
            grants(
                role,
                "cluster.x-k8s.io",
                resource,
                &["get", "list", "watch"]
            ),
            "{resource}"
        );
    }
    // Scaling goes through the scale subresource; marking a Machine for deletion updates it.
    assert!(grants(
        role,
        "cluster.x-k8s.io",
        "machinedeployments/scale",
        &["get", "update", "patch"]
    ));
    assert!(grants(role, "cluster.x-k8s.io", "machines", &["update"]));
}

#[test]
fn annotation_parsing_follows_the_autoscaler() {
    let taints =
        parse_taint_list("nvidia.com/gpu:NoSchedule,node.cluster.x-k8s.io/tier=gold:NoExecute");
    assert_eq!(
        taints.unwrap(),
        vec![
            (
                "node.cluster.x-k8s.io/tier".into(),
                "gold".into(),
                "NoExecute".into()
            ),
            ("nvidia.com/gpu".into(), String::new(), "NoSchedule".into()),
        ]
    );
    for bad in [
        "nvidia.com/gpu",
        "nvidia.com/gpu:NoScheduling",
        "a=b=c:NoSchedule",
        "a:b:NoSchedule",
        "Bad_Prefix.com/x:NoSchedule",
        "k=v alue:NoSchedule",
        "",
    ] {
        assert!(parse_taint_list(bad).is_err(), "{bad:?}");
    }
    let labels = parse_label_list("nvidia.com/gpu.present=true,cluster-api/accelerator=nvidia");
    assert_eq!(labels.unwrap().len(), 2);
    for bad in ["a", "a=b,a=c", "a/b/c=d", "-a=b", "a=-b", "a=b,"] {
        assert!(parse_label_list(bad).is_err(), "{bad:?}");
    }
    assert!(
        parse_label_list("a=").is_ok(),
        "an empty value is a label value"
    );
    assert!(synced_by_cluster_api("node.cluster.x-k8s.io/tier"));
    assert!(synced_by_cluster_api("gpu.node.cluster.x-k8s.io/x"));
    assert!(synced_by_cluster_api("node-role.kubernetes.io/gpu"));
    assert!(!synced_by_cluster_api("nvidia.com/gpu.present"));
    assert!(!synced_by_cluster_api("cluster-api/accelerator"));
    assert!(!synced_by_cluster_api("xnode.cluster.x-k8s.io/tier"));
    let bounds = serde_json::json!({MIN_SIZE: "0", MAX_SIZE: "four"});
    assert_eq!(parse_bound(&bounds, MIN_SIZE), Ok(0));
    assert!(parse_bound(&bounds, MAX_SIZE).is_err());
}
