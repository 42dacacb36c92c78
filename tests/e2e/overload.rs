//! The edge under slow and greedy clients (issue 12, "overload and slow clients"): a
//! request whose body never arrives holds no call slot and is ended after the body
//! read timeout, and one source address cannot take the capacity others share.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use fusion_e2e::Stack;
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::import_leads_request::Payload;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;

/// A bound on anything that must happen "at once": a hang fails instead of stalling.
const NO_HANG: Duration = Duration::from_secs(10);

/// A channel to the edge whose connections come from `source` (any 127.0.0.0/8
/// address is this machine's loopback).
async fn channel_from(stack: &Stack, source: &str) -> Channel {
    Endpoint::from_shared(format!("http://{}", stack.edge.grpc_addr()))
        .unwrap()
        .local_address(Some(source.parse::<IpAddr>().unwrap()))
        .connect()
        .await
        .expect("the edge answers")
}

type BodySender = mpsc::Sender<Result<Frame<Bytes>, tonic::Status>>;

/// Sends the headers of a unary Login and keeps its body open without a byte: what a
/// slow or hostile client does. Returns the body's sender (dropping it ends the body)
/// and the pending response's grpc-status.
fn withheld_login(channel: Channel) -> (BodySender, tokio::task::JoinHandle<Option<String>>) {
    let (sender, receiver) = mpsc::channel(1);
    let body = tonic::body::Body::new(http_body_util::StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(receiver),
    ));
    let req = http::Request::builder()
        .method("POST")
        .uri("/fusion.identity.v1.AuthService/Login")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let call = tokio::spawn(async move {
        let response = tower::ServiceExt::oneshot(channel, req)
            .await
            .expect("an HTTP/2 response");
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    (sender, call)
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_is_ended_and_holds_no_call_slot() {
    let stack = Stack::spawn(|c| {
        c.max_concurrency = 2;
        c.body_read_timeout = Duration::from_millis(1500);
    })
    .await;
    let channel = channel_from(&stack, "127.0.0.1").await;
    // More withheld bodies than the edge has call slots.
    let withheld: Vec<_> = (0..3).map(|_| withheld_login(channel.clone())).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every slot is still free for a caller that sends its request whole.
    let keys = tokio::time::timeout(
        NO_HANG,
        AuthServiceClient::new(channel.clone()).get_jwks(pb::GetJwksRequest::default()),
    )
    .await
    .expect("answered at once")
    .expect("withheld bodies hold no call slot");
    assert!(!keys.get_ref().keys.is_empty());

    // And the withheld calls end on their own with DEADLINE_EXCEEDED.
    for (sender, call) in withheld {
        let status = tokio::time::timeout(NO_HANG, call)
            .await
            .expect("a withheld body is not waited for until the call's deadline")
            .unwrap();
        assert_eq!(
            status.as_deref(),
            Some((Code::DeadlineExceeded as i32).to_string().as_str())
        );
        drop(sender);
    }
}

#[tokio::test]
async fn one_source_cannot_take_the_capacity_other_sources_share() {
    let stack = Stack::spawn(|c| c.max_concurrency_per_source = 1).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let greedy = channel_from(&stack, "127.0.0.2").await;

    // The greedy source holds its one slot with an import it never finishes.
    let (rows, stream) = mpsc::channel(4);
    rows.send(crmpb::ImportLeadsRequest {
        payload: Some(Payload::Options(crmpb::ImportLeadsOptions {
            dry_run: true,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut importer = LeadServiceClient::new(greedy.clone());
    let request = stack.authed(&acme, tokio_stream::wrappers::ReceiverStream::new(stream));
    let import = tokio::spawn(async move { importer.import_leads(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refused = tokio::time::timeout(
        NO_HANG,
        LeadServiceClient::new(greedy)
            .list_leads(stack.authed(&acme, crmpb::ListLeadsRequest::default())),
    )
    .await
    .expect("answered at once")
    .expect_err("the source is at its limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(fusion_testkit::reason(&refused), "SOURCE_AT_CAPACITY");

    // Another source is served meanwhile.
    let other = channel_from(&stack, "127.0.0.3").await;
    LeadServiceClient::new(other)
        .list_leads(stack.authed(&acme, crmpb::ListLeadsRequest::default()))
        .await
        .expect("another source is served");

    // Finishing the import gives the slot back.
    drop(rows);
    tokio::time::timeout(NO_HANG, import)
        .await
        .expect("the import ends with its stream")
        .unwrap()
        .expect("a dry run with no rows");
}
