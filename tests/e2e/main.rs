//! Cross-service behaviour through the edge.

mod aimarketing;
mod architecture;
mod conventions;
mod crm;
mod finance;
mod flows;
mod grpcurl;
mod overload;
mod property;
mod revocation;
mod service_accounts;
mod tenant_states;

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_types::StatusExt as _;

use fusion_e2e::{Login, Stack, start_identity, with_token};
use fusion_identity::auth::keys::KeyRing;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_tenancy::{Claims, JwtConfig, TokenSigner};

fn users(stack: &Stack) -> UserServiceClient<tonic::transport::Channel> {
    UserServiceClient::new(stack.channel.clone())
}

async fn list_emails(stack: &Stack, req: tonic::Request<pb::ListUsersRequest>) -> Vec<String> {
    users(stack)
        .list_users(req)
        .await
        .expect("list users")
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.email)
        .collect()
}

#[tokio::test]
async fn login_then_call_through_the_edge_with_only_a_token() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let response = users(&stack)
        .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
        .await
        .unwrap();
    assert!(
        response.metadata().get("x-request-id").is_some(),
        "the edge sets and echoes a request id"
    );
    let emails: Vec<_> = response
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["admin@acme.test"]);
    let mut req = stack.authed(&acme, pb::ListUsersRequest::default());
    req.metadata_mut()
        .insert("x-request-id", "trace-me-42".parse().unwrap());
    let response = users(&stack).list_users(req).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "trace-me-42"
    );
}

#[tokio::test]
async fn a_spoofed_tenant_header_is_ignored_and_other_tenants_rows_stay_invisible() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let mut spoofed = stack.authed(&acme, pb::ListUsersRequest::default());
    spoofed
        .metadata_mut()
        .insert("x-tenant-id", globex.tenant_id.to_string().parse().unwrap());
    spoofed
        .metadata_mut()
        .insert("x-user-id", globex.user_id.to_string().parse().unwrap());
    assert_eq!(list_emails(&stack, spoofed).await, ["admin@acme.test"]);
    let status = users(&stack)
        .get_user(stack.authed(&acme, pb::GetUserRequest { id: globex.user_id }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = users(&stack)
        .delete_user(stack.authed(
            &acme,
            pb::DeleteUserRequest {
                id: globex.user_id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // Globex's admin still exists and can still log in.
    stack.login("admin@globex.test").await.unwrap();
}

#[tokio::test]
async fn forged_expired_and_confused_tokens_are_unauthenticated_at_the_edge() {
    let stack = Stack::spawn(|_| {}).await;
    let acme: Login = stack.login("admin@acme.test").await.unwrap();
    let keys = KeyRing::load_or_create(&stack.db.app_db(fusion_identity::SCHEMA).await)
        .await
        .unwrap();
    let cfg = JwtConfig::default();
    let claims = || {
        Claims::new(
            &cfg,
            acme.tenant_id,
            acme.user_id,
            vec!["admin".into()],
            vec!["identity.users.read".into()],
            Duration::from_secs(300),
        )
    };

    let mut expired = claims();
    expired.exp = expired.iat - 600;
    let mut wrong_aud = claims();
    wrong_aud.aud = "not-fusion".into();
    let mut wrong_iss = claims();
    wrong_iss.iss = "someone-else".into();
    let payload = acme.token.split('.').nth(1).unwrap();
    let jwks = fusion_proto::identity::v1::auth_service_client::AuthServiceClient::new(
        stack.channel.clone(),
    )
    .get_jwks(pb::GetJwksRequest {})
    .await
    .unwrap()
    .into_inner();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(jwks.keys[0].kid.clone());
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs_header,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(jwks.keys[0].x.as_bytes()),
    )
    .unwrap();

    let cases = [
        ("expired", keys.signer().sign(&expired)),
        (
            "unsigned",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        ),
        (
            "wrong key",
            TokenSigner::generate(keys.signer().kid().to_owned()).sign(&claims()),
        ),
        ("HS256 keyed with the public key", hs256_with_public_key),
        ("wrong audience", keys.signer().sign(&wrong_aud)),
        ("wrong issuer", keys.signer().sign(&wrong_iss)),
        ("garbage", "garbage".to_owned()),
    ];
    for (what, token) in cases {
        let status = users(&stack)
            .list_users(with_token(&token, pb::ListUsersRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{what}");
    }
    let status = users(&stack)
        .list_users(tonic::Request::new(pb::ListUsersRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "no token");
    // The real token still works.
    users(&stack)
        .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_rate_limit_trips_per_tenant_and_recovers() {
    let stack = Stack::spawn(|c| {
        c.rate_per_second = 4.0;
        c.rate_burst = 3.0;
    })
    .await;
    // Setup used the platform tenant's and the anonymous buckets; acme starts full.
    let acme = stack.login("admin@acme.test").await.unwrap();
    let mut allowed = 0;
    let limited = loop {
        match users(&stack)
            .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
            .await
        {
            Ok(response) => {
                assert!(response.metadata().get("x-ratelimit-remaining").is_some());
                allowed += 1;
                assert!(
                    allowed <= 4,
                    "the bucket holds 3 (plus what refills meanwhile)"
                );
            }
            Err(status) => break status,
        }
    };
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert!(
        limited
            .get_details_retry_info()
            .unwrap()
            .retry_delay
            .unwrap()
            <= Duration::from_secs(1)
    );
    assert!(limited.metadata().get("x-ratelimit-reset").is_some());
    // Another tenant has its own bucket.
    let globex = stack.login("admin@globex.test").await.unwrap();
    users(&stack)
        .list_users(stack.authed(&globex, pb::ListUsersRequest::default()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    users(&stack)
        .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
        .await
        .expect("the bucket refilled");
}

#[tokio::test]
async fn an_upstream_that_dies_is_unavailable_and_the_edge_recovers_when_it_returns() {
    let mut stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    stack.identity.take().unwrap().stop().await.unwrap();
    let status = users(&stack)
        .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        !status.message().contains("127.0.0.1"),
        "no internal address leaks: {status:?}"
    );
    // Bring identity back on the same port; the edge's prober puts it back.
    let listener = tokio::net::TcpListener::bind(stack.identity_addr)
        .await
        .unwrap();
    stack.identity = Some(start_identity(&stack.db, listener).await);
    let started = Instant::now();
    loop {
        match users(&stack)
            .list_users(stack.authed(&acme, pb::ListUsersRequest::default()))
            .await
        {
            Ok(_) => break,
            Err(status) if started.elapsed() < Duration::from_secs(20) => {
                assert_eq!(status.code(), Code::Unavailable);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("the edge did not recover: {status:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_methods_and_unrouted_packages_are_unimplemented() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let mut grpc = tonic::client::Grpc::new(stack.channel.clone());
    for path in [
        "/fusion.identity.v1.UserService/Nope",
        "/fusion.reporting.v1.ReportService/ListReports",
        "/nope.v1.X/Y",
    ] {
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                with_token(&acme.token, ()),
                tonic::codegen::http::uri::PathAndQuery::try_from(path).unwrap(),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
    }
}
