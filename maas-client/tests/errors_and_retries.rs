//! How HTTP answers and transport failures become `MaasError`s, and how retries behave:
//! only retryable failures are retried, `Retry-After` is honoured, attempts are bounded, and every
//! attempt is signed with a fresh nonce and counted by the observer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use maas_client::{
    AllocateParams, MaasApi, MaasClient, MaasConfig, MaasError, Operation, RetryConfig,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MACHINE: &str = "/MAAS/api/2.0/machines/abc/";
const MACHINES: &str = "/MAAS/api/2.0/machines/";

async fn one_answer(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MACHINE))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn read_error(template: ResponseTemplate) -> (MaasError, usize) {
    let server = one_answer(template).await;
    let client = client_for(&server.uri(), fast_retry(3));
    let err = client.read_machine("abc").await.unwrap_err();
    let attempts = server.received_requests().await.unwrap().len();
    (err, attempts)
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let (err, attempts) = read_error(
        ResponseTemplate::new(404).set_body_string("No Machine matches the given query."),
    )
    .await;
    assert!(
        matches!(&err, MaasError::NotFound { op: Operation::ReadMachine, message }
        if message == "No Machine matches the given query.")
    );
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn business_conflict_is_not_retried() {
    let (err, attempts) = read_error(
        ResponseTemplate::new(409)
            .set_body_string("Can't deploy a machine that is in the 'Deployed' state"),
    )
    .await;
    assert_eq!(err.kind(), "conflict");
    assert!(err.to_string().contains("'Deployed' state"));
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn bad_request_carries_field_messages() {
    let (err, attempts) = read_error(
        ResponseTemplate::new(400)
            .insert_header("content-type", "application/json")
            .set_body_string(r#"{"gpu_count": ["No such constraint."]}"#),
    )
    .await;
    match err {
        MaasError::BadRequest { fields, .. } => {
            assert_eq!(fields["gpu_count"], vec!["No such constraint.".to_owned()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn bad_request_text() {
    let (err, _) = read_error(
        ResponseTemplate::new(400).set_body_string("Unrecognised signature: method=GET op=deploy"),
    )
    .await;
    match err {
        MaasError::BadRequest {
            fields, message, ..
        } => {
            assert!(fields.is_empty());
            assert_eq!(message, "Unrecognised signature: method=GET op=deploy");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn auth_errors() {
    let (err, attempts) = read_error(
        ResponseTemplate::new(401).set_body_string("Authorization Error: Invalid API key."),
    )
    .await;
    assert_eq!(err.kind(), "unauthorized");
    assert!(err.to_string().contains("Invalid API key"));
    assert_eq!(attempts, 1);
    let (err, _) = read_error(ResponseTemplate::new(403).set_body_string("nope")).await;
    assert_eq!(err.kind(), "forbidden");
}

#[tokio::test]
async fn other_statuses_are_unexpected_with_an_excerpt() {
    let (err, attempts) =
        read_error(ResponseTemplate::new(500).set_body_string("x".repeat(5000))).await;
    match err {
        MaasError::Unexpected { status, body, .. } => {
            assert_eq!(status, 500);
            assert!(body.chars().count() < 600);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (err, attempts) = read_error(
        ResponseTemplate::new(301).insert_header("location", "/MAAS/api/2.0/machines/abc"),
    )
    .await;
    assert!(matches!(err, MaasError::Unexpected { status: 301, .. }));
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn undecodable_success_is_a_decode_error() {
    let (err, _) = read_error(ResponseTemplate::new(200).set_body_string("<html>")).await;
    assert_eq!(err.kind(), "decode");
}

#[tokio::test]
async fn conflict_with_retry_after_is_retried_then_succeeds_with_fresh_nonces() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MACHINES))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("retry-after", "1")
                .set_body_string("Machine is busy"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MACHINES))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine_json("abc", 10)))
        .mount(&server)
        .await;
    let (client, recorder) = recorded_client(&server.uri(), fast_retry(3));
    let machine = client.allocate(&AllocateParams::default()).await.unwrap();
    assert_eq!(machine.system_id, "abc");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let nonces: BTreeSet<String> = requests
        .iter()
        .map(|r| {
            oauth_params(r.headers.get("authorization").unwrap().to_str().unwrap())["oauth_nonce"]
                .clone()
        })
        .collect();
    assert_eq!(nonces.len(), 2, "a retry must be signed with a new nonce");
    assert_eq!(
        recorder.seen(),
        vec![
            (Operation::Allocate, "409".to_owned()),
            (Operation::Allocate, "200".to_owned())
        ]
    );
}

#[tokio::test]
async fn service_unavailable_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MACHINE))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MACHINE))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine_json("abc", 6)))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), fast_retry(4));
    assert_eq!(client.read_machine("abc").await.unwrap().system_id, "abc");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded_by_attempts() {
    let (err, attempts) = read_error(ResponseTemplate::new(503).set_body_string("down")).await;
    assert!(err.is_retryable());
    assert_eq!(err.kind(), "retryable");
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_total_delay_bound_gives_up_at_once() {
    let server = one_answer(ResponseTemplate::new(503).insert_header("retry-after", "3600")).await;
    let client = client_for(&server.uri(), fast_retry(5));
    let err = client.read_machine("abc").await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn timeouts_are_retryable_and_counted() {
    let server = one_answer(
        ResponseTemplate::new(200)
            .set_body_json(json!({}))
            .set_delay(Duration::from_secs(5)),
    )
    .await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let client = MaasClient::new(
        MaasConfig::new(format!("{}/MAAS", server.uri()), KEY)
            .with_retry(fast_retry(2))
            .with_request_timeout(Duration::from_millis(200)),
    )
    .unwrap()
    .with_observer(recorder.clone());
    let err = client.read_machine("abc").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        recorder.seen(),
        vec![(Operation::ReadMachine, "timeout".to_owned()); 2]
    );
}

#[tokio::test]
async fn connection_refused_is_retryable_and_bounded() {
    // Take a free port, then close it so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (client, recorder) = recorded_client(&format!("http://{addr}"), fast_retry(3));
    let err = client.version().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        recorder.seen(),
        vec![(Operation::Version, "connect_error".to_owned()); 3]
    );
}

#[tokio::test]
async fn a_single_attempt_config_never_retries() {
    let server = one_answer(ResponseTemplate::new(503)).await;
    let client = client_for(&server.uri(), RetryConfig::none());
    assert!(client.read_machine("abc").await.unwrap_err().is_retryable());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn malformed_key_is_refused_at_construction_without_echoing_it() {
    let err =
        MaasClient::new(MaasConfig::new("http://maas:5240/MAAS", "abc:sup3rsecret")).unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), "config");
    assert!(
        message.contains("consumer_key:token_key:token_secret"),
        "{message}"
    );
    assert!(!message.contains("sup3rsecret"), "{message}");
}

#[test]
fn config_debug_hides_the_key() {
    let config = MaasConfig::new("http://maas:5240/MAAS", "ck:tk:sup3rsecret");
    assert!(!format!("{config:?}").contains("sup3rsecret"));
    let client = MaasClient::new(config).unwrap();
    assert!(!format!("{client:?}").contains("sup3rsecret"));
    assert_eq!(client.base_url().as_str(), "http://maas:5240/MAAS/api/2.0/");
}

#[tokio::test]
async fn a_closure_can_be_the_observer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = one_answer(
        ResponseTemplate::new(404).set_body_string("No Machine matches the given query."),
    )
    .await;
    let not_found = Arc::new(AtomicUsize::new(0));
    let counter = not_found.clone();
    let client = client_for(&server.uri(), RetryConfig::none()).with_observer(Arc::new(
        move |op: Operation, outcome: &str| {
            if op == Operation::ReadMachine && outcome == "404" {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        },
    ));
    assert_eq!(
        client.read_machine("abc").await.unwrap_err().kind(),
        "not_found"
    );
    assert_eq!(
        client.read_machine("abc").await.unwrap_err().kind(),
        "not_found"
    );
    assert_eq!(not_found.load(Ordering::SeqCst), 2);
}
