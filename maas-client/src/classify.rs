//! Maps a non-success MAAS response to a [`MaasError`]: a pure function, tested without I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::MaasError;
use crate::operation::Operation;

/// How much of an unexpected body is kept in an error: enough to diagnose, never a whole page.
const BODY_EXCERPT_CHARS: usize = 512;

/// Classifies a failed response from its status, `Retry-After` header and body.
///
/// MAAS signals "try later" only through `Retry-After` on 409 and 503; a 409 without it is a
/// business refusal. A 503 without it is still treated as transient (a MAAS region restarting).
pub fn classify_failure(
    op: Operation,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> MaasError {
    let text = body_excerpt(body);
    let retry_after = retry_after.and_then(parse_retry_after);
    match status {
        400 => {
            let fields = parse_field_errors(body).unwrap_or_default();
            let message = if fields.is_empty() {
                text
            } else {
                fields
                    .iter()
                    .map(|(field, msgs)| format!("{field}: {}", msgs.join(" ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            MaasError::BadRequest {
                op,
                message,
                fields,
            }
        }
        401 => MaasError::Unauthorized { op, message: text },
        403 => MaasError::Forbidden { op, message: text },
        // Only MAAS's own "does not exist" is a NotFound: a 404 from a wrong path or a proxy in
        // front of MAAS says nothing about the object, and callers drop finalizers on NotFound.
        404 if is_maas_not_found(&text) => MaasError::NotFound { op, message: text },
        409 if retry_after.is_some() => MaasError::Retryable {
            op,
            reason: format!("HTTP 409: {text}"),
            retry_after,
        },
        409 => MaasError::Conflict { op, message: text },
        // Without Retry-After a 503 may come from a proxy after MAAS acted.
        503 if retry_after.is_none() && op.is_non_idempotent() => MaasError::OutcomeUnknown {
            op,
            reason: format!("HTTP 503: {text}"),
        },
        503 => MaasError::Retryable {
            op,
            reason: format!("HTTP 503: {text}"),
            retry_after,
        },
        _ => MaasError::Unexpected {
            op,
            status,
            body: text,
        },
    }
}

/// Whether a 404 body is MAAS's own answer for an object that does not exist: Django's
/// `No <Model> matches the given query.` (MAAS answers `GET machines/{id}/` of an unknown id with
/// `No Machine matches the given query.`, a DNS resource with `No DNSResource ...`).
pub fn is_maas_not_found(text: &str) -> bool {
    text.strip_prefix("No ")
        .and_then(|rest| rest.strip_suffix(" matches the given query."))
        .is_some_and(|model| !model.is_empty() && model.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Parses `Retry-After` in its delta-seconds form, the one MAAS sends. Fractional seconds are
/// accepted; an HTTP date or garbage gives `None` (then the client's own backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Parses MAAS's form-validation body `{"field": ["message", ...]}`. A field whose value is a
/// single string is accepted too. Returns `None` when the body is not such an object.
pub fn parse_field_errors(body: &[u8]) -> Option<BTreeMap<String, Vec<String>>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let mut fields = BTreeMap::new();
    for (field, messages) in object {
        let messages = match messages {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            other => vec![other.to_string()],
        };
        fields.insert(field.clone(), messages);
    }
    Some(fields)
}

/// The body as lossy UTF-8, trimmed and cut to a bounded number of characters.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: Operation = Operation::Allocate;

    #[test]
    fn not_found() {
        let err = classify_failure(OP, 404, None, b"No Machine matches the given query.");
        assert!(
            matches!(&err, MaasError::NotFound { message, .. } if message == "No Machine matches the given query.")
        );
        assert_eq!(err.kind(), "not_found");
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_404_that_is_not_maas_saying_so_is_not_a_not_found() {
        for body in [
            &b"<html><body>404 Not Found</body></html>"[..],
            b"",
            b"Not Found",
            b"No Machine matches the given query. (proxy)",
        ] {
            let err = classify_failure(OP, 404, None, body);
            assert!(
                matches!(err, MaasError::Unexpected { status: 404, .. }),
                "{body:?}: {err:?}"
            );
        }
        let dns = classify_failure(OP, 404, None, b"No DNSResource matches the given query.");
        assert_eq!(dns.kind(), "not_found");
    }

    #[test]
    fn conflict_without_retry_after_is_business() {
        let err = classify_failure(
            OP,
            409,
            None,
            b"No available machine matches constraints: [('zone', ['z1'])]",
        );
        assert!(
            matches!(&err, MaasError::Conflict { message, .. } if message.starts_with("No available machine"))
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn conflict_with_retry_after_is_retryable() {
        let err = classify_failure(OP, 409, Some("5"), b"busy");
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn conflict_with_unparseable_retry_after_is_business() {
        let err = classify_failure(OP, 409, Some("soon"), b"busy");
        assert_eq!(err.kind(), "conflict");
    }

    #[test]
    fn service_unavailable_is_retryable_unless_a_non_idempotent_call_may_have_been_applied() {
        let with = classify_failure(OP, 503, Some("10"), b"");
        assert!(with.is_retryable(), "Retry-After: MAAS did not act");
        assert_eq!(with.retry_after(), Some(Duration::from_secs(10)));
        let read = classify_failure(Operation::ReadMachine, 503, None, b"");
        assert!(read.is_retryable());
        assert_eq!(read.retry_after(), None);
        let allocate = classify_failure(OP, 503, None, b"");
        assert!(
            !allocate.is_retryable(),
            "an allocate is never resent blindly"
        );
        assert_eq!(allocate.kind(), "outcome_unknown");
    }

    #[test]
    fn bad_request_with_json_fields() {
        let err = classify_failure(
            OP,
            400,
            None,
            br#"{"bogus": ["No such constraint."], "zone": "No such zone"}"#,
        );
        match err {
            MaasError::BadRequest {
                fields, message, ..
            } => {
                assert_eq!(fields["bogus"], vec!["No such constraint.".to_owned()]);
                assert_eq!(fields["zone"], vec!["No such zone".to_owned()]);
                assert_eq!(message, "bogus: No such constraint.; zone: No such zone");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_request_with_text() {
        let err = classify_failure(
            OP,
            400,
            None,
            b"Unrecognised signature: method=GET op=allocate",
        );
        match err {
            MaasError::BadRequest {
                fields, message, ..
            } => {
                assert!(fields.is_empty());
                assert_eq!(message, "Unrecognised signature: method=GET op=allocate");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn auth_and_other_statuses() {
        assert_eq!(
            classify_failure(OP, 401, None, b"Authorization Error: Invalid API key.").kind(),
            "unauthorized"
        );
        assert_eq!(classify_failure(OP, 403, None, b"no").kind(), "forbidden");
        match classify_failure(OP, 500, None, b"boom") {
            MaasError::Unexpected { status, body, .. } => {
                assert_eq!(status, 500);
                assert_eq!(body, "boom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("inf"), None);
    }

    #[test]
    fn excerpt_is_bounded_and_utf8_safe() {
        let long = "é".repeat(2000);
        let cut = body_excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(body_excerpt(b"  short \n"), "short");
    }
}
