//! What the client puts on the wire: paths, methods, `op`, query and form encoding, and the
//! OAuth header.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use maas_client::{
    AllocateParams, DeployParams, DnsResourceFilter, DnsResourceParams, MaasApi, MachineFilter,
    MachineStatus, Pairs, ReleaseParams, RetryConfig,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn every_request_has_a_plaintext_header_with_a_fresh_nonce() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/MAAS/api/2.0/version/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "version": "3.5.1", "subversion": "x", "capabilities": ["networks-management"]
        })))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());
    for _ in 0..3 {
        let version = client.version().await.unwrap();
        assert_eq!(version.version, "3.5.1");
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let mut nonces = BTreeSet::new();
    for request in &requests {
        let header = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        let p = oauth_params(header);
        assert_eq!(p["oauth_version"], "1.0");
        assert_eq!(p["oauth_signature_method"], "PLAINTEXT");
        assert_eq!(p["oauth_consumer_key"], "consumerKEY");
        assert_eq!(p["oauth_token"], "tokenKEY");
        assert_eq!(p["oauth_signature"], "%26tokenSECRET");
        assert!(p["oauth_timestamp"].parse::<u64>().unwrap() > 1_600_000_000);
        nonces.insert(p["oauth_nonce"].clone());
    }
    assert_eq!(nonces.len(), 3, "nonces must differ per request");
}

#[tokio::test]
async fn allocate_is_a_post_with_op_in_the_query_and_repeated_form_keys() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/MAAS/api/2.0/machines/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine_json("abc123", 10)))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());
    let machine = client
        .allocate(&AllocateParams {
            cpu_count: Some(2),
            mem: Some(4096),
            tags: vec!["gpu".into(), "nvme".into()],
            not_tags: vec!["slow".into()],
            zone: Some("az1".into()),
            agent_name: Some("capmaas:uid-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(machine.system_id, "abc123");
    assert_eq!(machine.status, MachineStatus::Allocated);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url.path(), "/MAAS/api/2.0/machines/");
    assert_eq!(query_pairs(&request.url), pairs(&[("op", "allocate")]));
    assert_eq!(
        request
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        form_pairs(&request.body),
        pairs(&[
            ("cpu_count", "2"),
            ("mem", "4096"),
            ("tags", "gpu"),
            ("tags", "nvme"),
            ("not_tags", "slow"),
            ("zone", "az1"),
            ("agent_name", "capmaas:uid-1"),
        ])
    );
}

#[tokio::test]
async fn machine_actions_use_the_machine_path_with_trailing_slash() {
    let server = MockServer::start().await;
    Mock::given(path("/MAAS/api/2.0/machines/abc123/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine_json("abc123", 9)))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());

    client
        .deploy(
            "abc123",
            &DeployParams {
                distro_series: Some("jammy".into()),
                user_data: Some(b"#cloud-config\n".to_vec()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .release(
            "abc123",
            &ReleaseParams {
                erase: true,
                quick_erase: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let data: BTreeMap<String, String> = [
        ("capmaas-uid".to_owned(), "u1".to_owned()),
        ("old".to_owned(), String::new()),
    ]
    .into();
    client.set_owner_data("abc123", &data).await.unwrap();
    client.power_on("abc123").await.unwrap();
    client.power_off("abc123").await.unwrap();
    client.abort("abc123", Some("stop")).await.unwrap();
    client.mark_broken("abc123", None).await.unwrap();
    client.read_machine("abc123").await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let seen: Vec<(String, Pairs, Pairs)> = requests
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                query_pairs(&r.url),
                form_pairs(&r.body),
            )
        })
        .collect();
    let expected = vec![
        (
            "POST",
            vec![("op", "deploy")],
            vec![
                ("distro_series", "jammy"),
                ("user_data", "I2Nsb3VkLWNvbmZpZwo="),
            ],
        ),
        (
            "POST",
            vec![("op", "release")],
            vec![("erase", "true"), ("quick_erase", "true")],
        ),
        (
            "POST",
            vec![("op", "set_owner_data")],
            vec![("capmaas-uid", "u1"), ("old", "")],
        ),
        ("POST", vec![("op", "power_on")], vec![]),
        ("POST", vec![("op", "power_off")], vec![]),
        ("POST", vec![("op", "abort")], vec![("comment", "stop")]),
        ("POST", vec![("op", "mark_broken")], vec![]),
        ("GET", vec![], vec![]),
    ];
    assert_eq!(seen.len(), expected.len());
    for (got, (m, q, f)) in seen.iter().zip(expected) {
        assert_eq!(got.0, m);
        assert_eq!(got.1, pairs(&q));
        assert_eq!(got.2, pairs(&f));
    }
    for request in &requests {
        assert!(request.url.path().ends_with('/'));
        let content_type = request
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_ne!(content_type.as_deref(), Some("application/json"));
    }
}

#[tokio::test]
async fn list_filters_and_power_query_are_gets_with_repeated_query_keys() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/MAAS/api/2.0/machines/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([machine_json("a", 6), machine_json("b", 9)])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/MAAS/api/2.0/machines/a/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"state": "on"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/MAAS/api/2.0/nodes/a/devices/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 1, "system_id": "a", "hardware_type": 3, "hardware_type_name": "GPU",
            "vendor_id": "10de", "product_id": "2330", "vendor_name": "NVIDIA Corporation",
            "product_name": "H100", "pci_address": "0000:3b:00.0", "numa_node": 1
        }])))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());

    let machines = client
        .list_machines(&MachineFilter {
            id: vec!["a".into(), "b".into()],
            tags: vec!["t1".into(), "t2".into()],
            status: Some(MachineStatus::Deploying),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(machines.len(), 2);
    assert_eq!(machines[1].status, MachineStatus::Deploying);
    let state = client.query_power_state("a").await.unwrap();
    assert_eq!(state, maas_client::PowerState::On);
    let gpus = client.node_devices("a", Some("gpu")).await.unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0].numa_node, Some(1));

    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        query_pairs(&requests[0].url),
        pairs(&[
            ("id", "a"),
            ("id", "b"),
            ("tags", "t1"),
            ("tags", "t2"),
            ("status", "deploying")
        ])
    );
    assert!(requests[0].body.is_empty());
    assert_eq!(
        query_pairs(&requests[1].url),
        pairs(&[("op", "query_power_state")])
    );
    assert_eq!(
        query_pairs(&requests[2].url),
        pairs(&[("hardware_type", "gpu")])
    );
}

#[tokio::test]
async fn dns_resources_create_update_delete() {
    let server = MockServer::start().await;
    let resource = json!({"id": 7, "fqdn": "c1-ab12.maas", "address_ttl": 10,
                          "ip_addresses": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}]});
    Mock::given(method("GET"))
        .and(path("/MAAS/api/2.0/dnsresources/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([resource.clone()])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/MAAS/api/2.0/dnsresources/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(resource.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/MAAS/api/2.0/dnsresources/7/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(resource.clone()))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/MAAS/api/2.0/dnsresources/7/"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());

    let listed = client
        .list_dns_resources(&DnsResourceFilter {
            domain: Some("maas".into()),
            name: Some("c1-ab12".into()),
        })
        .await
        .unwrap();
    assert_eq!(listed[0].ip_addresses, vec!["10.0.0.5", "10.0.0.6"]);
    let created = client
        .create_dns_resource(&DnsResourceParams {
            fqdn: Some("c1-ab12.maas".into()),
            ip_addresses: Some(vec!["10.0.0.5".into(), "10.0.0.6".into()]),
            address_ttl: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(created.id, Some(7));
    client
        .update_dns_resource(
            7,
            &DnsResourceParams {
                ip_addresses: Some(vec!["10.0.0.7".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.delete_dns_resource(7).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        query_pairs(&requests[0].url),
        pairs(&[("domain", "maas"), ("name", "c1-ab12")])
    );
    assert_eq!(
        form_pairs(&requests[1].body),
        pairs(&[
            ("fqdn", "c1-ab12.maas"),
            ("ip_addresses", "10.0.0.5 10.0.0.6"),
            ("address_ttl", "10")
        ])
    );
    assert_eq!(requests[2].method.as_str(), "PUT");
    assert_eq!(
        form_pairs(&requests[2].body),
        pairs(&[("ip_addresses", "10.0.0.7")])
    );
    assert_eq!(requests[3].method.as_str(), "DELETE");
    assert!(requests[3].body.is_empty());
}

#[tokio::test]
async fn inventory_lists() {
    let server = MockServer::start().await;
    for (p, body) in [
        (
            "/MAAS/api/2.0/zones/",
            json!([{"id": 1, "name": "az1", "description": ""}]),
        ),
        (
            "/MAAS/api/2.0/resourcepools/",
            json!([{"id": 0, "name": "default"}]),
        ),
        (
            "/MAAS/api/2.0/tags/",
            json!([{"name": "gpu", "definition": "", "comment": "", "kernel_opts": null}]),
        ),
        (
            "/MAAS/api/2.0/domains/",
            json!([{"id": 0, "name": "maas", "is_default": true, "ttl": null}]),
        ),
        (
            "/MAAS/api/2.0/boot-resources/",
            json!([{"id": 1, "type": "Synced", "name": "ubuntu/jammy", "architecture": "amd64/ga-22.04"}]),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let client = client_for(&format!("{}/", server.uri()), RetryConfig::none());
    assert_eq!(client.zones().await.unwrap()[0].name, "az1");
    assert_eq!(client.resource_pools().await.unwrap()[0].name, "default");
    assert_eq!(client.tags().await.unwrap()[0].name, "gpu");
    assert!(client.domains().await.unwrap()[0].is_default);
    assert_eq!(client.boot_resources().await.unwrap()[0].kind, "Synced");
}

#[tokio::test]
async fn operations_run_from_spawned_tasks() {
    let server = MockServer::start().await;
    Mock::given(path("/MAAS/api/2.0/machines/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), RetryConfig::none());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_machines(&MachineFilter::default()).await })
        })
        .collect();
    for handle in handles {
        assert!(handle.await.unwrap().unwrap().is_empty());
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}
