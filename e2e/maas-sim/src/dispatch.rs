//! The MAAS API front door: URL matching with Django's trailing-slash redirect, OAuth, method and
//! `op` dispatch, fault injection, parameter parsing, and the request log.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Request, StatusCode, header};
use jiff::Timestamp;

use crate::api::{Ctx, handle};
use crate::config::ADMIN_USER;
use crate::faults::{AfterApply, InjectedError};
use crate::lifecycle::Caller;
use crate::oauth::{SignedRequest, verify};
use crate::params::{BodyKind, Params, body_kind, split_params};
use crate::reply::Reply;
use crate::requests::RequestEntry;
use crate::routes::{API_PREFIX, Action, RouteMatch, find_action, match_op_path, match_path};
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
    if let Some(m) = match_path(rest).or_else(|| match_op_path(rest)) {
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
    let incoming = Incoming {
        method: &method,
        path: &path,
        query: query.as_deref(),
        headers: &parts.headers,
        body,
    };
    let (op_label, reply) = answer(&shared, &incoming).await;
    // Method, path, operation and code only: never headers, parameters or bodies.
    tracing::debug!(%method, %path, op = %op_label, code = reply.logged_code(), "request");
    lock(&shared.requests).record(RequestEntry {
        method: method.to_string(),
        path,
        op: op_label,
        code: reply.logged_code(),
    });
    if let Some(hold) = reply.hold {
        // Logged already: a caller that gives up and hangs up ends this task here.
        tokio::time::sleep(hold).await;
    }
    reply.into_response()
}

fn op_of(query: Option<&str>) -> Option<String> {
    Params::from_urlencoded(query.unwrap_or("").as_bytes())
        .get("op")
        .map(str::to_string)
}

/// One request as the dispatcher reads it.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: Bytes,
}

/// The route a path leads to, or the answer when it leads to none.
fn route_or_reply(req: &Incoming<'_>) -> Result<RouteMatch, (String, Reply)> {
    match resolve(req.path) {
        Target::Route(route) => Ok(route),
        Target::NotFound => Err(("-".to_string(), Reply::no_route())),
        Target::AppendSlash => {
            let location = match req.query {
                Some(q) => format!("{}/?{q}", req.path),
                None => format!("{}/", req.path),
            };
            Err(("-".to_string(), Reply::redirect(location)))
        }
        Target::Describe => {
            let label = "describe:read".to_string();
            if *req.method != Method::GET {
                return Err((
                    label,
                    signature_error(req.method, op_of(req.query).as_deref()),
                ));
            }
            let base = format!("http://{}", host(req.headers));
            Err((label, Reply::json(crate::describe::describe(&base))))
        }
    }
}

async fn answer(shared: &Shared, req: &Incoming<'_>) -> (String, Reply) {
    let route = match route_or_reply(req) {
        Ok(route) => route,
        Err(early) => return early,
    };
    let split = match split_params(req.method, req.query, req.headers, &req.body).await {
        Ok(p) => p,
        Err(message) => {
            return (
                "-".to_string(),
                Reply::text(StatusCode::BAD_REQUEST, message),
            );
        }
    };
    // MAAS takes `op` from the query, else the body, else an `op-NAME` path.
    let op = split
        .op()
        .map(str::to_string)
        .or_else(|| route.path_op.clone());
    let action: Option<&'static Action> =
        find_action(route.resource, req.method.as_str(), op.as_deref());
    let label = format!(
        "{}:{}",
        route.resource.label,
        action.map_or_else(
            || op.clone().unwrap_or_else(|| "?".to_string()),
            |a| a.name.to_string()
        )
    );
    // Authentication comes first, as in MAAS.
    let caller = match authenticate(shared, req, &route) {
        Ok(caller) => caller,
        Err(reply) => return (label, reply),
    };
    let Some(action) = action else {
        return (label, signature_error(req.method, op.as_deref()));
    };
    let reply = apply(
        shared,
        &label,
        action,
        &route,
        caller,
        &split.handler_params(),
    )
    .await;
    (label, reply)
}

/// The parameters an OAuth signature covers, as MAAS collects them: the query string, and
/// the form body of a POST only (Django fills `request.POST` for POST requests alone, so a
/// PUT's form body is not signed).
pub fn signed_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut params = Params::from_urlencoded(query.unwrap_or("").as_bytes()).0;
    if *method == Method::POST && body_kind(headers) == BodyKind::Form {
        params.extend(Params::from_urlencoded(body).0);
    }
    params
}

fn authenticate(shared: &Shared, req: &Incoming<'_>, route: &RouteMatch) -> Result<Caller, Reply> {
    if route.resource.anonymous {
        return Ok(Caller {
            username: ADMIN_USER.to_string(),
        });
    }
    let params = signed_params(req.method, req.query, req.headers, &req.body);
    let base_url = format!("http://{}{}", host(req.headers), req.path);
    let signed = SignedRequest {
        method: req.method.as_str(),
        base_url: &base_url,
        params: &params,
    };
    let auth_header = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let mut nonces = lock(&shared.nonces);
    verify(
        auth_header,
        &signed,
        &shared.keys,
        &mut nonces,
        Timestamp::now().as_second(),
    )
    .map(|creds| Caller {
        username: creds.username,
    })
    .map_err(|e| Reply::text(StatusCode::UNAUTHORIZED, e.to_string()))
}

/// Injects the faults chosen for this request around the handler.
async fn apply(
    shared: &Shared,
    label: &str,
    action: &Action,
    route: &RouteMatch,
    caller: Caller,
    params: &Params,
) -> Reply {
    let decision = lock(&shared.faults).decide(label);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if decision.reset {
        return Reply::reset();
    }
    if let Some(e) = decision.error {
        return injected_reply(e);
    }
    let (deploy_fails, deploy_breaks) = if action.name == "deploy" {
        let mut faults = lock(&shared.faults);
        let fails = faults.deploy_fails(route.param("system_id"));
        (fails, !fails && faults.deploy_breaks())
    } else {
        (false, false)
    };
    let now = Timestamp::now();
    let outcome = {
        let mut world = lock(&shared.world);
        shared.advance(&mut world, now);
        let ctx = Ctx {
            caller,
            now,
            timing: shared.timing,
            route,
            params,
            deploy_fails,
            deploy_breaks,
        };
        handle(&mut world, &ctx, action.name)
    };
    if outcome.changed {
        shared.dirty.store(true, Ordering::Release);
    }
    shared.emit(outcome.events);
    // Applied and committed: whatever comes now, MAAS did it.
    match decision.after {
        None => outcome.reply,
        Some(AfterApply::Lose) => Reply::reset(),
        Some(AfterApply::Hold(hold)) => {
            let mut reply = outcome.reply;
            reply.hold = Some(hold);
            reply
        }
        Some(AfterApply::Fail(e)) => injected_reply(e),
    }
}

fn injected_reply(e: InjectedError) -> Reply {
    let mut reply = Reply::text(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        e.body,
    );
    reply.retry_after = e.retry_after;
    reply
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
    fn only_a_post_signs_its_form_body() {
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let keys = |method: Method, headers: &HeaderMap| -> Vec<String> {
            signed_params(&method, Some("op=x"), headers, b"a=1&b=2")
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys(Method::POST, &form), vec!["op", "a", "b"]);
        assert_eq!(keys(Method::PUT, &form), vec!["op"]);
        assert_eq!(keys(Method::POST, &HeaderMap::new()), vec!["op"]);
    }

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
        assert!(matches!(
            resolve("/MAAS/api/2.0/tags/gpu/op-update_nodes"),
            Target::Route(m) if m.path_op.as_deref() == Some("update_nodes")
        ));
        assert_eq!(
            resolve("/MAAS/api/2.0/tags/gpu/op-update_nodes/"),
            Target::NotFound
        );
        assert_eq!(resolve("/MAAS/api/2.0/tags/gpu/op-nope"), Target::NotFound);
        assert_eq!(resolve("/elsewhere/"), Target::NotFound);
    }
}
