//! Installing CustomResourceDefinitions and waiting until the API server serves them.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::error::HarnessError;

/// Field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "capmaas-e2e";

/// Every CRD in the YAML files of `dir` (multi-document files allowed).
pub fn read_dir(dir: &Path) -> Result<Vec<CustomResourceDefinition>, HarnessError> {
    let mut crds = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(HarnessError::io("reading", dir))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        crds.extend(read_file(&path)?);
    }
    Ok(crds)
}

/// Every CRD in one YAML file.
pub fn read_file(path: &Path) -> Result<Vec<CustomResourceDefinition>, HarnessError> {
    let text = std::fs::read_to_string(path).map_err(HarnessError::io("reading", path))?;
    // Empty documents (a leading `---`, comments only) are skipped.
    serde_saphyr::from_multiple(&text).map_err(|e| HarnessError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Applies the CRDs (server-side) and waits until each is Established.
pub async fn install(
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
) -> Result<(), HarnessError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut crd = crd.clone();
        crd.metadata.resource_version = None;
        api.patch(&name, &params, &Patch::Apply(&crd)).await?;
    }
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_established(&api, &name).await?;
    }
    Ok(())
}

async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
) -> Result<(), HarnessError> {
    for _ in 0..300 {
        let crd = api.get(name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(HarnessError::Timeout(format!(
        "CRD {name} to be Established"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_checked_in_crds_are_read() {
        let dir = crate::harness::tools::workspace_root().join("config/crd/bases");
        let crds = read_dir(&dir).unwrap();
        let mut kinds: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "MaasCluster",
                "MaasClusterTemplate",
                "MaasMachine",
                "MaasMachineTemplate"
            ]
        );
    }
}
