//! OAuth 1.0 verification as MAAS does it: PLAINTEXT and HMAC-SHA1 signatures, a 300-second
//! timestamp window and nonce replay detection. The checks run in MAAS's order (key, timestamp,
//! nonce, signature) and answer with MAAS's texts.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;

/// Seconds a timestamp may differ from the server clock.
pub const TIMESTAMP_THRESHOLD: i64 = 300;

/// RFC 3986 unreserved characters stay; everything else is escaped (OAuth's encoding).
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// OAuth percent-encoding.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH_ENCODE).to_string()
}

/// The parameters of an `Authorization: OAuth ...` header, decoded; `None` when the header is
/// not OAuth.
pub fn parse_header(value: &str) -> Option<BTreeMap<String, String>> {
    let rest = value.trim().strip_prefix("OAuth")?.trim_start();
    let mut out = BTreeMap::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"');
        let decoded = percent_decode_str(v).decode_utf8_lossy().into_owned();
        out.insert(k.trim().to_string(), decoded);
    }
    Some(out)
}

/// The request facts a signature covers.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// `scheme://host[:port]/path` as the client addressed it.
    pub base_url: &'a str,
    /// Query parameters plus form-urlencoded body parameters (not multipart).
    pub params: &'a [(String, String)],
}

/// The OAuth signature base string: method, URL and sorted, encoded parameters (oauth_* from
/// the header included, the signature and realm excluded).
pub fn signature_base_string(req: &SignedRequest<'_>, oauth: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(String, String)> = req
        .params
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .chain(
            oauth
                .iter()
                .filter(|(k, _)| k.as_str() != "oauth_signature" && k.as_str() != "realm")
                .map(|(k, v)| (encode(k), encode(v))),
        )
        .collect();
    pairs.sort();
    let normalized: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}&{}&{}",
        req.method.to_ascii_uppercase(),
        encode(req.base_url),
        encode(&normalized.join("&"))
    )
}

/// HMAC-SHA1 signature (base64) with the empty consumer secret MAAS keys have.
pub fn hmac_sha1_signature(base: &str, token_secret: &str) -> String {
    let key = format!("&{}", encode(token_secret));
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An authenticated caller's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Consumer key.
    pub consumer_key: String,
    /// Token key.
    pub token_key: String,
    /// Token secret.
    pub token_secret: String,
    /// The user it belongs to.
    pub username: String,
}

/// Why a request was refused; `to_string` is MAAS's 401 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No OAuth header at all.
    #[error("Authorization Error: Missing OAuth credentials")]
    Missing,
    /// Unknown consumer or token.
    #[error("Authorization Error: Invalid API key.")]
    InvalidKey,
    /// A required parameter is absent.
    #[error("Authorization Error: 'Parameter not found: {0}'")]
    MissingParam(&'static str),
    /// Timestamp outside the window.
    #[error(
        "Authorization Error: 'Expired timestamp: given {given} and now {now} has a greater difference than threshold {TIMESTAMP_THRESHOLD}'"
    )]
    Expired {
        /// The client's timestamp.
        given: i64,
        /// The server's clock.
        now: i64,
    },
    /// Nonce seen before.
    #[error("Authorization Error: 'Nonce already used: {0}'")]
    NonceUsed(String),
    /// Unsupported signature method.
    #[error(
        "Authorization Error: 'Signature method {0} not supported try one of the following: HMAC-SHA1,PLAINTEXT'"
    )]
    Method(String),
    /// Wrong signature.
    #[error("Authorization Error: 'Invalid signature.'")]
    BadSignature,
}

/// Remembered nonces, per consumer and token, with the timestamp they came with. Nonces whose
/// timestamp left the window are forgotten: a replay of them fails the timestamp check anyway.
#[derive(Debug, Default)]
pub struct NonceStore {
    seen: HashMap<(String, String, String), i64>,
    inserts_since_prune: usize,
}

/// How many insertions between two prunings.
const PRUNE_EVERY: usize = 10_000;

impl NonceStore {
    /// Records a nonce seen with timestamp `ts` at server time `now`; false when it was
    /// already used.
    pub fn record(&mut self, consumer: &str, token: &str, nonce: &str, ts: i64, now: i64) -> bool {
        let key = (consumer.to_string(), token.to_string(), nonce.to_string());
        if self.seen.contains_key(&key) {
            return false;
        }
        self.inserts_since_prune += 1;
        if self.inserts_since_prune >= PRUNE_EVERY {
            self.inserts_since_prune = 0;
            self.seen
                .retain(|_, seen_ts| (now - *seen_ts).abs() <= TIMESTAMP_THRESHOLD);
        }
        self.seen.insert(key, ts);
        true
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Verifies a request's OAuth header against the known keys.
pub fn verify(
    header: Option<&str>,
    req: &SignedRequest<'_>,
    keys: &[Credentials],
    nonces: &mut NonceStore,
    now: i64,
) -> Result<Credentials, AuthError> {
    let oauth = header.and_then(parse_header).ok_or(AuthError::Missing)?;
    let consumer = oauth
        .get("oauth_consumer_key")
        .ok_or(AuthError::InvalidKey)?;
    let token = oauth.get("oauth_token").ok_or(AuthError::InvalidKey)?;
    let creds = keys
        .iter()
        .find(|k| &k.consumer_key == consumer && &k.token_key == token)
        .ok_or(AuthError::InvalidKey)?;
    let timestamp = oauth
        .get("oauth_timestamp")
        .ok_or(AuthError::MissingParam("oauth_timestamp"))?;
    let nonce = oauth
        .get("oauth_nonce")
        .ok_or(AuthError::MissingParam("oauth_nonce"))?;
    let given: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| AuthError::MissingParam("oauth_timestamp"))?;
    if (now - given).abs() > TIMESTAMP_THRESHOLD {
        return Err(AuthError::Expired { given, now });
    }
    if !nonces.record(consumer, token, nonce, given, now) {
        return Err(AuthError::NonceUsed(nonce.clone()));
    }
    let method = oauth
        .get("oauth_signature_method")
        .map(String::as_str)
        .unwrap_or("PLAINTEXT");
    let signature = oauth
        .get("oauth_signature")
        .ok_or(AuthError::MissingParam("oauth_signature"))?;
    let ok = match method {
        "PLAINTEXT" => *signature == format!("&{}", encode(&creds.token_secret)),
        "HMAC-SHA1" => {
            let base = signature_base_string(req, &oauth);
            *signature == hmac_sha1_signature(&base, &creds.token_secret)
        }
        other => return Err(AuthError::Method(other.to_string())),
    };
    if ok {
        Ok(creds.clone())
    } else {
        Err(AuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Vec<Credentials> {
        vec![Credentials {
            consumer_key: "ck".into(),
            token_key: "tk".into(),
            token_secret: "s3cret".into(),
            username: "admin".into(),
        }]
    }

    fn req<'a>(params: &'a [(String, String)]) -> SignedRequest<'a> {
        SignedRequest {
            method: "GET",
            base_url: "http://127.0.0.1:5240/MAAS/api/2.0/machines/",
            params,
        }
    }

    fn plaintext(nonce: &str, ts: i64, sig: &str) -> String {
        format!(
            "OAuth realm=\"\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"ck\", oauth_token=\"tk\", oauth_signature=\"{}\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{ts}\"",
            encode(sig)
        )
    }

    #[test]
    fn plaintext_accepted_then_nonce_replay_refused() {
        let mut nonces = NonceStore::default();
        let h = plaintext("n1", 1000, "&s3cret");
        assert!(verify(Some(&h), &req(&[]), &creds(), &mut nonces, 1000).is_ok());
        assert_eq!(
            verify(Some(&h), &req(&[]), &creds(), &mut nonces, 1000)
                .unwrap_err()
                .to_string(),
            "Authorization Error: 'Nonce already used: n1'"
        );
    }

    #[test]
    fn old_nonces_are_pruned_but_recent_ones_kept() {
        let mut store = NonceStore::default();
        assert!(store.record("c", "t", "old", 0, 0));
        for i in 0..PRUNE_EVERY {
            assert!(store.record("c", "t", &format!("n{i}"), 1000, 1000));
        }
        assert!(store.len() <= PRUNE_EVERY);
        assert!(!store.record("c", "t", "n5", 1000, 1000));
        assert!(store.record("c", "t", "old", 1000, 1000));
    }

    #[test]
    fn refusals_in_maas_order() {
        let mut nonces = NonceStore::default();
        let bad_key = plaintext("n", 1000, "&s3cret").replace("\"ck\"", "\"zz\"");
        assert_eq!(
            verify(Some(&bad_key), &req(&[]), &creds(), &mut nonces, 1000),
            Err(AuthError::InvalidKey)
        );
        let stale = plaintext("n2", 1000 - 301, "&s3cret");
        assert_eq!(
            verify(Some(&stale), &req(&[]), &creds(), &mut nonces, 1000)
                .unwrap_err()
                .to_string(),
            "Authorization Error: 'Expired timestamp: given 699 and now 1000 has a greater difference than threshold 300'"
        );
        let wrong = plaintext("n3", 1000, "&nope");
        assert_eq!(
            verify(Some(&wrong), &req(&[]), &creds(), &mut nonces, 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(None, &req(&[]), &creds(), &mut nonces, 1000),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn hmac_sha1_matches_rfc5849_example() {
        // The example of RFC 5849 section 3.4.1 (with its consumer secret folded into the key).
        let params = vec![
            ("b5".to_string(), "=%3D".to_string()),
            ("a3".to_string(), "a".to_string()),
            ("c@".to_string(), String::new()),
            ("a2".to_string(), "r b".to_string()),
            ("c2".to_string(), String::new()),
            ("a3".to_string(), "2 q".to_string()),
        ];
        let mut oauth = BTreeMap::new();
        for (k, v) in [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ] {
            oauth.insert(k.to_string(), v.to_string());
        }
        let r = SignedRequest {
            method: "POST",
            base_url: "http://example.com/request",
            params: &params,
        };
        let base = signature_base_string(&r, &oauth);
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn hmac_sha1_verifies() {
        let params = vec![("op".to_string(), "allocate".to_string())];
        let mut oauth = BTreeMap::new();
        for (k, v) in [
            ("oauth_consumer_key", "ck"),
            ("oauth_token", "tk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1000"),
            ("oauth_nonce", "abc"),
            ("oauth_version", "1.0"),
        ] {
            oauth.insert(k.to_string(), v.to_string());
        }
        let r = req(&params);
        let sig = hmac_sha1_signature(&signature_base_string(&r, &oauth), "s3cret");
        let header = format!(
            "OAuth {}",
            oauth
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", encode(v)))
                .chain(std::iter::once(format!(
                    "oauth_signature=\"{}\"",
                    encode(&sig)
                )))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut nonces = NonceStore::default();
        assert!(verify(Some(&header), &r, &creds(), &mut nonces, 1000).is_ok());
        let other = vec![("op".to_string(), "deploy".to_string())];
        let header2 = header.replace("abc", "abd");
        assert_eq!(
            verify(Some(&header2), &req(&other), &creds(), &mut nonces, 1000),
            Err(AuthError::BadSignature)
        );
    }
}
