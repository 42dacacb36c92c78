//! Overload protection every server runs behind: a bound on the calls in flight, shed
//! at once with RESOURCE_EXHAUSTED when it is reached (a queue would only turn a burst
//! into timeouts for everyone), and the caller's deadline carried into the handler.
//!
//! The deadline (`grpc-timeout`) is put in [`fusion_proto::deadline`] for the handler,
//! where the database layer turns what is left of it into the transaction's
//! `statement_timeout` and the outbound client layer into the downstream call's
//! `grpc-timeout`. tonic itself ends the handler at the deadline; this makes the work
//! it started end too.
//!
//! Health checks and reflection are never shed: a probe must see a busy process as
//! alive and ready, not as failing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::body::Body;
use tower::{Layer, Service};

use fusion_proto::deadline;

/// RPC paths never shed.
const EXEMPT_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// How long a shed caller is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bounds the calls in flight in one process and scopes each call's deadline.
#[derive(Clone, Debug)]
pub struct CallLimitLayer {
    permits: Option<Arc<Semaphore>>,
}

impl CallLimitLayer {
    /// At most `max_in_flight` calls at once, more refused at once; `None`: no bound
    /// here (the deadline is still scoped).
    pub fn new(max_in_flight: Option<usize>) -> Self {
        Self {
            permits: max_in_flight.map(|n| Arc::new(Semaphore::new(n.max(1)))),
        }
    }
}

impl<S> Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLimit {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// The service [`CallLimitLayer`] builds.
#[derive(Clone, Debug)]
pub struct CallLimit<S> {
    inner: S,
    permits: Option<Arc<Semaphore>>,
}

impl<S, B> Service<Request<B>> for CallLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let exempt = EXEMPT_PREFIXES
            .iter()
            .any(|p| req.uri().path().starts_with(p));
        let permit = match &self.permits {
            None => None,
            Some(_) if exempt => None,
            Some(permits) => match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::warn!(
                        method = req.uri().path(),
                        "shedding a call: too many in flight"
                    );
                    let status = fusion_proto::errors::resource_exhausted_with(
                        fusion_proto::errors::PLATFORM_DOMAIN,
                        "OVERLOADED",
                        RETRY_AFTER,
                    );
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            },
        };
        let deadline = req
            .headers()
            .get(deadline::GRPC_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_grpc_timeout)
            .map(|timeout| Instant::now() + timeout);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _permit = permit;
            deadline::scope(deadline, fut).await
        })
    }
}

/// HTTP/2 and message limits every server sets explicitly, rather than inheriting
/// whatever hyper and tonic default to in the release at hand.
pub mod http2 {
    use std::time::Duration;

    /// Streams one connection may have open at once; a client needing more opens
    /// another connection (and meets the in-flight bound there too).
    pub const MAX_CONCURRENT_STREAMS: u32 = 256;
    /// Bytes of request headers (metadata) one call may send, after HPACK decoding.
    pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
    /// Streams a client may open and reset before the server accepted them (the
    /// "rapid reset" attack, CVE-2023-44487): past this the connection is closed.
    pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 32;
    /// Ping an idle connection this often, and drop it if no answer comes within
    /// [`KEEPALIVE_TIMEOUT`]: a vanished client frees its streams.
    pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
    /// See [`KEEPALIVE_INTERVAL`].
    pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
    /// TCP keepalive on every accepted socket.
    pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
    /// Largest request message a server decodes (a media upload chunk, an import row
    /// batch); larger ones are refused with RESOURCE_EXHAUSTED before being read whole.
    pub const MAX_DECODING_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
    /// Largest response message a server encodes; a bug that builds a larger one fails
    /// that call rather than the memory of the caller.
    pub const MAX_ENCODING_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
}

/// Wraps a generated tonic server with the message size limits of [`http2`]:
/// `limited!(LeadServiceServer::new(api))`.
#[macro_export]
macro_rules! limited {
    ($server:expr) => {
        $server
            .max_decoding_message_size($crate::limits::http2::MAX_DECODING_MESSAGE_BYTES)
            .max_encoding_message_size($crate::limits::http2::MAX_ENCODING_MESSAGE_BYTES)
    };
}

/// How long a client stream may go without sending a message before the call ends, by
/// default (`ServiceConfig::stream_idle_timeout`): an upload or import that stalls must
/// not hold what the server set aside for it.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The next message of a client stream, `None` at its end; DEADLINE_EXCEEDED
/// (`STREAM_IDLE`) when none comes within `idle`.
pub async fn next_message<T>(
    stream: &mut tonic::Streaming<T>,
    idle: Duration,
    domain: &str,
) -> Result<Option<T>, tonic::Status> {
    match tokio::time::timeout(idle, stream.message()).await {
        Ok(message) => message,
        Err(_) => Err(fusion_proto::errors::deadline_exceeded(
            domain,
            "STREAM_IDLE",
            format!(
                "the client sent nothing for {}s; send the stream's messages without pausing",
                idle.as_secs()
            ),
        )),
    }
}
