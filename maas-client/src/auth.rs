//! The MAAS API key and the OAuth 1.0 PLAINTEXT `Authorization` header built from it.

use std::fmt;

use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::RngExt as _;
use rand::distr::Alphanumeric;

use crate::error::MaasError;

/// The message for a malformed key. It states the expected shape and never repeats the input,
/// since the input is a credential.
const KEY_FORMAT_HELP: &str = "MAAS API key is malformed: expected three non-empty parts \
     separated by colons, consumer_key:token_key:token_secret (as printed by \
     `maas apikey --username <user>`)";

/// A parsed MAAS API key (`consumer_key:token_key:token_secret`).
///
/// Kept as its own type so the secret never leaks through `Debug` or `Display`, and so a bad key
/// is refused once, at client construction, instead of on every request.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    consumer_key: String,
    token_key: String,
    token_secret: String,
}

impl ApiKey {
    /// Parses `consumer_key:token_key:token_secret`; surrounding whitespace (a trailing newline
    /// from a Secret file) is ignored.
    pub fn parse(raw: &str) -> Result<Self, MaasError> {
        let mut parts = raw.trim().split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(consumer), Some(token), Some(secret), None)
                if !consumer.is_empty() && !token.is_empty() && !secret.is_empty() =>
            {
                Ok(Self {
                    consumer_key: consumer.to_owned(),
                    token_key: token.to_owned(),
                    token_secret: secret.to_owned(),
                })
            }
            _ => Err(MaasError::Config(KEY_FORMAT_HELP.to_owned())),
        }
    }

    /// The consumer key: not secret, useful to tell which MAAS user a client acts as.
    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }

    /// The token key: not secret on its own.
    pub fn token_key(&self) -> &str {
        &self.token_key
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("consumer_key", &self.consumer_key)
            .field("token_key", &self.token_key)
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

/// RFC 5849 (3.6) encoding: everything but unreserved characters is percent-encoded.
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn oauth_encode(value: &str) -> String {
    utf8_percent_encode(value, OAUTH_ENCODE).to_string()
}

/// Builds the `Authorization` header value for one request.
///
/// Every call draws a fresh nonce and reads the clock, so a retried request is signed anew: MAAS
/// refuses a reused nonce and a timestamp older than 300 s. PLAINTEXT signs
/// `<consumer_secret>&<token_secret>` with MAAS's empty consumer secret, so neither the method nor
/// the URL enters the signature.
///
/// Built here rather than with the oauth1-request crate because that crate writes the PLAINTEXT
/// signature into the header without escaping it (`&secret` instead of `%26secret`), which
/// RFC 5849 and MAAS's own clients do not do.
pub fn authorization_header(key: &ApiKey) -> String {
    let nonce: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let signature = format!("&{}", oauth_encode(&key.token_secret));
    format!(
        "OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", \
         oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"{}\", \
         oauth_nonce=\"{nonce}\", oauth_timestamp=\"{timestamp}\"",
        oauth_encode(&key.consumer_key),
        oauth_encode(&key.token_key),
        oauth_encode(&signature),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(header: &str) -> std::collections::BTreeMap<String, String> {
        header
            .strip_prefix("OAuth ")
            .unwrap()
            .split(',')
            .map(|pair| {
                let (k, v) = pair.trim().split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    }

    #[test]
    fn parses_three_parts() {
        let key = ApiKey::parse("ck:tk:ts\n").unwrap();
        assert_eq!(key.consumer_key(), "ck");
        assert_eq!(key.token_key(), "tk");
        assert_eq!(key.token_secret, "ts");
    }

    #[test]
    fn malformed_keys_say_the_format_and_never_echo_the_input() {
        for bad in [
            "",
            "only-one",
            "a:b",
            "a:b:c:d",
            "a::c",
            ":b:c",
            "a:b:",
            "s3cr3t-value",
        ] {
            let err = ApiKey::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("consumer_key:token_key:token_secret"), "{msg}");
            if !bad.is_empty() {
                assert!(!msg.contains(bad), "message echoes the key: {msg}");
            }
            assert_eq!(err.kind(), "config");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let key = ApiKey::parse("ck:tk:very-secret").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("very-secret"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn header_has_the_plaintext_shape() {
        let key = ApiKey::parse("ck:tk:s&cret").unwrap();
        let header = authorization_header(&key);
        let p = params(&header);
        assert_eq!(p["oauth_version"], "1.0");
        assert_eq!(p["oauth_signature_method"], "PLAINTEXT");
        assert_eq!(p["oauth_consumer_key"], "ck");
        assert_eq!(p["oauth_token"], "tk");
        // "&" + percent-encoded secret, itself percent-encoded in the header.
        assert_eq!(p["oauth_signature"], "%26s%2526cret");
        assert!(!p["oauth_nonce"].is_empty());
        let ts: u64 = p["oauth_timestamp"].parse().unwrap();
        assert!(ts > 1_600_000_000);
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn every_header_has_a_fresh_nonce() {
        let key = ApiKey::parse("ck:tk:ts").unwrap();
        let nonces: std::collections::BTreeSet<String> = (0..20)
            .map(|_| params(&authorization_header(&key))["oauth_nonce"].clone())
            .collect();
        assert_eq!(nonces.len(), 20);
    }
}
