//! Login, refresh rotation, logout, throttling and key rotation.

use std::time::Duration;

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use fusion_tenancy::{JwksCache, JwtConfig, JwtVerifier, PublicKey, StaticKeys};

use crate::helpers::{PASSWORD, Session, TestApp, as_user, expect_code, reason, violated_fields};

async fn verifier_from_jwks(app: &TestApp) -> JwtVerifier {
    let jwks = app
        .auth()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        jwks.keys
            .iter()
            .all(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA" && k.r#use == "sig")
    );
    let keys = jwks
        .keys
        .into_iter()
        .map(|k| PublicKey { kid: k.kid, x: k.x })
        .collect();
    JwtVerifier::new(
        JwtConfig::default(),
        std::sync::Arc::new(JwksCache::new(
            std::sync::Arc::new(StaticKeys::new(keys)),
            Duration::from_secs(1),
        )),
    )
}

#[tokio::test]
async fn login_returns_a_token_that_verifies_against_the_published_jwks() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.create_tenant("acme").await;
    let r = app
        .auth()
        .login(pb::LoginRequest {
            email: "ADMIN@acme.test".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.token_type, "Bearer");
    assert_eq!(r.expires_in, 900);
    assert_eq!(r.tenant_id, tenant.id);
    let claims = verifier_from_jwks(&app)
        .await
        .verify(&r.access_token)
        .await
        .unwrap();
    assert_eq!(claims.tid, tenant.id);
    assert_eq!(claims.sub, r.user_id.to_string());
    assert_eq!(claims.roles, ["admin"]);
    assert!(claims.perms.contains(&"crm.leads.write".to_owned()));
    assert!(!claims.perms.iter().any(|p| p.starts_with("platform.")));
    let user = app
        .users()
        .get_user(as_user(
            &Session {
                tenant_id: r.tenant_id,
                user_id: r.user_id,
                access_token: r.access_token,
                refresh_token: r.refresh_token,
            },
            pb::GetUserRequest { id: r.user_id },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        user.last_login_time.is_some(),
        "last_login_at is maintained"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let wrong = expect_code(
        app.login("admin@acme.test", "wrong password!").await,
        Code::Unauthenticated,
    );
    let unknown = expect_code(
        app.login("nobody@acme.test", "wrong password!").await,
        Code::Unauthenticated,
    );
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(
        wrong.details(),
        unknown.details(),
        "the error details must not tell the two apart"
    );
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(reason(&wrong), reason(&unknown));
    let empty = expect_code(app.login("", "").await, Code::InvalidArgument);
    assert_eq!(violated_fields(&empty), ["email", "password"]);
    let huge = expect_code(
        app.login(&format!("{}@acme.test", "a".repeat(400)), &"p".repeat(5000))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&huge), ["email", "password"]);
}

#[tokio::test]
async fn deactivated_users_cannot_log_in_or_refresh() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (user, session) = app
        .create_user(&admin, "agent@acme.test", &["sales_agent"])
        .await;
    app.users()
        .deactivate_user(as_user(
            &admin,
            pb::DeactivateUserRequest {
                id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let status = expect_code(
        app.login("agent@acme.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: session.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    app.users()
        .activate_user(as_user(
            &admin,
            pb::ActivateUserRequest {
                id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    app.login("agent@acme.test", PASSWORD)
        .await
        .expect("reactivated user logs in");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let first = admin.refresh_token.clone();
    let second = app
        .auth()
        .refresh(pb::RefreshRequest {
            refresh_token: first.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(second.refresh_token, first);
    assert_eq!(second.tenant_id, admin.tenant_id);
    // The rotated-away token comes back: someone copied it. Both it and its child die.
    let status = expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: first,
            })
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "REFRESH_TOKEN_REUSED");
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: second.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    app.auth()
        .logout(pb::LogoutRequest {
            refresh_token: admin.refresh_token.clone(),
        })
        .await
        .unwrap();
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: admin.refresh_token.clone(),
            })
            .await,
        Code::Unauthenticated,
    );
    // Logging out twice, or with a token that never existed, is still fine.
    app.auth()
        .logout(pb::LogoutRequest {
            refresh_token: admin.refresh_token,
        })
        .await
        .unwrap();
    app.auth()
        .logout(pb::LogoutRequest {
            refresh_token: "rt_1_nonsense".into(),
        })
        .await
        .unwrap();
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: "garbage".into(),
            })
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_their_source_even_for_the_right_password() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_account = 3;
        c.throttle.lockout = Duration::from_secs(2);
    })
    .await;
    app.create_tenant("acme").await;
    for _ in 0..3 {
        expect_code(
            app.login("admin@acme.test", "wrong password!").await,
            Code::Unauthenticated,
        );
    }
    let status = expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "LOGIN_THROTTLED");
    let retry = tonic_types::StatusExt::get_details_retry_info(&status).unwrap();
    assert!(retry.retry_delay.unwrap() <= Duration::from_secs(2));
    // Unknown accounts are throttled the same way, so locking reveals nothing.
    for _ in 0..3 {
        expect_code(
            app.login("ghost@acme.test", "wrong password!").await,
            Code::Unauthenticated,
        );
    }
    expect_code(
        app.login("ghost@acme.test", "wrong password!").await,
        Code::ResourceExhausted,
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("the lock lapses");
}

#[tokio::test]
async fn repeated_failures_from_one_source_lock_that_source() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_source = 4;
        c.throttle.max_failures_per_account = 100;
    })
    .await;
    app.create_tenant("acme").await;
    for i in 0..4 {
        expect_code(
            app.login(&format!("guess{i}@acme.test"), "wrong password!")
                .await,
            Code::Unauthenticated,
        );
    }
    expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn rotated_keys_keep_verifying_old_tokens_and_sign_new_ones() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let old_kid = jsonwebtoken::decode_header(&admin.access_token)
        .unwrap()
        .kid
        .unwrap();
    let rotated = app
        .auth()
        .rotate_signing_key(as_user(&app.platform, pb::RotateSigningKeyRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.kid, old_kid);
    let jwks = app
        .auth()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let kids: Vec<_> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        [rotated.kid.as_str(), old_kid.as_str()],
        "newest first, old key still published"
    );
    // The token signed before the rotation still works...
    app.users()
        .get_user(as_user(&admin, pb::GetUserRequest { id: admin.user_id }))
        .await
        .unwrap();
    // ...and new tokens carry the new key id.
    let fresh = app.login("admin@acme.test", PASSWORD).await.unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&fresh.access_token)
            .unwrap()
            .kid
            .unwrap(),
        rotated.kid
    );
    app.users()
        .get_user(as_user(&fresh, pb::GetUserRequest { id: fresh.user_id }))
        .await
        .unwrap();
    // Tenant admins may not rotate platform keys.
    expect_code(
        app.auth()
            .rotate_signing_key(as_user(&admin, pb::RotateSigningKeyRequest {}))
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn an_expired_access_token_is_unauthenticated_until_refreshed() {
    let app = TestApp::spawn_with(|c| {
        c.access_token_ttl = Duration::from_secs(1);
        c.service.jwt.leeway = Duration::ZERO;
    })
    .await;
    let (_, admin) = app.create_tenant("acme").await;
    let claims =
        jsonwebtoken::dangerous::insecure_decode::<fusion_tenancy::Claims>(&admin.access_token)
            .unwrap()
            .claims;
    assert_eq!(claims.exp, claims.iat + 1);
    // Whole seconds: the token is dead once the clock passes `exp`.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = expect_code(
        app.users()
            .get_user(as_user(&admin, pb::GetUserRequest { id: admin.user_id }))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "TOKEN_EXPIRED");
    let refreshed = app
        .auth()
        .refresh(pb::RefreshRequest {
            refresh_token: admin.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let session = Session {
        access_token: refreshed.access_token,
        refresh_token: refreshed.refresh_token,
        ..admin
    };
    app.users()
        .get_user(as_user(
            &session,
            pb::GetUserRequest {
                id: session.user_id,
            },
        ))
        .await
        .expect("the refreshed token works");
}

#[tokio::test]
async fn a_login_token_is_bound_to_its_tenant() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.create_tenant("acme").await;
    let (globex, _) = app.create_tenant("globex").await;
    let mut req = as_user(&acme, pb::GetUserRequest { id: acme.user_id });
    req.metadata_mut()
        .insert("x-tenant-id", globex.id.to_string().parse().unwrap());
    let status = expect_code(app.users().get_user(req).await, Code::Unauthenticated);
    assert_eq!(reason(&status), "TENANT_MISMATCH");
    // A refresh token names its tenant; pointing it at another tenant finds nothing.
    let forged = acme.refresh_token.replacen(
        &format!("rt_{}_", acme.tenant_id),
        &format!("rt_{}_", globex.id),
        1,
    );
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: forged,
            })
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn a_session_does_not_outlive_its_tenant() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    // Deleted behind the service's back: the tenant's refresh tokens stay unrevoked.
    sqlx::query("UPDATE identity.tenants SET deleted_at = now() WHERE id = $1")
        .bind(tenant.id)
        .execute(app.app.state().db.pool())
        .await
        .unwrap();
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: admin.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn replicas_starting_together_share_one_key_and_pick_up_each_others_rotations() {
    use fusion_identity::auth::keys::KeyRing;
    use fusion_tenancy::KeyProvider as _;

    let database = fusion_testkit::TestDatabase::create(&[(
        fusion_identity::SCHEMA,
        &fusion_identity::MIGRATOR,
    )])
    .await;
    let db = fusion_db::Db::connect(&fusion_db::DbConfig::new(
        database.app_url(fusion_identity::SCHEMA),
    ))
    .await
    .unwrap();
    let replicas = futures::future::try_join_all((0..4).map(|_| KeyRing::load_or_create(&db)))
        .await
        .unwrap();
    let first = replicas[0].signer().kid().to_owned();
    assert!(replicas.iter().all(|r| r.signer().kid() == first));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.signing_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        stored, 1,
        "one key, however many replicas raced to create it"
    );

    let second = replicas[0].rotate(Duration::from_secs(600)).await.unwrap();
    // Another replica meets the new kid in a token and asks for keys: it reloads.
    let seen: Vec<_> = replicas[1]
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(seen, [second.clone(), first.clone()]);
    assert_eq!(replicas[1].signer().kid(), second);

    // A rotation with no grace period drops the retired key from the published set.
    let third = replicas[1].rotate(Duration::ZERO).await.unwrap();
    let seen: Vec<_> = replicas[2]
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        seen,
        [third, first],
        "the first key still has its grace period"
    );
}

#[tokio::test]
async fn stale_throttle_counters_are_purged_but_pending_locks_are_kept() {
    use fusion_identity::auth::throttle;

    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_account = 2;
        c.throttle.max_failures_per_source = 100;
        c.throttle.lockout = Duration::from_secs(600);
    })
    .await;
    app.create_tenant("acme").await;
    expect_code(
        app.login("once@acme.test", "wrong password!").await,
        Code::Unauthenticated,
    );
    for _ in 0..2 {
        expect_code(
            app.login("admin@acme.test", "wrong password!").await,
            Code::Unauthenticated,
        );
    }
    let db = &app.app.state().db;
    // A zero window makes every counter stale; only the lock decides what stays.
    throttle::purge_stale(db, Duration::ZERO).await.unwrap();
    let left: Vec<String> =
        sqlx::query_scalar("SELECT key FROM identity.login_throttle ORDER BY key")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(left, ["acct:admin@acme.test|src:127.0.0.1"]);
    expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::ResourceExhausted,
    );
}
