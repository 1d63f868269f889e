//! Static checks of what ships but cannot be built or run here (no container engine): the
//! Dockerfiles, the rendered manager Deployment, the RBAC, the clusterctl metadata, the
//! templates' documented variables and the in-cluster simulator. Each check targets a mistake
//! that breaks a release at install time rather than at build time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::rbac_support;

use std::collections::BTreeSet;
use std::path::Path;

use capmaas_e2e::harness::{manifests, tools};
use clap::Parser;
use serde_json::Value;

/// The parts of a Dockerfile's final stage that decide whether the image starts.
#[derive(Debug, Default)]
struct FinalStage {
    base: String,
    user: Option<String>,
    entrypoint: Vec<String>,
    copies: Vec<(String, String)>,
    /// `cargo build ... --bin NAME` and `-p PACKAGE` of the build stage.
    cargo_bin: Option<String>,
    cargo_package: Option<String>,
    /// Where the build stage puts the binary (`cp <from> <to>`).
    built_to: Option<String>,
}

fn parse_dockerfile(text: &str) -> FinalStage {
    // Join continuation lines, drop comments.
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
        } else {
            current.push_str(line);
            lines.push(std::mem::take(&mut current));
        }
    }
    let mut stage = FinalStage::default();
    for line in lines {
        let (instr, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => {
                let build = (
                    stage.cargo_bin.take(),
                    stage.cargo_package.take(),
                    stage.built_to.take(),
                );
                stage = FinalStage {
                    base: rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    cargo_bin: build.0,
                    cargo_package: build.1,
                    built_to: build.2,
                    ..Default::default()
                };
            }
            "USER" => stage.user = Some(rest.trim().to_string()),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest.trim()).unwrap(),
            "COPY" => {
                let parts: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|p| !p.starts_with("--"))
                    .collect();
                stage
                    .copies
                    .push((parts[0].to_string(), parts[parts.len() - 1].to_string()));
            }
            "RUN" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                if words.contains(&"cargo") {
                    for (i, w) in words.iter().enumerate() {
                        if *w == "--bin" {
                            stage.cargo_bin = words.get(i + 1).map(|s| s.to_string());
                        }
                        if *w == "-p" {
                            stage.cargo_package = words.get(i + 1).map(|s| s.to_string());
                        }
                        if *w == "cp" {
                            stage.built_to = words.get(i + 2).map(|s| s.to_string());
                            let from = words.get(i + 1).unwrap();
                            if let Some(bin) = &stage.cargo_bin {
                                assert!(
                                    from.ends_with(&format!("/release/{bin}")),
                                    "copies the release binary {bin}, not {from}"
                                );
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    stage
}

/// `[[bin]]` names of a crate.
fn bin_names(cargo_toml: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(cargo_toml).unwrap();
    let mut package = String::new();
    let mut bins = Vec::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if let Some(v) = line
            .strip_prefix("name")
            .map(|r| r.trim_start_matches([' ', '=']).trim_matches('"'))
        {
            match section.as_str() {
                "[package]" => package = v.to_string(),
                "[[bin]]" => bins.push(v.to_string()),
                _ => {}
            }
        }
    }
    (package, bins)
}

fn check_image(dockerfile: &str, crate_dir: &str, binary: &str) -> FinalStage {
    let root = tools::workspace_root();
    let stage = parse_dockerfile(&std::fs::read_to_string(root.join(dockerfile)).unwrap());
    let (package, bins) = bin_names(&root.join(crate_dir).join("Cargo.toml"));
    assert!(
        bins.contains(&binary.to_string()),
        "{crate_dir} has [[bin]] {binary}"
    );
    assert_eq!(
        stage.cargo_package.as_deref(),
        Some(package.as_str()),
        "{dockerfile}: -p"
    );
    assert_eq!(
        stage.cargo_bin.as_deref(),
        Some(binary),
        "{dockerfile}: --bin"
    );
    assert!(
        stage.base.contains("distroless/static") || stage.base == "scratch",
        "{dockerfile}: static base for a musl binary, not {}",
        stage.base
    );
    let user = stage.user.clone().expect("a USER in the final stage");
    let uid = user.split(':').next().unwrap();
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("{dockerfile}: numeric USER, not {user}"));
    assert_ne!(uid, 0, "{dockerfile}: non-root USER");
    let entry = stage.entrypoint.first().expect("an ENTRYPOINT").clone();
    let built = stage
        .built_to
        .clone()
        .expect("the build stage copies the binary out");
    assert!(
        stage
            .copies
            .iter()
            .any(|(from, to)| from == &built && to == &entry),
        "{dockerfile}: ENTRYPOINT {entry} is where the binary {built} is copied: {:?}",
        stage.copies
    );
    assert!(entry.ends_with(&format!("/{binary}")));
    stage
}

fn rendered(dir: &str) -> Vec<Value> {
    let text = rbac_support::kustomize_build(&tools::workspace_root().join(dir));
    manifests::parse(&text, Path::new(dir)).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} rendered"))
}

fn port_of(bind: &str) -> u16 {
    bind.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn manager_image_matches_the_deployment() {
    // kustomize comes from the tools.
    if tools::require_tools().is_none() {
        return;
    }
    let stage = check_image("Dockerfile", "controllers", "capmaas-manager");
    let objects = rendered("config/default");
    let deployment = find(&objects, "Deployment", "capmaas-controller-manager");
    assert_eq!(deployment["metadata"]["namespace"], "capmaas-system");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "manager");
    assert_eq!(container["command"][0], stage.entrypoint[0].as_str());
    let uid: u64 = stage
        .user
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(
        container["resources"]["requests"].is_object()
            && container["resources"]["limits"].is_object()
    );

    // Probes and ports agree with the flags.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} is set"))
    };
    let ports = container["ports"].as_array().unwrap();
    let named = |name: &str| {
        ports.iter().find(|p| p["name"] == name).unwrap()["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        named("healthz"),
        u64::from(port_of(flag("health-probe-bind-address")))
    );
    assert_eq!(
        named("metrics"),
        u64::from(port_of(flag("metrics-bind-address")))
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "healthz");
    assert!(args.contains(&"--leader-elect"));

    // Credentials come from the clusterctl-filled Secret.
    let secret = find(&objects, "Secret", "capmaas-manager-bootstrap-credentials");
    assert_eq!(secret["stringData"]["MAAS_ENDPOINT"], "${MAAS_ENDPOINT}");
    assert_eq!(secret["stringData"]["MAAS_API_KEY"], "${MAAS_API_KEY}");
    let env: BTreeSet<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let r = &e["valueFrom"]["secretKeyRef"];
            Some((
                e["name"].as_str()?.to_string(),
                r["name"].as_str()?.to_string(),
            ))
        })
        .collect();
    for key in ["MAAS_ENDPOINT", "MAAS_API_KEY"] {
        assert!(env.contains(&(key.into(), "capmaas-manager-bootstrap-credentials".into())));
    }

    // Every object is labelled for clusterctl, nothing needs cert-manager or webhooks.
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["cluster.x-k8s.io/provider"], "infrastructure-maas",
            "{}",
            o["metadata"]["name"]
        );
        let kind = o["kind"].as_str().unwrap();
        assert!(
            !kind.contains("Webhook") && o["apiVersion"].as_str().unwrap() != "cert-manager.io/v1",
            "{kind}"
        );
    }
    assert_eq!(
        pod["serviceAccountName"],
        find(&objects, "ServiceAccount", "capmaas-manager")["metadata"]["name"]
    );
}

fn rules(role: &Value) -> Vec<(String, String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let verbs: BTreeSet<String> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.push((
                    group.as_str().unwrap().to_string(),
                    resource.as_str().unwrap().to_string(),
                    verbs.clone(),
                ));
            }
        }
    }
    out
}

fn verbs_of(
    rules: &[(String, String, BTreeSet<String>)],
    group: &str,
    resource: &str,
) -> BTreeSet<String> {
    rules
        .iter()
        .filter(|r| r.0 == group && r.1 == resource)
        .flat_map(|r| r.2.iter().cloned())
        .collect()
}

#[test]
fn rbac_is_least_privilege() {
    // kustomize comes from the tools.
    if tools::require_tools().is_none() {
        return;
    }
    let all = rendered("config/default");
    let namespaced = rendered("config/rbac/namespaced");
    let cluster_rules = rules(find(&all, "ClusterRole", "capmaas-manager-role"));
    let role_rules = rules(find(&namespaced, "Role", "capmaas-manager-role"));
    for rules in [&cluster_rules, &role_rules] {
        assert!(
            rules
                .iter()
                .all(|r| !r.2.contains("*") && r.0 != "*" && r.1 != "*"),
            "no wildcards"
        );
        assert!(
            verbs_of(rules, "", "nodes").is_empty(),
            "Nodes are patched in workload clusters only"
        );
        assert_eq!(
            verbs_of(rules, "", "secrets"),
            BTreeSet::from(["get", "list", "watch", "patch"].map(String::from)),
            "Secrets are read, and patched only for the identity Secret's finalizer: never \
             created, updated or deleted"
        );
        assert_eq!(
            verbs_of(rules, "", "configmaps"),
            BTreeSet::from(["get".to_string()]),
            "the preferred-subnet ConfigMap is read, nothing else"
        );
        for resource in ["clusters", "machines"] {
            assert_eq!(
                verbs_of(rules, "cluster.x-k8s.io", resource),
                BTreeSet::from(["get", "list", "watch"].map(String::from))
            );
        }
        assert!(
            verbs_of(
                rules,
                "infrastructure.cluster.x-k8s.io",
                "maasmachines/status"
            )
            .contains("patch")
        );
        assert!(
            !verbs_of(rules, "infrastructure.cluster.x-k8s.io", "maasmachines").contains("delete")
        );
        assert!(verbs_of(rules, "events.k8s.io", "events").contains("create"));
    }
    assert!(
        verbs_of(&cluster_rules, "coordination.k8s.io", "leases").is_empty(),
        "the Lease is namespaced"
    );
    let lease_role = rules(find(&all, "Role", "capmaas-leader-election-role"));
    assert!(verbs_of(&lease_role, "coordination.k8s.io", "leases").contains("create"));
    assert_eq!(
        find(&all, "Role", "capmaas-leader-election-role")["metadata"]["namespace"],
        "capmaas-system"
    );
    assert!(verbs_of(&role_rules, "coordination.k8s.io", "leases").contains("patch"));
    assert!(
        verbs_of(
            &cluster_rules,
            "apiextensions.k8s.io",
            "customresourcedefinitions"
        )
        .contains("get")
    );
    let reader = rules(find(&namespaced, "ClusterRole", "capmaas-crd-reader"));
    assert_eq!(
        reader.len(),
        1,
        "the namespaced mode reads CRDs and nothing else cluster-wide"
    );
}

#[test]
fn metadata_declares_the_release_series() {
    let root = tools::workspace_root();
    let metadata: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("metadata.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        metadata["apiVersion"],
        "clusterctl.cluster.x-k8s.io/v1alpha3"
    );
    assert_eq!(metadata["kind"], "Metadata");
    let version = rbac_support::workspace_version();
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap());
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    let series = metadata["releaseSeries"].as_array().unwrap();
    assert!(
        series
            .iter()
            .any(|s| s["major"] == major && s["minor"] == minor && s["contract"] == "v1beta1"),
        "a release series for {version} with contract v1beta1"
    );
}

/// `${NAME}` and `${NAME:=default}` references in a template, nested defaults
/// (`${A:=${B:=""}}`) included.
fn variables(text: &str) -> BTreeSet<String> {
    text.match_indices("${")
        .map(|(at, _)| {
            let name = &text[at + 2..];
            let end = name.find([':', '}']).unwrap();
            name[..end].to_string()
        })
        .collect()
}

/// The template with every variable reference, nested ones included, replaced by `1`.
pub(crate) fn fill(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let mut depth = 0;
        let mut end = start;
        for (i, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 && c == '}' {
                end = start + i;
                break;
            }
        }
        out.push('1');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn nested_defaults_are_read_and_filled() {
    let text = r#"pool: ${CP_POOL:=${MAAS_POOL:=""}}
tags: ${TAGS:=[${TAG:=}]}"#;
    let names: Vec<String> = variables(text).into_iter().collect();
    assert_eq!(names, ["CP_POOL", "MAAS_POOL", "TAG", "TAGS"]);
    assert_eq!(fill(text), "pool: 1\ntags: 1");
}

#[test]
fn every_template_variable_is_documented() {
    let dir = tools::workspace_root().join("templates");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("cluster-template") && name.ends_with(".yaml")) {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for var in variables(&text) {
            assert!(
                readme.contains(&format!("`{var}`")),
                "{name}: {var} is documented in templates/README.md"
            );
        }
        // Each document parses once the variables are filled with placeholders.
        let filled = fill(&text);
        assert!(manifests::parse(&filled, &path).is_ok(), "{name} is YAML");
    }
    assert_eq!(
        seen, 5,
        "default, gpu, ignition, kube-vip and topology flavours"
    );
}

#[test]
fn simulator_manifests_start_a_valid_simulator() {
    // kustomize comes from the tools.
    if tools::require_tools().is_none() {
        return;
    }
    check_image("Dockerfile.simulator", "e2e/maas-sim", "maas-sim");
    let objects = rendered("config/simulator");
    let inventory = find(&objects, "ConfigMap", "maas-sim-inventory");
    let parsed = maas_sim::inventory::Inventory::from_yaml(
        inventory["data"]["inventory.yaml"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(parsed.machines.len(), 8);
    let secret = find(&objects, "Secret", "maas-sim-api-key");
    assert_eq!(
        secret["stringData"]["api-key"]
            .as_str()
            .unwrap()
            .split(':')
            .count(),
        3,
        "consumer:token:secret"
    );
    let deployment = find(&objects, "Deployment", "maas-sim");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let cli =
        maas_sim::cli::Cli::try_parse_from(std::iter::once("maas-sim".to_string()).chain(args))
            .unwrap();
    assert_eq!(cli.listen.port(), 5240);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "inventory")
        .unwrap();
    assert!(
        cli.inventory
            .unwrap()
            .starts_with(mount["mountPath"].as_str().unwrap())
    );
    let service = find(&objects, "Service", "maas-sim");
    assert_eq!(service["spec"]["ports"][0]["port"], 5240);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

/// The markers after which a release version follows (`…:v0.1.0`, `…/v0.1.0/…`).
const VERSION_MARKERS: [&str; 5] = [
    "capmaas-manager:v",
    "releases/v",
    "maas:v",
    "infrastructure-maas/v",
    "newTag: v",
];

/// Every `<marker><version>` in `text`, with the version.
fn version_references(text: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for marker in VERSION_MARKERS {
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            // `<version>` placeholders and non-numeric tags (`dev`) are not references.
            if version.split('.').filter(|p| !p.is_empty()).count() == 3 {
                found.push((marker, version));
            }
        }
    }
    found
}

/// The files a release's version appears in: the README, the docs and the kustomize config.
fn versioned_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs"), root.join("config")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files
}

/// A version bump that misses a file fails here (docs/releasing.md relies on it).
#[test]
fn every_version_reference_is_the_workspace_version() {
    assert_eq!(
        version_references(
            "image ghcr.io/capmaas/capmaas-manager:v9.8.7, maas:v<version>, newTag: dev"
        ),
        vec![("capmaas-manager:v", "9.8.7".to_string())]
    );
    let version = rbac_support::workspace_version();
    let root = tools::workspace_root();
    let mut checked = 0;
    for path in versioned_files(&root) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (marker, found) in version_references(&text) {
            assert_eq!(
                found,
                version,
                "{} names {marker}{found}; the workspace version is {version}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} version references found");
}

/// The README's version table gives the Cluster API release the templates need: 1.11 once any
/// template uses a v1beta2 Cluster API object.
#[test]
fn the_version_table_matches_what_the_templates_need() {
    let root = tools::workspace_root();
    let mut v1beta2 = false;
    for entry in std::fs::read_dir(root.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            v1beta2 |= text.contains("apiVersion: cluster.x-k8s.io/v1beta2");
        }
    }
    let needed = if v1beta2 {
        "1.11 and later"
    } else {
        "1.9 and later"
    };
    let version = rbac_support::workspace_version();
    let series: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| {series} |")))
        .unwrap_or_else(|| panic!("no row for {series} in the README's version table"));
    let templates_cell = row.split('|').nth(4).unwrap_or_default();
    assert!(
        templates_cell.contains(needed),
        "the templates need Cluster API {needed}; the README says {templates_cell:?}"
    );
}

/// Cluster API's developer tooling finds the provider: `clusterctl-settings.json` for its
/// local-repository script, `tilt-provider.yaml` for its Tiltfile.
#[test]
fn tilt_and_clusterctl_dev_settings_name_this_provider() {
    let root = tools::workspace_root();
    let kustomization: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("config/default/kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let provider_label = &kustomization["labels"][0]["pairs"]["cluster.x-k8s.io/provider"];
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("clusterctl-settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        &settings["name"], provider_label,
        "the provider's clusterctl name"
    );
    assert_eq!(
        settings["config"]["componentsFile"], "infrastructure-components.yaml",
        "the file `make release` writes"
    );
    assert_eq!(
        settings["config"]["nextVersion"],
        format!("v{}", rbac_support::workspace_version())
    );
    assert!(root.join("metadata.yaml").is_file() && root.join("config/default").is_dir());

    let tilt: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("tilt-provider.yaml")).unwrap())
            .unwrap();
    let entry = &tilt[0];
    assert_eq!(entry["name"], "maas");
    assert_eq!(
        provider_label.as_str(),
        Some(format!("infrastructure-{}", entry["name"].as_str().unwrap()).as_str())
    );
    assert!(
        entry["config"]["label"].is_string(),
        "Tilt groups resources by label"
    );
    // With an image, Cluster API's Tiltfile runs `go build` on the repository.
    assert!(
        entry["config"].get("image").is_none(),
        "no Go build asked of Tilt"
    );
}
