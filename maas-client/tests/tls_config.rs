//! TLS settings are validated when the client is built.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use maas_client::{MaasClient, MaasConfig, MaasError, TlsConfig};

const KEY: &str = "ck:tk:ts";

fn build(tls: TlsConfig) -> Result<MaasClient, MaasError> {
    MaasClient::new(MaasConfig::new("https://maas.example/MAAS", KEY).with_tls(tls))
}

#[test]
fn verification_is_on_by_default() {
    let config = MaasConfig::new("https://maas.example/MAAS", KEY);
    assert!(!config.tls.insecure_skip_verify);
    assert!(config.tls.ca_bundle_pem.is_none());
    assert!(MaasClient::new(config).is_ok());
}

#[test]
fn a_custom_ca_bundle_is_accepted() {
    let pem = include_bytes!("data/test-ca.pem").to_vec();
    assert!(
        build(TlsConfig {
            ca_bundle_pem: Some(pem),
            insecure_skip_verify: false
        })
        .is_ok()
    );
}

#[test]
fn a_bundle_without_certificates_is_a_config_error() {
    let err = build(TlsConfig {
        ca_bundle_pem: Some(b"not a certificate".to_vec()),
        insecure_skip_verify: false,
    })
    .unwrap_err();
    assert_eq!(err.kind(), "config");
    assert!(err.to_string().contains("CA bundle"), "{err}");
}

#[test]
fn the_insecure_switch_builds() {
    assert!(
        build(TlsConfig {
            ca_bundle_pem: None,
            insecure_skip_verify: true
        })
        .is_ok()
    );
}
