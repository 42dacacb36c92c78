//! Helpers for running services in-process on ephemeral ports.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

/// A listener on `127.0.0.1:0`; read the port back with `local_addr()`.
pub async fn bind_ephemeral() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding an ephemeral port")
}

/// A loopback port free now, for a process of the test's own to listen on (a child
/// process binds it itself; an in-process server should use [`bind_ephemeral`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A channel to `addr`, retrying for up to five seconds while the server starts.
pub async fn connect_channel(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a valid address");
    for _ in 0..50 {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no gRPC server answered on {addr}")
}

/// Polls `probe` every 50 ms until it returns something, and returns that; panics
/// naming `what` when nothing came within `within`. For what a test waits to see
/// happen (an event applied, a process ready), never for timing it.
pub async fn until<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
