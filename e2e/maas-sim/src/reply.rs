//! HTTP answers in MAAS's formats: JSON for data and form errors, plain text for everything else.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::constraints::FormErrors;
use crate::lifecycle::OpError;

/// Marker extension: close the connection instead of answering (fault injection).
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Body.
    pub body: ReplyBody,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
    /// `Location` (redirects).
    pub location: Option<String>,
    /// Close the connection without answering.
    pub reset: bool,
    /// Send the answer only after this long (fault injection; the request is logged first).
    pub hold: Option<std::time::Duration>,
}

/// Body kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// `application/json`.
    Json(Value),
    /// `text/plain`.
    Text(String),
    /// `text/html` (Django's own pages).
    Html(String),
    /// No body.
    Empty,
}

impl Reply {
    fn new(status: StatusCode, body: ReplyBody) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            location: None,
            reset: false,
            hold: None,
        }
    }

    /// 200 with JSON.
    pub fn json(value: Value) -> Self {
        Self::new(StatusCode::OK, ReplyBody::Json(value))
    }

    /// A text answer.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::new(status, ReplyBody::Text(text.into()))
    }

    /// 400 form errors.
    pub fn form_errors(errors: FormErrors) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ReplyBody::Json(serde_json::to_value(errors).unwrap_or_default()),
        )
    }

    /// 400 for a single form field.
    pub fn field_error(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FormErrors::new();
        errors.insert(field.to_string(), vec![message.into()]);
        Self::form_errors(errors)
    }

    /// 404 `No <Model> matches the given query.`
    pub fn not_found(model: &str) -> Self {
        Self::text(
            StatusCode::NOT_FOUND,
            format!("No {model} matches the given query."),
        )
    }

    /// Django's 404 page for an unknown URL.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ReplyBody::Html(
                "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
                    .to_string(),
            ),
        )
    }

    /// Django's APPEND_SLASH redirect.
    pub fn redirect(location: String) -> Self {
        let mut r = Self::new(StatusCode::MOVED_PERMANENTLY, ReplyBody::Empty);
        r.location = Some(location);
        r
    }

    /// 204.
    pub fn no_content() -> Self {
        Self::new(StatusCode::NO_CONTENT, ReplyBody::Empty)
    }

    /// A connection reset.
    pub fn reset() -> Self {
        let mut r = Self::new(StatusCode::OK, ReplyBody::Empty);
        r.reset = true;
        r
    }

    /// Maps a refused operation.
    pub fn from_op_error(e: OpError) -> Self {
        match e {
            OpError::NotFound => Self::not_found("Machine"),
            OpError::Conflict(text) => Self::text(StatusCode::CONFLICT, text),
            OpError::Forbidden(text) => Self::text(StatusCode::FORBIDDEN, text),
            OpError::Invalid(errors) => Self::form_errors(errors),
        }
    }

    /// The code recorded in the request log (0 for a reset).
    pub fn logged_code(&self) -> u16 {
        if self.reset { 0 } else { self.status.as_u16() }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (content_type, body) = match self.body {
            ReplyBody::Json(v) => ("application/json", Body::from(v.to_string())),
            ReplyBody::Text(t) => ("text/plain; charset=utf-8", Body::from(t)),
            ReplyBody::Html(t) => ("text/html; charset=utf-8", Body::from(t)),
            ReplyBody::Empty => ("text/html; charset=utf-8", Body::empty()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Authorization,Cookie"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("OAuth realm=\"OAuth\""),
            );
        }
        if self.reset {
            response.extensions_mut().insert(ResetConnection);
        }
        response
    }
}
