//! The probe and metrics HTTP servers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::runtime::metrics::{CONTENT_TYPE, Metrics};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::watch_health::WatchHealth;

/// Readiness: set once the controllers' reflector stores have their first full list (or at once
/// for a standby replica), and withdrawn while a watch fails.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    watches: WatchHealth,
}

impl Readiness {
    /// Marks the manager ready.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the manager is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.watches.problems(Instant::now()).is_empty()
    }

    /// The watch failures readiness reports.
    pub fn watch_health(&self) -> WatchHealth {
        self.watches.clone()
    }

    /// Why the manager is not ready, if it is not.
    fn problem(&self) -> Option<String> {
        let problems = self.watches.problems(Instant::now());
        if !problems.is_empty() {
            return Some(problems.join("\n"));
        }
        (!self.ready.load(Ordering::Acquire)).then(|| "caches not synced".to_string())
    }
}

/// `/healthz` and `/readyz`. The process is alive as long as it answers, so `/healthz` stays OK
/// (restarting fixes neither a Role nor a missing CRD) but says what readiness withholds.
pub fn probe_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn healthz(State(readiness): State<Readiness>) -> Response {
    match readiness.problem() {
        Some(why) => (StatusCode::OK, format!("ok; not ready: {why}")).into_response(),
        None => (StatusCode::OK, "ok").into_response(),
    }
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    match readiness.problem() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// `/metrics`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ServeError {
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` and serves `router` until `shutdown` fires. Returns once bound, with the bound
/// address (useful with port 0) and the server task.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: Shutdown,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.wait())
            .await
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_text(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn probes_metrics_and_graceful_stop() {
        let readiness = Readiness::default();
        let metrics = Arc::new(Metrics::new());
        metrics.reconciled(
            "maascluster",
            crate::runtime::metrics::ReconcileResult::Success,
            std::time::Duration::ZERO,
        );
        let shutdown = Shutdown::new();
        let router = probe_router(readiness.clone()).merge(metrics_router(metrics));
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), router, shutdown.clone())
            .await
            .unwrap();

        assert!(get_text(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get_text(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        readiness.set_ready(true);
        assert!(get_text(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        readiness
            .watch_health()
            .failed("maasmachine", "403 Forbidden".into(), Instant::now());
        let ready = get_text(addr, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(
            ready.ends_with("maasmachine watch failing: 403 Forbidden"),
            "{ready}"
        );
        let health = get_text(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(
            health.contains("not ready: maasmachine watch failing"),
            "{health}"
        );
        let m = get_text(addr, "/metrics").await;
        assert!(
            m.contains(
                r#"controller_runtime_reconcile_total{controller="maascluster",result="success"} 1"#
            ),
            "{m}"
        );

        shutdown.trigger();
        task.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
