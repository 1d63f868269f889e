//! Deleting a whole namespace, as a user tidying up does: everything in it goes at once,
//! the identity Secret with the MAAS credentials included. The Secret's finalizer keeps the
//! credentials until the MaasCluster is done, so the machines are released with them, the
//! namespace finishes deleting, and nothing is left allocated in MAAS.

use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject};

const NS: &str = "namespace-deletion";
const LIMIT: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(500);
const FINALIZER: &str = "infrastructure.cluster.x-k8s.io/maas-identity-in-use";

fn manifest(endpoint: &str, api_key: &str) -> String {
    let credentials = format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: maas-credentials
stringData:
  MAAS_ENDPOINT: "{endpoint}"
  MAAS_API_KEY: "{api_key}"
"#
    );
    credentials
        + &cluster_yaml::cluster("tidy", Some("maas-credentials"))
        + &cluster_yaml::worker("tidy", "tidy-0", 1)
}

fn held(env: &Env) -> usize {
    env.sim
        .state()
        .machines
        .iter()
        .filter(|m| m.owner.is_some())
        .count()
}

async fn scenario(env: &Env) -> Result<(), HarnessError> {
    env.namespace(NS).await?;
    let text = manifest(&env.sim.url(), env.sim.api_key());
    let objects = manifests::parse(&text, std::path::Path::new("namespace_deletion.yaml"))?;
    manifests::apply_all(&env.client, NS, &objects).await?;
    let maas_machines: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), NS, &observe::maas_machines_resource());
    wait_for("the MaasMachine to be ready", POLL, LIMIT, || async {
        let mm = maas_machines.get_opt("tidy-0").await?;
        let ready = mm.and_then(|m| m.data["status"]["ready"].as_bool()) == Some(true);
        Ok((ready.then_some(()), format!("ready: {ready}")))
    })
    .await?;
    assert_eq!(held(env), 1);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let finalizers = secrets.get("maas-credentials").await?.metadata.finalizers;
    assert!(
        finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == FINALIZER),
        "the identity Secret is protected while its MaasCluster lives"
    );

    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces.delete(NS, &DeleteParams::default()).await?;
    wait_for("the namespace to finish deleting", POLL, LIMIT, || async {
        let left = namespaces.get_opt(NS).await?;
        let machines = held(env);
        Ok((
            left.is_none().then_some(()),
            format!(
                "namespace present: {}, machines held: {machines}",
                left.is_some()
            ),
        ))
    })
    .await?;
    assert_eq!(
        held(env),
        0,
        "every machine was released with the cluster's credentials"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_the_namespace_releases_every_machine_with_the_clusters_own_credentials() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            machines: 2,
            gpu_machines: 0,
            manager_args: vec!["--orphan-sweep-interval=0".to_string()],
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let result = scenario(&env).await;
    if let Err(e) = &result {
        env.print_logs(60);
        env.stop().await;
        panic!("{e}");
    }
    env.stop().await;
}
