//! Load generator: an authenticated unary call (`UserService/GetUser`) straight to
//! identity and through the edge, at several concurrency levels, in one run.
//!
//! `cargo run --release -p fusion-e2e --bin fusion-bench [seconds-per-cell]`
//!
//! Everything (PostgreSQL aside) runs in this process, so the load generator shares the
//! machine with what it measures: compare the two columns of one run, not absolute
//! numbers across machines.

mod stats;

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use fusion_e2e::{Stack, with_token};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use stats::{Cell, ms};

async fn run(
    channel: Channel,
    token: String,
    tenant: Option<i64>,
    user: i64,
    streams: usize,
    secs: u64,
) -> Cell {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let mut client = UserServiceClient::new(channel.clone());
            let token = token.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let mut req = with_token(&token, pb::GetUserRequest { id: user });
                    if let Some(tenant) = tenant {
                        req.metadata_mut()
                            .insert("x-tenant-id", tenant.to_string().parse().expect("digits"));
                    }
                    let started = Instant::now();
                    client
                        .get_user(req)
                        .await
                        .expect("GetUser succeeds under load");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    Cell::over(all, Duration::from_secs(secs))
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let stack = Stack::spawn(|c| {
        c.rate_per_second = 1e9;
        c.rate_burst = 1e9;
        c.max_concurrency = 10_000;
    })
    .await;
    let login = stack.login("admin@acme.test").await.expect("login");
    let identity = stack.identity.as_ref().expect("identity runs").grpc_addr();
    let direct = fusion_testkit::connect_channel(identity).await;
    let edge = stack.channel.clone();
    // Warm both paths (connections, key cache, statement cache).
    run(
        direct.clone(),
        login.token.clone(),
        Some(login.tenant_id),
        login.user_id,
        8,
        1,
    )
    .await;
    run(edge.clone(), login.token.clone(), None, login.user_id, 8, 1).await;

    println!(
        "| streams | direct req/s | direct p50 ms | direct p99 ms | edge req/s | edge p50 ms | edge p99 ms | edge/direct throughput | added p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for streams in [1usize, 16, 64] {
        let d = run(
            direct.clone(),
            login.token.clone(),
            Some(login.tenant_id),
            login.user_id,
            streams,
            secs,
        )
        .await;
        let e = run(
            edge.clone(),
            login.token.clone(),
            None,
            login.user_id,
            streams,
            secs,
        )
        .await;
        println!(
            "| {streams} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0}% | {} |",
            d.rps,
            ms(d.p50),
            ms(d.p99),
            e.rps,
            ms(e.p50),
            ms(e.p99),
            100.0 * e.rps / d.rps,
            ms(e.p99.saturating_sub(d.p99)),
        );
    }
}
