//! Authentication that cannot be turned against users: the source a login is throttled
//! by is the edge's signed client address or the TCP peer, never what a caller claims;
//! a guesser's failures lock out only its own source; password hashing is bounded; dead
//! refresh tokens are pruned.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_tenancy::ForwardingKey;
use fusion_tenancy::forwarded::{CLIENT_ADDR, now_secs};

use crate::helpers::{PASSWORD, TestApp, expect_code, reason};

const LOGIN: &str = "/fusion.identity.v1.AuthService/Login";

fn login_request(email: &str, password: &str) -> tonic::Request<pb::LoginRequest> {
    tonic::Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
    })
}

async fn login_on(
    channel: &Channel,
    req: tonic::Request<pb::LoginRequest>,
) -> Result<pb::LoginResponse, tonic::Status> {
    AuthServiceClient::new(channel.clone())
        .login(req)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_forged_forwarded_for_on_a_direct_call_is_not_the_source() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_source = 3;
        c.throttle.max_failures_per_account = 100;
    })
    .await;
    app.create_tenant("acme").await;
    // A direct caller names a new "source" on every guess; were it believed, no
    // source would ever reach the limit.
    for i in 0..3 {
        let mut req = login_request(&format!("guess{i}@acme.test"), "wrong password!");
        req.metadata_mut()
            .insert("x-forwarded-for", format!("203.0.113.{i}").parse().unwrap());
        expect_code(login_on(&app.channel, req).await, Code::Unauthenticated);
    }
    let mut req = login_request("admin@acme.test", PASSWORD);
    req.metadata_mut()
        .insert("x-forwarded-for", "198.51.100.99".parse().unwrap());
    let status = expect_code(login_on(&app.channel, req).await, Code::ResourceExhausted);
    assert_eq!(reason(&status), "LOGIN_THROTTLED");
    // An address in the edge's own header, without the edge's tag, is no better.
    let mut req = login_request("admin@acme.test", PASSWORD);
    req.metadata_mut()
        .insert(CLIENT_ADDR, "198.51.100.99".parse().unwrap());
    expect_code(login_on(&app.channel, req).await, Code::ResourceExhausted);
}

#[tokio::test]
async fn failures_from_one_source_never_lock_the_account_out_for_another_source() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_account = 3;
        c.throttle.max_failures_per_source = 100;
        c.throttle.lockout = Duration::from_secs(600);
    })
    .await;
    app.create_tenant("acme").await;
    let attacker = app.channel_from("127.0.0.2").await;
    for _ in 0..3 {
        expect_code(
            login_on(
                &attacker,
                login_request("admin@acme.test", "wrong password!"),
            )
            .await,
            Code::Unauthenticated,
        );
    }
    // The guessing source is locked out of the account, even with the right password.
    let status = expect_code(
        login_on(&attacker, login_request("admin@acme.test", PASSWORD)).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "LOGIN_THROTTLED");
    let retry = tonic_types::StatusExt::get_details_retry_info(&status).unwrap();
    assert!(retry.retry_delay.unwrap() > Duration::from_secs(500));
    // The owner, elsewhere, logs in as if nothing happened.
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("the account's owner logs in from another source");
    // The owner's success does not lift the attacker's lock.
    expect_code(
        login_on(&attacker, login_request("admin@acme.test", PASSWORD)).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn a_lock_doubles_with_every_failure_after_it() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.max_failures_per_account = 2;
        c.throttle.max_failures_per_source = 100;
        c.throttle.lockout = Duration::from_secs(60);
    })
    .await;
    app.create_tenant("acme").await;
    for _ in 0..2 {
        expect_code(
            app.login("admin@acme.test", "wrong password!").await,
            Code::Unauthenticated,
        );
    }
    let db = app.app.state().db.pool();
    let lock = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM locked_until - now())::float8 FROM identity.login_throttle
             WHERE key = 'acct:admin@acme.test|src:127.0.0.1'",
        )
        .fetch_one(db)
        .await
        .unwrap()
    };
    let first = lock().await;
    assert!((50.0..=60.0).contains(&first), "{first}");
    // Let the lock lapse (as if its minute had passed) and fail once more.
    sqlx::query("UPDATE identity.login_throttle SET locked_until = now() WHERE key LIKE 'acct:%'")
        .execute(db)
        .await
        .unwrap();
    expect_code(
        app.login("admin@acme.test", "wrong password!").await,
        Code::Unauthenticated,
    );
    let second = lock().await;
    assert!((110.0..=120.0).contains(&second), "{second}");
}

#[tokio::test]
async fn the_edges_signed_client_address_is_the_source_and_nothing_else_is() {
    let secret = "identity-test-forwarding-secret-0123456789";
    let app = TestApp::spawn_with(|c| {
        c.forwarding_key = ForwardingKey::new(secret);
        c.throttle.max_failures_per_source = 2;
        c.throttle.max_failures_per_account = 100;
    })
    .await;
    app.create_tenant("acme").await;
    let edge = ForwardingKey::new(secret).unwrap();
    let from = |addr: &str, key: &ForwardingKey, email: &str, password: &str| {
        let mut req = login_request(email, password);
        let signed = key.sign(LOGIN, addr.parse().unwrap(), now_secs());
        req.metadata_mut()
            .insert(CLIENT_ADDR, signed.to_str().unwrap().parse().unwrap());
        req
    };
    for i in 0..2 {
        let req = from(
            "203.0.113.7",
            &edge,
            &format!("guess{i}@acme.test"),
            "nope!",
        );
        expect_code(login_on(&app.channel, req).await, Code::Unauthenticated);
    }
    let req = from("203.0.113.7", &edge, "admin@acme.test", PASSWORD);
    expect_code(login_on(&app.channel, req).await, Code::ResourceExhausted);
    // The edge's other clients, and the connection the edge calls from, are unaffected.
    let req = from("198.51.100.1", &edge, "admin@acme.test", PASSWORD);
    login_on(&app.channel, req)
        .await
        .expect("another client of the edge logs in");
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("the peer itself is not locked");
    // A tag made with another secret counts against the peer, not the address it names.
    let forger = ForwardingKey::new(&"f".repeat(40)).unwrap();
    for i in 0..2 {
        let req = from(
            "192.0.2.1",
            &forger,
            &format!("forged{i}@acme.test"),
            "nope!",
        );
        expect_code(login_on(&app.channel, req).await, Code::Unauthenticated);
    }
    expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn with_every_hashing_slot_taken_a_login_is_refused_at_once_and_served_after() {
    let app = TestApp::spawn_with(|c| {
        c.hashing.max_concurrent = 1;
        c.hashing.max_wait = Duration::from_millis(50);
    })
    .await;
    app.create_tenant("acme").await;
    // Hold the only slot with work that ends when the test says so.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (started, has_started) = tokio::sync::oneshot::channel();
    let hasher = app.app.state().hasher.clone();
    let held = tokio::spawn(async move {
        hasher
            .run(move || {
                let _ = started.send(());
                let _ = released.recv();
            })
            .await
    });
    has_started.await.unwrap();
    let status = expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "HASHING_BUSY");
    // Busy is not a failed login: nothing was counted against the account.
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.login_throttle")
        .fetch_one(app.app.state().db.pool())
        .await
        .unwrap();
    assert_eq!(counted, 0);
    drop(release);
    held.await.unwrap().unwrap();
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("a free slot serves the login");
}

#[tokio::test]
async fn expired_and_long_revoked_refresh_tokens_are_pruned_and_live_ones_kept() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let expired = app.login("admin@acme.test", PASSWORD).await.unwrap();
    let revoked = app.login("admin@acme.test", PASSWORD).await.unwrap();
    let live = app.login("admin@acme.test", PASSWORD).await.unwrap();
    app.auth()
        .logout(pb::LogoutRequest {
            refresh_token: revoked.refresh_token.clone(),
        })
        .await
        .unwrap();
    // Age the first login's token (stored as its SHA-256) past its expiry, as a month would (as the owner,
    // which may change any tenant's rows once row-level security is lifted).
    let admin = sqlx::PgPool::connect(&app.db.admin_url).await.unwrap();
    sqlx::query(
        "UPDATE identity.refresh_tokens SET expires_at = now() - interval '1 hour',
                issued_at = now() - interval '31 days'
         WHERE token_hash = $1",
    )
    .bind(<sha2::Sha256 as sha2::Digest>::digest(expired.refresh_token.as_bytes()).to_vec())
    .execute(&admin)
    .await
    .unwrap();
    let owner = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM identity.refresh_tokens")
            .fetch_one(&admin)
            .await
            .unwrap()
    };
    // The platform operator's, create_tenant's login's and the three logins' tokens.
    let before = count().await;
    assert_eq!(before, 5);
    // Kept for a day, nothing is old enough yet.
    let pruned = fusion_identity::auth::tokens::prune_dead(&owner, Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 0);
    let pruned = fusion_identity::auth::tokens::prune_dead(&owner, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(pruned, 2, "the expired and the revoked token go");
    assert_eq!(count().await, before - 2);
    for gone in [&expired, &revoked] {
        expect_code(
            app.auth()
                .refresh(pb::RefreshRequest {
                    refresh_token: gone.refresh_token.clone(),
                })
                .await,
            Code::Unauthenticated,
        );
    }
    app.auth()
        .refresh(pb::RefreshRequest {
            refresh_token: live.refresh_token.clone(),
        })
        .await
        .expect("a live refresh token is untouched");
}
