//! Faults (issue 12, "faults"): PostgreSQL restarted under a load of creates, and the
//! service process killed (`kill -9`) in the middle of a stream of creates. Callers
//! retry with the same request id, as API.md asks; afterwards every create exists
//! exactly once and no acknowledged write is lost.

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use fusion_property::{MIGRATOR, SCHEMA};
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::developer_service_client::DeveloperServiceClient;
use fusion_service::ServiceConfig;
use fusion_testkit::{RestartablePg, TestDatabase, TestKeys, bind_ephemeral, connect_channel};

use crate::helpers::{TestApp, User, WRITER, test_config, user};

/// Creates one developer, retrying with the same request id until it is acknowledged
/// (as a client should after UNAVAILABLE or a lost connection). Returns its id, and
/// how long each failed attempt took to fail.
async fn create_until_acknowledged(
    channel: Channel,
    who: &User,
    slug: String,
    failures: Arc<Mutex<Vec<(Code, Duration)>>>,
    give_up: Instant,
) -> i64 {
    let request_id = uuid::Uuid::new_v4().to_string();
    loop {
        let started = Instant::now();
        let attempt = DeveloperServiceClient::new(channel.clone())
            .create_developer(who.req(pb::CreateDeveloperRequest {
                developer: Some(pb::Developer {
                    name: format!("Developer {slug}"),
                    slug: slug.clone(),
                    ..Default::default()
                }),
                request_id: request_id.clone(),
            }))
            .await;
        match attempt {
            Ok(created) => return created.into_inner().id,
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        Code::Unavailable | Code::Unknown | Code::Cancelled
                    ),
                    "only retryable failures while the database or process is down: {status:?}"
                );
                failures
                    .lock()
                    .unwrap()
                    .push((status.code(), started.elapsed()));
                assert!(Instant::now() < give_up, "{slug} was never acknowledged");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every developer slug of the tenant, with how many live rows carry it.
async fn slugs(channel: &Channel, who: &User) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = DeveloperServiceClient::new(channel.clone())
            .list_developers(who.req(pb::ListDevelopersRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            }))
            .await
            .expect("list")
            .into_inner();
        for d in page.developers {
            *counts.entry(d.slug).or_insert(0) += 1;
        }
        if page.next_page_token.is_empty() {
            return counts;
        }
        page_token = page.next_page_token;
    }
}

async fn ready(admin: std::net::SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(admin).await else {
        return false;
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = "GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response.starts_with("HTTP/1.1 200")
}

/// Waits until `check` holds, failing with `what` after `within`.
async fn eventually<F: Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    fusion_testkit::until(within, what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn postgres_restarting_under_load_fails_fast_resumes_and_loses_no_committed_write() {
    let pg = RestartablePg::launch().await.expect("a private PostgreSQL");
    let db = pg.server().ensure_database("faults").await.unwrap();
    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let keys = TestKeys::new();
    let mut config = test_config(&db);
    config.service.db_acquire_timeout = Duration::from_secs(1);
    let app = TestApp::replica_with(&keys, config).await;
    let channel = connect_channel(app.grpc_addr()).await;
    let acme = user(&keys, 1, 11, WRITER);

    // Four writers, each creating developers one after another and retrying each with
    // its request id until acknowledged.
    let failures = Arc::new(Mutex::new(Vec::new()));
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, i64, Instant)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let give_up = Instant::now() + Duration::from_secs(60);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (channel, acme, failures, acknowledged, stop) = (
                channel.clone(),
                acme.clone(),
                failures.clone(),
                acknowledged.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let slug = format!("w{w}-{i}");
                    let id = create_until_acknowledged(
                        channel.clone(),
                        &acme,
                        slug.clone(),
                        failures.clone(),
                        give_up,
                    )
                    .await;
                    acknowledged
                        .lock()
                        .unwrap()
                        .push((slug, id, Instant::now()));
                    i += 1;
                }
            })
        })
        .collect();

    let admin = app.admin_addr();
    eventually(Duration::from_secs(10), "the service is ready", || {
        ready(admin)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop().expect("PostgreSQL stops");
    let stopped_with = acknowledged.lock().unwrap().len();
    eventually(
        Duration::from_secs(10),
        "readiness flips while the database is down",
        || async { !ready(admin).await },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    pg.start().expect("PostgreSQL starts again");
    let back = Instant::now();
    eventually(Duration::from_secs(10), "readiness flips back", || {
        ready(admin)
    })
    .await;
    // Each writer gets a few more creates through, then stops.
    eventually(Duration::from_secs(20), "writes resume", || async {
        acknowledged.lock().unwrap().len() >= stopped_with + 20
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    assert!(!failures.is_empty(), "some calls met the database down");
    let slowest = failures.iter().map(|(_, took)| *took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "calls fail fast while the database is down (slowest {slowest:?})"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    let resumed = acknowledged
        .iter()
        .map(|(_, _, at)| *at)
        .filter(|at| *at > back)
        .min()
        .expect("a write after the restart");
    assert!(
        resumed.duration_since(back) < Duration::from_secs(5),
        "service resumes within 5 s of the database's return ({:?})",
        resumed.duration_since(back)
    );
    // Every acknowledged create is there, once; retries made no second row.
    let stored = slugs(&channel, &acme).await;
    for (slug, _, _) in &acknowledged {
        assert_eq!(stored.get(slug), Some(&1), "{slug} is stored exactly once");
    }
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "no row nobody acknowledged"
    );
    app.stop().await.ok();
}

/// The property binary, serving on `grpc` with its admin port on `admin`.
fn spawn_property(db: &TestDatabase, identity: &str, grpc: u16, admin: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fusion-property"))
        .env_clear()
        .env("PROPERTY_DATABASE_URL", db.app_url(SCHEMA))
        .env("PROPERTY_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("PROPERTY_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("PROPERTY_IDENTITY_URL", identity)
        .env(
            "PROPERTY_MEDIA_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-media"),
        )
        .env("FUSION_PAGE_TOKEN_SECRET", "faults-test-page-token-secret")
        // No broker: the outbox keeps the events; this test is about the creates.
        .env("NATS_URL", "nats://127.0.0.1:1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the fusion-property binary starts")
}

#[tokio::test]
async fn a_process_killed_mid_stream_leaves_every_retried_create_exactly_once() {
    // Identity (in process) issues real tokens; property runs as its own process.
    let db = TestDatabase::create(&[
        (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
        (SCHEMA, &MIGRATOR),
    ])
    .await;
    let identity = fusion_identity::Application::build(
        fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
            "identity",
            db.app_url(fusion_identity::SCHEMA),
        )),
        bind_ephemeral().await,
        bind_ephemeral().await,
    )
    .await
    .expect("identity starts");
    let tenant_id = fusion_identity::bootstrap::ensure_tenant(
        &identity.state().db,
        "acme",
        "Acme",
        "admin@acme.test",
        "correct horse battery",
    )
    .await
    .unwrap();
    let login = AuthServiceClient::new(connect_channel(identity.grpc_addr()).await)
        .login(idpb::LoginRequest {
            email: "admin@acme.test".into(),
            password: "correct horse battery".into(),
        })
        .await
        .expect("login")
        .into_inner();
    let acme = User {
        tenant_id,
        user_id: login.user_id,
        token: login.access_token,
    };
    let identity_url = format!("http://{}", identity.grpc_addr());
    let (grpc, admin) = (fusion_testkit::free_port(), fusion_testkit::free_port());
    let mut process = spawn_property(&db, &identity_url, grpc, admin);
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect_lazy();
    eventually(
        Duration::from_secs(30),
        "the property process became ready",
        || ready(([127, 0, 0, 1], admin).into()),
    )
    .await;

    // A stream of a thousand creates from eight callers, each retrying with its request id.
    let failures = Arc::new(Mutex::new(Vec::new()));
    let give_up = Instant::now() + Duration::from_secs(90);
    let creates: Vec<_> = (0..1000)
        .map(|i| {
            let (channel, acme, failures) = (channel.clone(), acme.clone(), failures.clone());
            async move {
                create_until_acknowledged(channel, &acme, format!("d-{i}"), failures, give_up).await
            }
        })
        .collect();
    let stream = tokio::spawn(async move {
        use futures::StreamExt as _;
        futures::stream::iter(creates)
            .buffer_unordered(8)
            .collect::<Vec<i64>>()
            .await
    });

    // Kill the process in the middle of it, then start it again.
    let db_for_count = db.clone();
    eventually(Duration::from_secs(30), "creates are flowing", || {
        let db = db_for_count.clone();
        async move { developers_stored(&db).await >= 40 }
    })
    .await;
    process.kill().expect("kill -9");
    process.wait().unwrap();
    let mut process = spawn_property(&db, &identity_url, grpc, admin);
    let ids = tokio::time::timeout(Duration::from_secs(120), stream)
        .await
        .expect("every create is acknowledged after the restart")
        .unwrap();
    process.kill().ok();
    process.wait().ok();

    assert!(
        !failures.lock().unwrap().is_empty(),
        "some creates met the dead process"
    );
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 1000, "each create acknowledged its own row");
    assert_eq!(
        developers_stored(&db).await,
        1000,
        "every create exists exactly once"
    );
}

/// Developer rows in the database, counted as the administrator.
async fn developers_stored(db: &TestDatabase) -> i64 {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM property.developers")
        .fetch_one(&mut admin)
        .await
        .unwrap()
}
