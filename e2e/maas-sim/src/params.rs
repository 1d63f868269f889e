//! Request parameters as MAAS sees them: the query string for GET and DELETE, the
//! form-urlencoded or multipart body for POST and PUT. A JSON body carries no parameters (MAAS
//! silently ignores it), and neither does the query string of a POST (Django reads `request.POST`).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart};
use http::{HeaderMap, Method, Request, header};

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

/// The parameters of a request, with `op` removed.
pub async fn request_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, String> {
    let params = if *method == Method::GET || *method == Method::DELETE {
        Params::from_urlencoded(query.unwrap_or("").as_bytes())
    } else {
        match body_kind(headers) {
            BodyKind::Form => Params::from_urlencoded(body),
            BodyKind::Multipart => parse_multipart(headers, body.clone()).await?,
            BodyKind::Other => Params::default(),
        }
    };
    Ok(params.without("op"))
}

async fn parse_multipart(headers: &HeaderMap, body: Bytes) -> Result<Params, String> {
    let mut builder = Request::builder().method(Method::POST);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    let request = builder.body(Body::from(body)).map_err(|e| e.to_string())?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| e.body_text())?;
    let mut out = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        out.push((name, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(Params(out))
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
