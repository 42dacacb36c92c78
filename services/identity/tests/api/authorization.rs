//! Every non-public identity RPC, called without a valid token or without the
//! permission it declares: the tenancy layer refuses before any handler runs.

use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};

use fusion_identity::auth::keys::KeyRing;
use fusion_tenancy::{Claims, JwtConfig, TokenSigner};

use crate::helpers::{Session, TestApp, as_user, reason};

/// Calls `path` with an empty message (the layer answers before decoding it).
async fn call(app: &TestApp, path: &str, req: Request<()>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(req, PathAndQuery::try_from(path).unwrap(), codec)
        .await
        .map(|_| ())
}

fn with_token(token: &str, tenant: i64) -> Request<()> {
    let mut req = Request::new(());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req.metadata_mut()
        .insert("x-tenant-id", tenant.to_string().parse().unwrap());
    req
}

fn protected_methods() -> Vec<(String, String)> {
    let mut methods: Vec<(String, String)> = fusion_identity::grpc::policy()
        .declared()
        // A caller holding nothing is refused for the first permission declared.
        .map(|(path, perms)| (path.to_owned(), perms[0].clone()))
        .collect();
    methods.sort();
    // AuthService 1 (the rest are public), Tenant 6, Plan 6, User 9, Role 9,
    // ServiceAccount 11.
    assert_eq!(
        methods.len(),
        42,
        "every protected identity RPC is declared: {methods:?}"
    );
    methods
}

#[tokio::test]
async fn every_protected_rpc_refuses_missing_forged_and_expired_tokens() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let keys = KeyRing::load_or_create(&app.app.state().db).await.unwrap();
    let cfg = JwtConfig::default();

    let mut expired = Claims::new(
        &cfg,
        admin.tenant_id,
        admin.user_id,
        vec!["admin".into()],
        vec![],
        Duration::from_secs(60),
    );
    expired.exp = expired.iat - 3600;
    expired.nbf = expired.iat - 7200;
    let expired = keys.signer().sign(&expired);
    let stranger = TokenSigner::generate(keys.signer().kid().to_owned()).sign(&Claims::new(
        &cfg,
        admin.tenant_id,
        admin.user_id,
        vec![],
        vec![],
        Duration::from_secs(60),
    ));
    let mut wrong_audience = Claims::new(
        &cfg,
        admin.tenant_id,
        admin.user_id,
        vec![],
        vec![],
        Duration::from_secs(60),
    );
    wrong_audience.aud = "someone-else".into();
    let wrong_audience = keys.signer().sign(&wrong_audience);

    for (path, _) in protected_methods() {
        let status = call(&app, &path, Request::new(())).await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::Unauthenticated, "TOKEN_MISSING"),
            "{path}"
        );
        let status = call(&app, &path, with_token("not.a.jwt", admin.tenant_id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{path} with garbage");
        let status = call(&app, &path, with_token(&expired, admin.tenant_id))
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::Unauthenticated, "TOKEN_EXPIRED"),
            "{path}"
        );
        let status = call(&app, &path, with_token(&stranger, admin.tenant_id))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} signed by a stranger's key"
        );
        let status = call(&app, &path, with_token(&wrong_audience, admin.tenant_id))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} with the wrong audience"
        );
    }
}

#[tokio::test]
async fn every_protected_rpc_needs_its_permission() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    // A user with no role at all holds no permission.
    let (_, nobody) = app.create_user(&admin, "nobody@acme.test", &[]).await;
    for (path, permission) in protected_methods() {
        let status = call(
            &app,
            &path,
            with_token(&nobody.access_token, nobody.tenant_id),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{path}");
        let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
        assert_eq!(info.metadata["permission"], permission, "{path}");
    }
}

#[tokio::test]
async fn a_token_for_one_tenant_cannot_be_used_with_another_tenants_header() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.create_tenant("acme").await;
    let (globex, _) = app.create_tenant("globex").await;
    let forged = Session {
        tenant_id: globex.id,
        ..acme.clone()
    };
    let status = app
        .users()
        .list_users(as_user(&forged, Default::default()))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "TENANT_MISMATCH")
    );
}

#[tokio::test]
async fn tokens_with_a_pinned_algorithm_other_than_eddsa_are_refused() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    // Header {"alg":"none"} with the admin's real claims and no signature.
    let claims = admin.access_token.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let status = app
        .users()
        .list_users(as_user(
            &Session {
                access_token: none,
                ..admin.clone()
            },
            Default::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // HS256 keyed with the published public key (the classic key-confusion attack).
    let jwks = app
        .auth()
        .get_jwks(fusion_proto::identity::v1::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(jwks.keys[0].kid.clone());
    let claims = Claims::new(
        &JwtConfig::default(),
        admin.tenant_id,
        admin.user_id,
        vec![],
        vec!["identity.users.read".into()],
        Duration::from_secs(60),
    );
    let hs = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwks.keys[0].x.as_bytes()),
    )
    .unwrap();
    let status = app
        .users()
        .list_users(as_user(
            &Session {
                access_token: hs,
                ..admin
            },
            Default::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
