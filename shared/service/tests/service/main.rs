//! The server bootstrap: health, reflection, admin endpoints, metrics, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt as _;
use tonic::service::Routes;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use fusion_service::{Readiness, Server, ServerOptions};
use fusion_tenancy::{MethodPolicy, TenantLayer};
use fusion_testkit::{TestKeys, bind_ephemeral, connect_channel};

/// A plain HTTP/1.1 GET: status code and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn start(drain: Duration, deadline: Duration, ready: bool) -> Server {
    let keys = TestKeys::new();
    let readiness: Readiness = Arc::new(move || Box::pin(async move { ready }));
    Server::start(
        bind_ephemeral().await,
        bind_ephemeral().await,
        Routes::default(),
        TenantLayer::new(keys.verifier(), MethodPolicy::new()),
        readiness,
        ServerOptions {
            health_services: vec!["test.v1.ThingService".into()],
            file_descriptor_sets: vec![],
            drain,
            shutdown_deadline: deadline,
            max_in_flight: Some(64),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn health_and_admin_endpoints_answer_and_calls_are_counted() {
    let server = start(Duration::ZERO, Duration::from_secs(5), true).await;
    let mut health = HealthClient::new(connect_channel(server.grpc_addr()).await);
    for service in ["", "test.v1.ThingService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    assert_eq!(get(server.admin_addr(), "/live").await.0, 200);
    assert_eq!(get(server.admin_addr(), "/ready").await.0, 200);
    let (code, metrics) = get(server.admin_addr(), "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            r#"grpc_server_requests_total{method="/grpc.health.v1.Health/Check",code="0"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("grpc_server_request_duration_seconds_bucket"));
    // A method nobody serves is refused by the tenancy layer before routing: an
    // anonymous caller learns nothing about which methods exist.
    let mut grpc = tonic::client::Grpc::new(connect_channel(server.grpc_addr()).await);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(()),
            tonic::codegen::http::uri::PathAndQuery::from_static("/test.v1.Nope/Call"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    server.stop();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn not_ready_when_the_readiness_probe_fails() {
    let server = start(Duration::ZERO, Duration::from_secs(5), false).await;
    assert_eq!(get(server.admin_addr(), "/ready").await.0, 503);
    assert_eq!(get(server.admin_addr(), "/live").await.0, 200);
    server.stop();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn shutdown_goes_not_serving_then_drains_then_stops_within_the_deadline() {
    let drain = Duration::from_millis(500);
    let deadline = Duration::from_secs(1);
    let server = start(drain, deadline, true).await;
    let admin = server.admin_addr();
    let mut health = HealthClient::new(connect_channel(server.grpc_addr()).await);
    // A watch is a call that never ends on its own: the deadline has to cut it off.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "test.v1.ThingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    let started = Instant::now();
    server.stop();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    assert_eq!(get(admin, "/ready").await.0, 503, "draining");
    assert_eq!(
        get(admin, "/live").await.0,
        200,
        "still alive while draining"
    );
    server.wait().await.unwrap();
    let took = started.elapsed();
    assert!(took >= drain, "the drain window is honoured ({took:?})");
    assert!(
        took < drain + deadline + Duration::from_secs(5),
        "stopped within the deadline ({took:?})"
    );
}
