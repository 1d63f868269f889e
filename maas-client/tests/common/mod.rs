//! Helpers shared by the HTTP-level tests: a client aimed at a mock server, a recording
//! observer, and a small machine object written for these tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maas_client::{MaasClient, MaasConfig, Operation, RequestObserver, RetryConfig};
use serde_json::{Value, json};

pub const KEY: &str = "consumerKEY:tokenKEY:tokenSECRET";

/// Fast retries so tests that retry stay quick; attempt counts are what tests assert.
pub fn fast_retry(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total_delay: Duration::from_secs(5),
    }
}

pub fn client_for(uri: &str, retry: RetryConfig) -> MaasClient {
    let config = MaasConfig::new(format!("{uri}/MAAS"), KEY).with_retry(retry);
    MaasClient::new(config).unwrap()
}

/// Records every `(op, outcome)` the client reports.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<(Operation, String)>>);

impl Recorder {
    pub fn seen(&self) -> Vec<(Operation, String)> {
        self.0.lock().unwrap().clone()
    }
}

impl RequestObserver for Recorder {
    fn observe(&self, op: Operation, outcome: &str) {
        self.0.lock().unwrap().push((op, outcome.to_owned()));
    }
}

pub fn recorded_client(uri: &str, retry: RetryConfig) -> (MaasClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = client_for(uri, retry).with_observer(recorder.clone());
    (client, recorder)
}

pub fn machine_json(system_id: &str, status: i64) -> Value {
    json!({
        "system_id": system_id,
        "hostname": format!("host-{system_id}"),
        "fqdn": format!("host-{system_id}.maas"),
        "status": status,
        "status_name": "whatever",
        "power_state": "off",
        "cpu_count": 4,
        "memory": 8192,
        "storage": 256000.0,
        "zone": {"name": "az1"},
        "pool": {"name": "default"},
        "tag_names": [],
        "ip_addresses": [],
        "owner": null,
        "owner_data": {},
        "hardware_info": {},
    })
}

/// The parameters of an OAuth `Authorization` header.
pub fn oauth_params(header: &str) -> BTreeMap<String, String> {
    header
        .strip_prefix("OAuth ")
        .expect("OAuth scheme")
        .split(',')
        .map(|pair| {
            let (k, v) = pair.trim().split_once('=').expect("key=value");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

/// Decodes a form body into ordered pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Decodes a URL query into ordered pairs.
pub fn query_pairs(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
