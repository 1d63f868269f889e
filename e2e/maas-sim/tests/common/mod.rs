//! Test helpers: a raw MAAS client that signs its own requests (PLAINTEXT or HMAC-SHA1), so the
//! tests see exactly what goes over the wire.

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use maas_sim::{SimConfig, SimHandle, Simulator};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sha1::Sha1;

const OAUTH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, OAUTH).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Plaintext,
    HmacSha1,
}

/// A raw signed client.
#[derive(Clone)]
pub struct Raw {
    pub base: String,
    pub consumer: String,
    pub token: String,
    pub secret: String,
    pub signing: Signing,
    pub http: reqwest::Client,
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub fn fresh_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ) + &uuid_like()
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("-{t:x}")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Raw {
    pub fn new(sim: &SimHandle) -> Self {
        Self::with_key(sim, sim.api_key())
    }

    pub fn with_key(sim: &SimHandle, key: &str) -> Self {
        let parts: Vec<&str> = key.split(':').collect();
        Self {
            base: format!("http://{}", sim.addr()),
            consumer: parts[0].to_string(),
            token: parts[1].to_string(),
            secret: parts[2].to_string(),
            signing: Signing::Plaintext,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn hmac(mut self) -> Self {
        self.signing = Signing::HmacSha1;
        self
    }

    /// The Authorization header for a request; `params` are the query and form parameters.
    pub fn auth_header(
        &self,
        method: &str,
        url: &str,
        params: &[(String, String)],
        nonce: &str,
        ts: i64,
    ) -> String {
        let mut oauth = vec![
            ("oauth_consumer_key".to_string(), self.consumer.clone()),
            ("oauth_token".to_string(), self.token.clone()),
            ("oauth_nonce".to_string(), nonce.to_string()),
            ("oauth_timestamp".to_string(), ts.to_string()),
            ("oauth_version".to_string(), "1.0".to_string()),
        ];
        let signature = match self.signing {
            Signing::Plaintext => {
                oauth.push(("oauth_signature_method".into(), "PLAINTEXT".into()));
                format!("&{}", enc(&self.secret))
            }
            Signing::HmacSha1 => {
                oauth.push(("oauth_signature_method".into(), "HMAC-SHA1".into()));
                let mut all: Vec<(String, String)> = params
                    .iter()
                    .chain(oauth.iter())
                    .map(|(k, v)| (enc(k), enc(v)))
                    .collect();
                all.sort();
                let normalized: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let base = format!("{}&{}&{}", method, enc(url), enc(&normalized.join("&")));
                let mut mac =
                    Hmac::<Sha1>::new_from_slice(format!("&{}", enc(&self.secret)).as_bytes())
                        .unwrap();
                mac.update(base.as_bytes());
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }
        };
        oauth.push(("oauth_signature".into(), signature));
        let fields: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", enc(v)))
            .collect();
        format!("OAuth realm=\"\", {}", fields.join(", "))
    }

    /// Sends a request to `path` (below /MAAS/api/2.0/) with query pairs and a form body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Resp {
        self.send_with(method, path, query, form, &fresh_nonce(), now())
            .await
    }

    /// Sends a form, signing the query with or without the form (MAAS signs a POST's form
    /// body but not a PUT's).
    pub async fn send_signing(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        form: &[(&str, &str)],
        sign_form: bool,
    ) -> Resp {
        let url = format!("{}/MAAS/api/2.0/{path}", self.base);
        let mut params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if sign_form {
            params.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        }
        let header = self.auth_header(method, &url, &params, &fresh_nonce(), now());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self
            .http
            .request(m, &url)
            .query(query)
            .header("Authorization", header)
            .form(form);
        finish(req).await
    }

    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
        nonce: &str,
        ts: i64,
    ) -> Resp {
        let url = format!("{}/MAAS/api/2.0/{path}", self.base);
        let mut params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(form) = form {
            params.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        }
        let header = self.auth_header(method, &url, &params, nonce, ts);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, &url).header("Authorization", header);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(form) = form {
            req = req.form(form);
        }
        finish(req).await
    }

    /// Sends a raw body with a given content type (signed over the query only).
    pub async fn send_body(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
        body: String,
    ) -> Resp {
        let url = format!("{}/MAAS/api/2.0/{path}", self.base);
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let header = self.auth_header(method, &url, &params, &fresh_nonce(), now());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self
            .http
            .request(m, &url)
            .query(query)
            .header("Authorization", header)
            .header("Content-Type", content_type)
            .body(body);
        finish(req).await
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send("GET", path, query, None).await
    }

    pub async fn post(&self, path: &str, op: &str, form: &[(&str, &str)]) -> Resp {
        self.send("POST", path, &[("op", op)], Some(form)).await
    }

    pub async fn allocate(&self, form: &[(&str, &str)]) -> Resp {
        self.post("machines/", "allocate", form).await
    }

    pub async fn machine(&self, id: &str) -> Value {
        let r = self.get(&format!("machines/{id}/"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// Polls a machine until its status name is `want` (bounded by a count of polls).
    pub async fn wait_status(&self, id: &str, want: &str) -> Value {
        for _ in 0..400 {
            let m = self.machine(id).await;
            if m["status_name"] == want {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("machine {id} never reached {want}");
    }
}

async fn finish(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Resp {
        status,
        headers,
        text,
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config).await.unwrap()
}

pub async fn start_default() -> SimHandle {
    start(SimConfig {
        machines: 8,
        gpu_machines: 2,
        ..Default::default()
    })
    .await
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}
