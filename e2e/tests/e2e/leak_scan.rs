//! The scan every end-to-end test ends with finds what it looks for: a MAAS API key and a join
//! token from a bootstrap Secret, planted in an event, are reported (by kind and place, never by
//! value), and nothing is reported once the event is gone.

use capmaas_e2e::harness::{EnvOptions, TestEnv};
use k8s_openapi::api::core::v1::{Event, ObjectReference, Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

const NS: &str = "leak-scan";
const TOKEN: &str = "abcdef.0123456789abcdef";

#[tokio::test]
async fn planted_secrets_are_found_by_the_scan() {
    let Some(env) = TestEnv::shared(
        NS,
        EnvOptions {
            start_manager: false,
            machines: 1,
            gpu_machines: 0,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.namespace(NS).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let bootstrap = Secret {
        metadata: ObjectMeta {
            name: Some("planted-bootstrap".into()),
            ..Default::default()
        },
        type_: Some("cluster.x-k8s.io/secret".into()),
        string_data: Some(
            [(
                "value".to_string(),
                format!("#cloud-config\nruncmd: [kubeadm join --token {TOKEN}]\n"),
            )]
            .into(),
        ),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &bootstrap)
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(env.client.clone(), NS);
    let planted = Event {
        metadata: ObjectMeta {
            name: Some("planted".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Secret".into()),
            name: Some("planted-bootstrap".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        message: Some(format!("using {} and {TOKEN}", env.sim.api_key())),
        ..Default::default()
    };
    events
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();

    let found = env.secret_leaks(&[]).await.unwrap();
    assert!(
        found.contains(&"MAAS API key found in an event".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"bootstrap token found in an event".to_string()),
        "{found:?}"
    );
    assert!(
        found.iter().all(|f| !f.contains(TOKEN)),
        "the report holds no value"
    );

    events
        .delete("planted", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(env.secret_leaks(&[]).await.unwrap(), Vec::<String>::new());
    env.stop().await;
}
