#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests of what the simulator reads from clients: any Authorization header is refused
//! (a 401) or accepted, never a panic; form and multipart bodies parse or fail cleanly. The case
//! count is proptest's default in `make test`; `make fuzz` raises it with PROPTEST_CASES.

use maas_sim::oauth::{Credentials, NonceStore, SignedRequest, parse_header, verify};
use maas_sim::params::{Params, boundary_of, parse_multipart_body};
use proptest::prelude::*;

fn keys() -> Vec<Credentials> {
    vec![Credentials {
        consumer_key: "ck".into(),
        token_key: "tk".into(),
        token_secret: "ts".into(),
        username: "admin".into(),
    }]
}

/// Headers that look like OAuth (so the parser goes deep) as well as noise.
fn header() -> impl Strategy<Value = String> {
    let param = (
        prop_oneof![
            Just("oauth_consumer_key"),
            Just("oauth_token"),
            Just("oauth_signature_method"),
            Just("oauth_signature"),
            Just("oauth_timestamp"),
            Just("oauth_nonce"),
            Just("oauth_version"),
            Just("realm"),
        ],
        ".{0,12}",
    )
        .prop_map(|(k, v)| format!("{k}=\"{v}\""));
    prop_oneof![
        ".{0,64}",
        prop::collection::vec(param, 0..8).prop_map(|ps| format!("OAuth {}", ps.join(", "))),
    ]
}

proptest! {
    #[test]
    fn any_authorization_header_is_refused_never_a_panic(header in header(), now in any::<i64>()) {
        let _ = parse_header(&header);
        let params = vec![("op".to_string(), "allocate".to_string())];
        let req = SignedRequest {
            method: "POST",
            base_url: "http://maas:5240/MAAS/api/2.0/machines/",
            params: &params,
        };
        let mut nonces = NonceStore::default();
        // A random header never carries a valid signature over this request.
        prop_assert!(verify(Some(&header), &req, &keys(), &mut nonces, now).is_err());
    }

    #[test]
    fn any_form_body_parses(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let params = Params::from_urlencoded(&bytes);
        for key in params.keys() {
            let _ = params.get_all(key);
        }
    }

    #[test]
    fn any_multipart_body_parses_or_fails_cleanly(
        content_type in ".{0,48}",
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let boundary = boundary_of(&content_type).unwrap_or_else(|| "b".to_string());
        let _ = parse_multipart_body(&boundary, &body);
    }
}
