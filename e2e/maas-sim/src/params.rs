//! Request parameters as MAAS sees them: the query string for GET and DELETE, the
//! form-urlencoded or multipart body for POST and PUT. A JSON body carries no parameters (MAAS
//! silently ignores it), and neither does the query string of a POST (Django reads `request.POST`).

use axum::body::Bytes;
use http::{HeaderMap, Method, header};

/// Ordered, repeatable parameters (`tags=a&tags=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses a query string or form-urlencoded body; malformed pairs are skipped, as Django does.
    pub fn from_urlencoded(bytes: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Distinct keys, in first-seen order.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in &self.0 {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        keys
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy without `key`.
    pub fn without(&self, key: &str) -> Self {
        Self(self.0.iter().filter(|(k, _)| k != key).cloned().collect())
    }

    /// A boolean as Django's forms read it (`true`, `1`, `on`, `yes`; anything else is false).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(parse_bool)
    }
}

/// Django-style boolean parsing.
pub fn parse_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "on" | "yes"
    )
}

/// What kind of body a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data`.
    Multipart,
    /// Anything else (JSON included): no parameters.
    Other,
}

/// Classifies the body by its content type.
pub fn body_kind(headers: &HeaderMap) -> BodyKind {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if ct.starts_with("multipart/form-data") {
        BodyKind::Multipart
    } else {
        BodyKind::Other
    }
}

/// What a request carries, as Django splits it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParams {
    /// `request.GET`: the query string.
    pub query: Params,
    /// `request.POST`: the form or multipart body (POST and PUT only).
    pub body: Params,
    /// Whether the handler reads the query (GET, DELETE) or the body (POST, PUT).
    pub reads_query: bool,
}

impl RequestParams {
    /// `op` as MAAS finds it: from the query string, else from the body.
    pub fn op(&self) -> Option<&str> {
        self.query.get("op").or_else(|| self.body.get("op"))
    }

    /// The parameters the handler sees, `op` removed.
    pub fn handler_params(&self) -> Params {
        if self.reads_query {
            self.query.without("op")
        } else {
            self.body.without("op")
        }
    }
}

/// Splits a request into query and body parameters.
pub async fn split_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<RequestParams, String> {
    let reads_query = *method == Method::GET || *method == Method::DELETE;
    let body = if reads_query {
        Params::default()
    } else {
        match body_kind(headers) {
            BodyKind::Form => Params::from_urlencoded(body),
            BodyKind::Multipart => parse_multipart(headers, body.clone()).await?,
            BodyKind::Other => Params::default(),
        }
    };
    Ok(RequestParams {
        query: Params::from_urlencoded(query.unwrap_or("").as_bytes()),
        body,
        reads_query,
    })
}

/// The parameters a handler sees, with `op` removed.
pub async fn request_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, String> {
    Ok(split_params(method, query, headers, body)
        .await?
        .handler_params())
}

async fn parse_multipart(headers: &HeaderMap, body: Bytes) -> Result<Params, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = boundary_of(content_type)
        .ok_or_else(|| "Multipart body without a boundary.".to_string())?;
    parse_multipart_body(&boundary, &body)
}

/// The `boundary` parameter of a multipart content type (quoted or not).
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn part_name(headers: &str) -> Option<String> {
    headers.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        v.split(';').find_map(|p| {
            let (pk, pv) = p.split_once('=')?;
            (pk.trim() == "name").then(|| pv.trim().trim_matches('"').to_string())
        })
    })
}

fn header_value(headers: &str, name: &str) -> Option<String> {
    headers.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_ascii_lowercase())
    })
}

/// Parses a multipart/form-data body leniently, as Django does: parts without a name are
/// skipped, the closing boundary may lack its line break, and base64 or quoted-printable parts
/// are decoded.
pub fn parse_multipart_body(boundary: &str, body: &[u8]) -> Result<Params, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut out = Vec::new();
    let Some(first) = find(body, delimiter) else {
        return Err("Multipart body without its boundary.".to_string());
    };
    let mut rest = &body[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, delimiter) else {
            // No closing boundary: MAAS would refuse the truncated body.
            return Err("Incomplete multipart body.".to_string());
        };
        let mut part = &rest[..end];
        part = part.strip_prefix(b"\r\n").unwrap_or(part);
        part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => (part, &b""[..]),
        };
        let head = String::from_utf8_lossy(head);
        if let Some(name) = part_name(&head) {
            let encoding = header_value(&head, "content-transfer-encoding");
            let bytes = decode_transfer_encoding(encoding.as_deref(), content)?;
            out.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
        rest = &rest[end + delimiter.len()..];
    }
    Ok(Params(out))
}

/// Undoes a part's `Content-Transfer-Encoding` as Django does (Python's MIME encoders send
/// text parts base64-encoded).
pub fn decode_transfer_encoding(encoding: Option<&str>, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match encoding {
        Some("base64") => {
            use base64::Engine;
            let cleaned: Vec<u8> = bytes
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|e| format!("Invalid base64 in a multipart part: {e}"))
        }
        Some("quoted-printable") => Ok(decode_quoted_printable(bytes)),
        _ => Ok(bytes.to_vec()),
    }
}

fn decode_quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let rest = &bytes[i + 1..];
            if rest.starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if rest.starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = rest
                .get(..2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn repeated_keys_and_flags() {
        let p = Params::from_urlencoded(b"tags=a&tags=b&erase=True&x=0&op=allocate");
        assert_eq!(p.get_all("tags"), vec!["a", "b"]);
        assert!(p.flag("erase"));
        assert!(!p.flag("x"));
        assert!(!p.flag("missing"));
        assert_eq!(p.without("op").keys(), vec!["tags", "erase", "x"]);
    }

    #[tokio::test]
    async fn json_body_yields_no_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let body = Bytes::from_static(br#"{"cpu_count": 4}"#);
        let p = request_params(
            &Method::POST,
            Some("op=allocate&cpu_count=4"),
            &headers,
            &body,
        )
        .await
        .unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn python_mime_multipart_shapes() {
        // An empty form as Python's email package writes it: one empty part, no final CRLF.
        let empty = b"--===============84==\r\n\r\n--===============84==--";
        assert!(
            parse_multipart_body("===============84==", empty)
                .unwrap()
                .is_empty()
        );
        let one = b"--B\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\neA==\r\n\r\n--B--";
        assert_eq!(parse_multipart_body("B", one).unwrap().get("a"), Some("x"));
        assert!(
            parse_multipart_body(
                "B",
                b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"
            )
            .is_err()
        );
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"==x==\""),
            Some("==x==".to_string())
        );
    }

    #[tokio::test]
    async fn op_from_query_else_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = Bytes::from_static(b"op=deploy&distro_series=jammy");
        let p = split_params(&Method::POST, None, &headers, &body)
            .await
            .unwrap();
        assert_eq!(p.op(), Some("deploy"));
        assert_eq!(p.handler_params().keys(), vec!["distro_series"]);
        let p = split_params(&Method::POST, Some("op=release"), &headers, &body)
            .await
            .unwrap();
        assert_eq!(p.op(), Some("release"));
        let p = split_params(&Method::GET, Some("op=x&a=1"), &headers, &body)
            .await
            .unwrap();
        assert_eq!(p.handler_params().keys(), vec!["a"]);
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(
            decode_transfer_encoding(Some("base64"), b"Z3B1\r\n").unwrap(),
            b"gpu"
        );
        assert_eq!(
            decode_transfer_encoding(Some("quoted-printable"), b"a=3Db=\r\nc").unwrap(),
            b"a=bc"
        );
        assert_eq!(decode_transfer_encoding(None, b"Z3B1").unwrap(), b"Z3B1");
        assert!(decode_transfer_encoding(Some("base64"), b"!!").is_err());
    }

    #[tokio::test]
    async fn multipart_body_is_parsed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=XyZ"),
        );
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\ngpu\r\n--XyZ\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nfast\r\n--XyZ--\r\n",
        );
        let p = request_params(&Method::POST, None, &headers, &body)
            .await
            .unwrap();
        assert_eq!(p.get_all("tags"), vec!["gpu", "fast"]);
    }
}
