//! Overload and slow work (issue 12, "overload and slow clients" and "faults"): a full
//! service sheds calls at once, a call past its deadline stops its SQL, and an exhausted
//! pool answers within its acquire timeout. Each test blocks real calls on a row lock
//! it holds through an administrator connection, so the calls hold what a slow query
//! would hold (a permit, a pooled connection) for as long as the test wants.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use fusion_property::{MIGRATOR, PropertyConfig, SCHEMA};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::developer_service_client::DeveloperServiceClient;
use fusion_testkit::{TestDatabase, TestKeys, connect_channel, reason};

use crate::helpers::{TestApp, User, WRITER, test_config, user};

/// A generous bound for what must happen "at once" or "within the timeout": a hang
/// fails the test instead of stalling the run.
const NO_HANG: Duration = Duration::from_secs(10);

struct Blocked {
    db: TestDatabase,
    channel: Channel,
    acme: User,
    developer: pb::Developer,
    /// An open transaction holding the developer's row lock.
    locker: PgConnection,
}

/// Property with `tune` applied to its config, one developer, and that developer's row
/// locked by an open transaction of the test.
async fn blocked(tune: impl FnOnce(&mut PropertyConfig)) -> Blocked {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let keys = TestKeys::new();
    let mut config = test_config(&db);
    tune(&mut config);
    let app = TestApp::replica_with(&keys, config).await;
    let channel = connect_channel(app.grpc_addr()).await;
    std::mem::forget(app); // serves until the test process ends
    let acme = user(&keys, 1, 11, WRITER);
    let developer = DeveloperServiceClient::new(channel.clone())
        .create_developer(acme.req(pb::CreateDeveloperRequest {
            developer: Some(pb::Developer {
                name: "Slow Developer".into(),
                slug: "slow".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("developer created")
        .into_inner();
    let mut locker = PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT 1 FROM property.developers WHERE id = $1 FOR UPDATE")
        .bind(developer.id)
        .execute(&mut locker)
        .await
        .unwrap();
    Blocked {
        db,
        channel,
        acme,
        developer,
        locker,
    }
}

impl Blocked {
    fn developers(&self) -> DeveloperServiceClient<Channel> {
        DeveloperServiceClient::new(self.channel.clone())
    }

    /// Starts an UpdateDeveloper that waits on the locked row (with `timeout`, if any).
    fn start_update(
        &self,
        name: &str,
        timeout: Option<Duration>,
    ) -> tokio::task::JoinHandle<Result<pb::Developer, tonic::Status>> {
        let mut developer = self.developer.clone();
        developer.name = name.to_owned();
        developer.etag = String::new();
        let mut req = self.acme.req(pb::UpdateDeveloperRequest {
            developer: Some(developer),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
        });
        if let Some(timeout) = timeout {
            req.set_timeout(timeout);
        }
        let mut client = self.developers();
        tokio::spawn(async move {
            client
                .update_developer(req)
                .await
                .map(tonic::Response::into_inner)
        })
    }

    /// Backends of this test's database waiting on a lock.
    async fn waiting_on_locks(&self) -> i64 {
        let mut admin = PgConnection::connect(&self.db.admin_url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap()
    }

    /// Waits (bounded) until exactly `n` backends wait on the lock.
    async fn until_waiting(&self, n: i64) {
        let deadline = tokio::time::Instant::now() + NO_HANG;
        loop {
            let waiting = self.waiting_on_locks().await;
            if waiting == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{waiting} backends wait on the lock, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn release(mut self) -> TestDatabase {
        sqlx::query("ROLLBACK")
            .execute(&mut self.locker)
            .await
            .unwrap();
        self.db
    }
}

#[tokio::test]
async fn a_full_service_sheds_calls_at_once_and_still_answers_health_checks() {
    let blocked = blocked(|c| c.service.max_in_flight = 2).await;
    let first = blocked.start_update("First", None);
    let second = blocked.start_update("Second", None);
    blocked.until_waiting(2).await;

    let shed = tokio::time::timeout(
        NO_HANG,
        blocked
            .developers()
            .get_developer(blocked.acme.req(pb::GetDeveloperRequest {
                id: blocked.developer.id,
            })),
    )
    .await
    .expect("a full service answers at once instead of queueing")
    .expect_err("a third call is shed");
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert_eq!(reason(&shed), "OVERLOADED");

    let health = HealthClient::new(blocked.channel.clone())
        .check(HealthCheckRequest {
            service: "fusion.property.v1.DeveloperService".into(),
        })
        .await
        .expect("health checks are never shed")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let channel = blocked.channel.clone();
    let acme = blocked.acme.clone();
    let id = blocked.developer.id;
    blocked.release().await;
    first.await.unwrap().expect("the first call completes");
    second.await.unwrap().expect("the second call completes");
    let after = DeveloperServiceClient::new(channel)
        .get_developer(acme.req(pb::GetDeveloperRequest { id }))
        .await
        .expect("calls are served again once the others finished");
    assert!(["First", "Second"].contains(&after.get_ref().name.as_str()));
}

#[tokio::test]
async fn a_call_past_its_deadline_stops_its_statements_in_postgres() {
    let blocked = blocked(|_| {}).await;
    let update = blocked.start_update("Late", Some(Duration::from_millis(400)));
    let status = tokio::time::timeout(NO_HANG, update)
        .await
        .expect("the call ends at its deadline")
        .unwrap()
        .expect_err("the row stays locked past the deadline");
    // DEADLINE_EXCEEDED, whether the client's timer or the server's cancelled statement
    // answered first.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    // The lock is still held: without the deadline reaching PostgreSQL its statement
    // would go on waiting for it (and hold the connection) until the lock is released.
    blocked.until_waiting(0).await;
    let db = blocked.release().await;
    let mut admin = PgConnection::connect(&db.admin_url).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM property.developers")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(name, "Slow Developer", "the timed-out update wrote nothing");
}

#[tokio::test]
async fn an_exhausted_pool_answers_unavailable_within_its_acquire_timeout() {
    let blocked = blocked(|c| {
        c.service.db_max_connections = 1;
        c.service.db_acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let holder = blocked.start_update("Holder", None);
    blocked.until_waiting(1).await;

    let refused = tokio::time::timeout(
        NO_HANG,
        blocked
            .developers()
            .get_developer(blocked.acme.req(pb::GetDeveloperRequest {
                id: blocked.developer.id,
            })),
    )
    .await
    .expect("no hang: the pool's acquire timeout bounds the wait")
    .expect_err("no connection is free");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        !refused.message().contains("pool") && !refused.message().contains("sqlx"),
        "no internals in the message: {}",
        refused.message()
    );

    blocked.release().await;
    holder.await.unwrap().expect("the holder completes");
}
