//! The MAAS API front door: URL matching with Django's trailing-slash redirect, OAuth, method and
//! `op` dispatch, fault injection, parameter parsing, and the request log.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Request, StatusCode, header};
use jiff::Timestamp;

use crate::api::{Ctx, handle};
use crate::config::ADMIN_USER;
use crate::lifecycle::Caller;
use crate::oauth::{SignedRequest, verify};
use crate::params::{BodyKind, Params, body_kind, split_params};
use crate::reply::Reply;
use crate::requests::RequestEntry;
use crate::routes::{API_PREFIX, Action, RouteMatch, find_action, match_path};
use crate::shared::{Shared, lock};

/// Largest body accepted (user data can be large; MAAS accepts a few MiB).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Where a request path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `describe/`.
    Describe,
    /// A resource of the route table.
    Route(RouteMatch),
    /// Django's APPEND_SLASH: redirect to the path with a slash.
    AppendSlash,
    /// Nothing.
    NotFound,
}

/// Resolves a path (pure).
pub fn resolve(path: &str) -> Target {
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return if format!("{path}/") == API_PREFIX {
            Target::AppendSlash
        } else {
            Target::NotFound
        };
    };
    if rest == "describe/" {
        return Target::Describe;
    }
    if let Some(m) = match_path(rest) {
        return Target::Route(m);
    }
    if !rest.ends_with('/') {
        let slashed = format!("{rest}/");
        if slashed == "describe/" || match_path(&slashed).is_some() {
            return Target::AppendSlash;
        }
    }
    Target::NotFound
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

/// The axum fallback serving every MAAS path.
pub async fn serve(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let body = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.")
                .into_response();
        }
    };
    let (op_label, reply) = answer(
        &shared,
        &method,
        &path,
        query.as_deref(),
        &parts.headers,
        body,
    )
    .await;
    // Method, path, operation and code only: never headers, parameters or bodies.
    tracing::debug!(%method, %path, op = %op_label, code = reply.logged_code(), "request");
    lock(&shared.requests).record(RequestEntry {
        method: method.to_string(),
        path,
        op: op_label,
        code: reply.logged_code(),
    });
    reply.into_response()
}

fn op_of(query: Option<&str>) -> Option<String> {
    Params::from_urlencoded(query.unwrap_or("").as_bytes())
        .get("op")
        .map(str::to_string)
}

async fn answer(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> (String, Reply) {
    let route = match resolve(path) {
        Target::NotFound => return ("-".to_string(), Reply::no_route()),
        Target::AppendSlash => {
            let location = match query {
                Some(q) => format!("{path}/?{q}"),
                None => format!("{path}/"),
            };
            return ("-".to_string(), Reply::redirect(location));
        }
        Target::Describe => {
            let label = "describe:read".to_string();
            if *method != Method::GET {
                return (label, signature_error(method, op_of(query).as_deref()));
            }
            let base = format!("http://{}", host(headers));
            return (label, Reply::json(crate::describe::describe(&base)));
        }
        Target::Route(route) => route,
    };
    let split = match split_params(method, query, headers, &body).await {
        Ok(p) => p,
        Err(message) => {
            return (
                "-".to_string(),
                Reply::text(StatusCode::BAD_REQUEST, message),
            );
        }
    };
    let op = split.op().map(str::to_string);
    let action: Option<&'static Action> =
        find_action(route.resource, method.as_str(), op.as_deref());
    let label = format!(
        "{}:{}",
        route.resource.label,
        action.map_or_else(
            || op.clone().unwrap_or_else(|| "?".to_string()),
            |a| a.name.to_string()
        )
    );

    // Authentication comes first, as in MAAS.
    let caller = if route.resource.anonymous {
        Caller {
            username: ADMIN_USER.to_string(),
        }
    } else {
        let mut signed_params = Params::from_urlencoded(query.unwrap_or("").as_bytes()).0;
        if body_kind(headers) == BodyKind::Form {
            signed_params.extend(Params::from_urlencoded(&body).0);
        }
        let base_url = format!("http://{}{}", host(headers), path);
        let signed = SignedRequest {
            method: method.as_str(),
            base_url: &base_url,
            params: &signed_params,
        };
        let auth_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let result = {
            let mut nonces = lock(&shared.nonces);
            verify(
                auth_header,
                &signed,
                &shared.keys,
                &mut nonces,
                Timestamp::now().as_second(),
            )
        };
        match result {
            Ok(creds) => Caller {
                username: creds.username,
            },
            Err(e) => return (label, Reply::text(StatusCode::UNAUTHORIZED, e.to_string())),
        }
    };
    let Some(action) = action else {
        return (label, signature_error(method, op.as_deref()));
    };

    let decision = lock(&shared.faults).decide(&label);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if decision.reset {
        return (label, Reply::reset());
    }
    if let Some(e) = decision.error {
        let mut reply = Reply::text(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            e.body,
        );
        reply.retry_after = e.retry_after;
        return (label, reply);
    }

    let params = split.handler_params();
    let deploy_fails = action.name == "deploy" && lock(&shared.faults).deploy_fails();
    let now = Timestamp::now();
    let outcome = {
        let mut world = lock(&shared.world);
        shared.advance(&mut world, now);
        let ctx = Ctx {
            caller,
            now,
            timing: shared.timing,
            route: &route,
            params: &params,
            deploy_fails,
        };
        handle(&mut world, &ctx, action.name)
    };
    if outcome.changed {
        shared.dirty.store(true, Ordering::Release);
    }
    shared.emit(outcome.events);
    if decision.lose_answer {
        // Applied and committed; the caller only sees the connection close.
        return (label, Reply::reset());
    }
    (label, outcome.reply)
}

fn signature_error(method: &Method, op: Option<&str>) -> Reply {
    Reply::text(
        StatusCode::BAD_REQUEST,
        format!(
            "Unrecognised signature: method={} op={}",
            method,
            op.unwrap_or("None")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_django() {
        assert!(matches!(
            resolve("/MAAS/api/2.0/machines/"),
            Target::Route(_)
        ));
        assert_eq!(resolve("/MAAS/api/2.0/machines"), Target::AppendSlash);
        assert_eq!(resolve("/MAAS/api/2.0/machines/abc"), Target::AppendSlash);
        assert_eq!(resolve("/MAAS/api/2.0/describe"), Target::AppendSlash);
        assert_eq!(resolve("/MAAS/api/2.0/describe/"), Target::Describe);
        assert_eq!(resolve("/MAAS/api/2.0/nothing"), Target::NotFound);
        assert_eq!(resolve("/elsewhere/"), Target::NotFound);
    }
}
