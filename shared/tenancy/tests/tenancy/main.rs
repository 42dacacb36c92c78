//! The tenancy layer and its client twin, on real in-process gRPC servers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use tonic_types::StatusExt as _;

use fusion_tenancy::{
    ForwardContextLayer, JwksCache, JwtVerifier, KeyProvider, MethodPolicy, PublicKey,
    TenantContext, TenantLayer, TokenSigner,
};
use fusion_testkit::{TestKeys, bind_ephemeral, connect_channel};

const CHECK: &str = "/grpc.health.v1.Health/Check";

/// What a handler saw.
#[derive(Clone, Debug)]
struct Seen {
    context: TenantContext,
    current: Option<TenantContext>,
}

/// A Health service that records its caller and, when given a downstream channel,
/// calls it through the client twin before answering.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    downstream: Option<Channel>,
}

#[tonic::async_trait]
impl Health for Recorder {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let context = TenantContext::from_request(&req)?;
        self.seen.lock().unwrap().push(Seen {
            context,
            current: TenantContext::current(),
        });
        if let Some(channel) = &self.downstream {
            let forwarding = tower::ServiceBuilder::new()
                .layer(ForwardContextLayer)
                .service(channel.clone());
            HealthClient::new(forwarding)
                .check(HealthCheckRequest::default())
                .await?;
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _req: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(futures::stream::empty()))
    }
}

async fn serve(
    verifier: Arc<JwtVerifier>,
    downstream: Option<Channel>,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Check needs a permission; Watch is deliberately left undeclared.
    let policy = MethodPolicy::default().require(CHECK, "test.health.read");
    let listener = bind_ephemeral().await;
    let addr = listener.local_addr().unwrap();
    let svc = HealthServer::new(Recorder {
        seen: seen.clone(),
        downstream,
    });
    tokio::spawn(
        Server::builder()
            .layer(TenantLayer::new(verifier, policy))
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, seen)
}

fn call(token: Option<&str>, tenant: Option<i64>) -> Request<HealthCheckRequest> {
    let mut req = Request::new(HealthCheckRequest::default());
    if let Some(token) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(tenant) = tenant {
        req.metadata_mut()
            .insert("x-tenant-id", tenant.to_string().parse().unwrap());
    }
    req
}

async fn client(addr: SocketAddr) -> HealthClient<Channel> {
    HealthClient::new(connect_channel(addr).await)
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_tenant_context() {
    let keys = TestKeys::new();
    let (addr, seen) = serve(keys.verifier(), None).await;
    let token = keys.mint(7, 42, &["test.health.read"]);
    let mut req = call(Some(&token), Some(7));
    req.metadata_mut()
        .insert("x-request-id", "req-1".parse().unwrap());
    client(addr).await.check(req).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let ctx = &seen[0].context;
    assert_eq!(
        (ctx.tenant_id, ctx.user_id, ctx.request_id.as_deref()),
        (7, 42, Some("req-1"))
    );
    assert!(ctx.has("test.health.read"));
    assert!(!ctx.service_account, "a person's token");
    assert_eq!(
        seen[0].current.as_ref(),
        Some(ctx),
        "the handler's task sees the same context"
    );
}

#[tokio::test]
async fn a_service_accounts_token_says_so_in_the_tenant_context() {
    let keys = TestKeys::new();
    let (addr, seen) = serve(keys.verifier(), None).await;
    let claims = keys
        .claims(7, 43, &["test.health.read"])
        .for_service_account();
    let token = keys.sign(&claims);
    client(addr)
        .await
        .check(call(Some(&token), Some(7)))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let ctx = &seen[0].context;
    assert_eq!((ctx.tenant_id, ctx.user_id), (7, 43));
    assert!(ctx.service_account);
}

#[tokio::test]
async fn bad_tokens_and_headers_are_unauthenticated() {
    let keys = TestKeys::new();
    let (addr, _) = serve(keys.verifier(), None).await;
    let mut c = client(addr).await;
    let good = keys.mint(7, 42, &["test.health.read"]);
    let cases: Vec<(Request<HealthCheckRequest>, &str)> = vec![
        (call(None, Some(7)), "TOKEN_MISSING"),
        (call(Some("garbage"), Some(7)), "TOKEN_INVALID"),
        (call(Some(&good), None), "TENANT_MISSING"),
        (call(Some(&good), Some(8)), "TENANT_MISMATCH"),
        (
            {
                let mut r = call(Some(&good), Some(7));
                r.metadata_mut().insert("x-user-id", "43".parse().unwrap());
                r
            },
            "USER_MISMATCH",
        ),
        (
            call(
                Some(&keys.sign(&{
                    let mut c = keys.claims(7, 42, &[]);
                    c.exp = c.iat - 600;
                    c
                })),
                Some(7),
            ),
            "TOKEN_EXPIRED",
        ),
        (
            call(
                Some(&keys.sign(&{
                    let mut c = keys.claims(7, 42, &[]);
                    c.nbf = c.iat + 600;
                    c
                })),
                Some(7),
            ),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            call(
                Some(&keys.sign(&{
                    let mut c = keys.claims(7, 42, &[]);
                    c.iss = "evil".into();
                    c
                })),
                Some(7),
            ),
            "TOKEN_INVALID",
        ),
        (
            call(
                Some(&keys.sign(&{
                    let mut c = keys.claims(7, 42, &[]);
                    c.aud = "other-api".into();
                    c
                })),
                Some(7),
            ),
            "TOKEN_INVALID",
        ),
        (
            call(
                Some(
                    &TokenSigner::generate(keys.signer.kid().to_owned()).sign(&keys.claims(
                        7,
                        42,
                        &[],
                    )),
                ),
                Some(7),
            ),
            "TOKEN_INVALID",
        ),
    ];
    for (req, expected) in cases {
        let status = c.check(req).await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::Unauthenticated, expected)
        );
    }
}

#[tokio::test]
async fn a_missing_permission_or_an_undeclared_method_is_permission_denied() {
    let keys = TestKeys::new();
    let (addr, seen) = serve(keys.verifier(), None).await;
    let mut c = client(addr).await;
    let status = c
        .check(call(
            Some(&keys.mint(7, 42, &["other.thing.read"])),
            Some(7),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["permission"],
        "test.health.read"
    );
    let status = c
        .watch(call(
            Some(&keys.mint(7, 42, &["test.health.read"])),
            Some(7),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "fail closed");
    assert!(seen.lock().unwrap().is_empty(), "no handler ran");
}

#[tokio::test]
async fn the_client_twin_carries_the_callers_identity_to_the_next_service() {
    let keys = TestKeys::new();
    let (downstream_addr, downstream_seen) = serve(keys.verifier(), None).await;
    let downstream = connect_channel(downstream_addr).await;
    let (addr, _) = serve(keys.verifier(), Some(downstream)).await;
    let token = keys.mint(7, 42, &["test.health.read"]);
    let mut req = call(Some(&token), Some(7));
    req.metadata_mut()
        .insert("x-request-id", "req-forwarded".parse().unwrap());
    client(addr).await.check(req).await.unwrap();
    let seen = downstream_seen.lock().unwrap().clone();
    let ctx = &seen[0].context;
    assert_eq!((ctx.tenant_id, ctx.user_id), (7, 42));
    assert_eq!(ctx.request_id.as_deref(), Some("req-forwarded"));
    assert_eq!(ctx.bearer.as_deref(), Some(token.as_str()));
}

/// Counts how often the cache asks for keys.
struct Counting {
    keys: Mutex<Vec<PublicKey>>,
    fetches: Mutex<u32>,
}

impl KeyProvider for Counting {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<PublicKey>, String>> {
        *self.fetches.lock().unwrap() += 1;
        let keys = self.keys.lock().unwrap().clone();
        Box::pin(async move { Ok(keys) })
    }
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_key_set_at_most_once_per_interval() {
    let old = TokenSigner::generate("old");
    let new = TokenSigner::generate("new");
    let provider = Arc::new(Counting {
        keys: Mutex::new(vec![old.public_key()]),
        fetches: Mutex::new(0),
    });
    let cache = JwksCache::new(provider.clone(), Duration::from_millis(300));
    assert!(cache.key("old").await.is_some());
    assert!(cache.key("old").await.is_some());
    assert_eq!(
        *provider.fetches.lock().unwrap(),
        1,
        "known keys are served from the cache"
    );
    // A rotation elsewhere: the new kid is unknown until the next allowed refresh.
    provider.keys.lock().unwrap().push(new.public_key());
    assert!(cache.key("new").await.is_none(), "refresh is rate-limited");
    assert!(cache.key("garbage").await.is_none());
    assert_eq!(*provider.fetches.lock().unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(cache.key("new").await.is_some());
    assert_eq!(*provider.fetches.lock().unwrap(), 2);
}

/// The headers an outbound call carries through the client twin.
async fn forwarded_headers(explicit_timeout: Option<&str>) -> http::HeaderMap {
    let seen = Arc::new(Mutex::new(http::HeaderMap::new()));
    let record = seen.clone();
    let mut client = tower::ServiceBuilder::new()
        .layer(ForwardContextLayer)
        .service(tower::service_fn(move |req: http::Request<()>| {
            *record.lock().unwrap() = req.headers().clone();
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    let mut req = http::Request::new(());
    if let Some(timeout) = explicit_timeout {
        req.headers_mut()
            .insert("grpc-timeout", timeout.parse().unwrap());
    }
    tower::Service::call(&mut client, req).await.unwrap();
    seen.lock().unwrap().clone()
}

fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(fusion_proto::deadline::parse_grpc_timeout)
}

#[tokio::test]
async fn outbound_calls_carry_what_is_left_of_the_served_calls_deadline() {
    use fusion_proto::deadline;

    // Without a deadline nothing is added.
    assert_eq!(grpc_timeout(&forwarded_headers(None).await), None);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    deadline::scope(Some(deadline), async {
        let sent = grpc_timeout(&forwarded_headers(None).await).expect("a grpc-timeout");
        assert!(
            sent <= Duration::from_secs(2) && sent > Duration::from_millis(1500),
            "{sent:?}"
        );
        // A caller's own shorter timeout stands; a longer one is cut to what is left.
        let shorter = grpc_timeout(&forwarded_headers(Some("100m")).await);
        assert_eq!(shorter, Some(Duration::from_millis(100)));
        let longer = grpc_timeout(&forwarded_headers(Some("60S")).await).unwrap();
        assert!(longer <= Duration::from_secs(2), "{longer:?}");
    })
    .await;
}
