//! A tower layer made from one async function, so each concern of the edge is a
//! short function that reads top to bottom: look at the request, maybe answer it
//! directly, otherwise pass it to `next`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceExt as _};

/// The rest of the stack, type-erased so one function serves at any depth.
pub type Inner = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// What a middleware function returns.
pub type Fut = BoxFuture<'static, Response<Body>>;

/// The rest of the stack below a middleware.
pub struct Next {
    inner: Inner,
}

impl Next {
    /// Passes the request on.
    pub async fn run(self, req: Request<Body>) -> Response<Body> {
        match self.inner.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// A layer running `f(request, next)` for every call.
pub struct FnLayer<F> {
    f: Arc<F>,
}

impl<F> FnLayer<F>
where
    F: Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self { f: Arc::new(f) }
    }
}

impl<F> Clone for FnLayer<F> {
    fn clone(&self) -> Self {
        Self { f: self.f.clone() }
    }
}

impl<S, F> Layer<S> for FnLayer<F>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Service = FnService<F>;

    fn layer(&self, inner: S) -> Self::Service {
        FnService {
            inner: BoxCloneService::new(inner),
            f: self.f.clone(),
        }
    }
}

/// The service [`FnLayer`] builds.
pub struct FnService<F> {
    inner: Inner,
    f: Arc<F>,
}

impl<F> Clone for FnService<F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            f: self.f.clone(),
        }
    }
}

impl<F> Service<Request<Body>> for FnService<F>
where
    F: Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is checked by `Next::run` (oneshot) on the clone that serves the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let next = Next {
            inner: self.inner.clone(),
        };
        let fut = (self.f)(req, next);
        Box::pin(async move { Ok(fut.await) })
    }
}

/// A gRPC error as an HTTP response (trailers-only).
pub fn reply(status: tonic::Status) -> Response<Body> {
    status.into_http()
}
