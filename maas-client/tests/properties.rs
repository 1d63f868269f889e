#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests of what the client reads from MAAS: any bytes decode to a value or an error,
//! never a panic; any JSON shape likewise; and the failure classification is total. The case
//! count is proptest's default (256) in `make test`; `make fuzz` raises it with PROPTEST_CASES.

use maas_client::{
    DnsResource, Machine, NodeDevice, Operation, PowerStateReply, Tag, Version, Zone,
    classify_failure, parse_field_errors, parse_retry_after,
};
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, a few levels deep, with the keys MAAS's machine JSON uses mixed in so the
/// decoders see near-valid shapes as well as noise.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("system_id".to_string()),
        Just("hostname".to_string()),
        Just("status".to_string()),
        Just("status_name".to_string()),
        Just("power_state".to_string()),
        Just("ip_addresses".to_string()),
        Just("owner_data".to_string()),
        Just("zone".to_string()),
        Just("memory".to_string()),
        Just("cpu_count".to_string()),
        Just("interface_set".to_string()),
        Just("tag_names".to_string()),
        Just("id".to_string()),
        Just("fqdn".to_string()),
        Just("ip_addresses".to_string()),
        "[a-z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decodes `bytes` as every type the client reads, only to prove none of them panics.
fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Machine>(bytes);
    let _ = serde_json::from_slice::<Vec<Machine>>(bytes);
    let _ = serde_json::from_slice::<DnsResource>(bytes);
    let _ = serde_json::from_slice::<Vec<DnsResource>>(bytes);
    let _ = serde_json::from_slice::<Vec<NodeDevice>>(bytes);
    let _ = serde_json::from_slice::<PowerStateReply>(bytes);
    let _ = serde_json::from_slice::<Vec<Zone>>(bytes);
    let _ = serde_json::from_slice::<Vec<Tag>>(bytes);
    let _ = serde_json::from_slice::<Version>(bytes);
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn any_json_shape_decodes_or_fails_cleanly(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        decode_all(&bytes);
        // A machine that decodes keeps its system id exactly as sent.
        if let (Ok(m), Some(Value::String(id))) =
            (serde_json::from_slice::<Machine>(&bytes), value.get("system_id"))
        {
            prop_assert_eq!(&m.system_id, id);
        }
    }

    #[test]
    fn every_failed_answer_is_classified(
        status in 400u16..600,
        retry_after in prop::option::of(".{0,12}"),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let err = classify_failure(Operation::Allocate, status, retry_after.as_deref(), &body);
        // The excerpt kept in the error is bounded, whatever MAAS sent.
        prop_assert!(err.to_string().chars().count() < 800, "{}", err);
        let _ = err.kind();
        let _ = parse_field_errors(&body);
    }

    #[test]
    fn any_retry_after_is_a_delay_or_nothing(value in ".{0,24}") {
        if let Some(delay) = parse_retry_after(&value) {
            prop_assert!(delay.as_secs_f64() >= 0.0);
        }
    }
}
