//! `rest_client_requests_total`, as client-go counts it: every request of the Kubernetes client
//! by status code, method and host, through a tower layer on the client's stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::Metrics;

/// The layer: counts into `metrics`, labelled with the API server's `host`.
#[derive(Clone, Debug)]
pub struct RestClientMetrics {
    metrics: Arc<Metrics>,
    host: Arc<str>,
}

impl RestClientMetrics {
    /// A layer counting requests to `host` (the API server's `host:port`).
    pub fn new(metrics: Arc<Metrics>, host: &str) -> Self {
        RestClientMetrics {
            metrics,
            host: Arc::from(host),
        }
    }
}

impl<S> Layer<S> for RestClientMetrics {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            counts: self.clone(),
        }
    }
}

/// The client's service with its requests counted.
#[derive(Clone, Debug)]
pub struct Counted<S> {
    inner: S,
    counts: RestClientMetrics,
}

impl<S, B, RB> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let counts = self.counts.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            // client-go's label for a request that got no answer.
            let code = match &result {
                Ok(response) => response.status().as_str().to_string(),
                Err(_) => "<error>".to_string(),
            };
            counts.metrics.rest_request(&code, &method, &counts.host);
            result
        })
    }
}
