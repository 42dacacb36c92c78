//! AI conversations: how long SendMessage takes, through the edge, to stream the first
//! token of a reply, beside how long the provider itself takes to its first token, at
//! 16 concurrent streams; and ai-marketing's memory while it holds 1,000 open streams.
//!
//! ```text
//! cargo build --release --bin fusion-aimarketing
//! cargo run --release -p fusion-e2e --bin fusion-bench-ai [seconds-per-cell]
//! ```
//!
//! The provider is the test kit's fake (`fusion_testkit::openai`), scripted to think
//! [`THINKING`] before its first byte like a model, then to stream eight deltas. The
//! first cell calls it directly with ai-marketing's own client; the second calls
//! SendMessage through the edge, so the difference is what ai-marketing and the edge
//! add before the first token: the edge hop, token checks at both, the conversation,
//! settings and history read, the user's message stored, the model input built.
//!
//! ai-marketing runs as its own process (the release `fusion-aimarketing` binary beside
//! this one) so its memory can be read from `/proc`, and the edge routes ai-marketing's
//! package to it; identity, property, crm, finance, the edge and the fake run in this
//! process. For the memory cell, 1,000 SendMessage
//! calls are opened straight to ai-marketing over eight connections (each carries at
//! most 256 streams), with `AIMARKETING_MAX_IN_FLIGHT` raised to 1,100 (an open stream
//! is a call in flight for its whole life; the default 256 sheds the rest with
//! OVERLOADED), against a fake that then goes quiet, each is read up to its first
//! response, and the streams are held while the memory is sampled; then they are all
//! dropped, and the bench waits for the provider to see every request stop and for the
//! 1,000 partial replies to be stored as cancelled.

mod stats;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tonic::transport::{Channel, Endpoint};

use fusion_aimarketing::provider::{
    ChatClient, ChatEvent, ChatMessage, ChatRequest, Provider, Role, Timeouts,
};
use fusion_e2e::{Login, Stack, with_token};
use fusion_edge::Route;
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::conversation_service_client::ConversationServiceClient;
use fusion_testkit::openai::{Ending, FakeOpenAi, FakeOpenAiOptions, Reply};
use stats::{Cell, ms};

/// How long the fake provider waits before its first byte.
const THINKING: Duration = Duration::from_millis(20);

/// Concurrent streams of the latency cells.
const STREAMS: usize = 16;

/// Streams held open for the memory cell, and the connections they share.
const OPEN_STREAMS: usize = 1_000;
const CONNECTIONS: usize = 8;

const MODEL: &str = "bench-model";

fn quick_reply() -> Reply {
    Reply::deltas([
        "Dear", " Ann,", " lot", " 12", " is", " still", " yours", ".",
    ])
    .first_byte_after(THINKING)
    .between_chunks(Duration::from_millis(2))
}

/// The release `fusion-aimarketing` binary beside this one.
fn aimarketing_binary() -> PathBuf {
    let path = std::env::current_exe()
        .expect("own path")
        .with_file_name("fusion-aimarketing");
    assert!(
        path.exists(),
        "build it first: cargo build --release --bin fusion-aimarketing"
    );
    path
}

/// Resident memory of `pid` in KiB: (current, peak).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Time to the first delta, calling the fake directly, from `STREAMS` tasks for `secs`.
async fn direct_cell(fake: &FakeOpenAi, secs: u64) -> Cell {
    let client = ChatClient::new(Timeouts::default()).expect("a client");
    let provider = Provider::new(&fake.base_url(), fake.api_key()).expect("the fake's URL");
    let request = ChatRequest {
        model: MODEL.into(),
        messages: vec![ChatMessage {
            role: Role::User,
            content: "Write to Ann about lot 12.".into(),
        }],
        max_tokens: Some(256),
        temperature: None,
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks = (0..STREAMS).map(|_| {
        let (client, provider, request) = (client.clone(), provider.clone(), request.clone());
        async move {
            let mut firsts = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut stream = client
                    .stream(&provider, &request)
                    .await
                    .expect("the fake answers");
                let mut first = None;
                while let Some(event) = stream.next().await {
                    if let (None, Ok(ChatEvent::Delta(_))) = (first, &event) {
                        first = Some(started.elapsed());
                    }
                }
                firsts.push(first.expect("a delta"));
            }
            firsts
        }
    });
    let all: Vec<Duration> = join_all(tasks).await.into_iter().flatten().collect();
    Cell::over(all, Duration::from_secs(secs))
}

/// Time to the first delta of SendMessage through the edge, one conversation per task.
async fn edge_cell(channel: &Channel, caller: &Login, conversations: &[i64], secs: u64) -> Cell {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks = conversations.iter().map(|&conversation_id| {
        let mut client = ConversationServiceClient::new(channel.clone());
        let token = caller.token.clone();
        async move {
            let mut firsts = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut stream = client
                    .send_message(with_token(
                        &token,
                        pb::SendMessageRequest {
                            conversation_id,
                            content: "Write to Ann about lot 12.".into(),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("SendMessage starts")
                    .into_inner();
                let mut first = None;
                while let Some(response) = stream.message().await.expect("the reply streams") {
                    if first.is_none() && !response.delta.is_empty() {
                        first = Some(started.elapsed());
                    }
                }
                firsts.push(first.expect("a delta"));
            }
            firsts
        }
    });
    let all: Vec<Duration> = join_all(tasks).await.into_iter().flatten().collect();
    Cell::over(all, Duration::from_secs(secs))
}

async fn create_conversations(channel: &Channel, caller: &Login, n: usize) -> Vec<i64> {
    let mut client = ConversationServiceClient::new(channel.clone());
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let conversation = client
            .create_conversation(with_token(
                &caller.token,
                pb::CreateConversationRequest {
                    conversation: Some(pb::Conversation {
                        title: format!("Bench {i}"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("conversation created")
            .into_inner();
        ids.push(conversation.id);
    }
    ids
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let binary = aimarketing_binary();
    let fake = FakeOpenAi::start(FakeOpenAiOptions {
        default_reply: quick_reply(),
        ..FakeOpenAiOptions::default()
    })
    .await;
    let (grpc_port, admin_port) = (fusion_testkit::free_port(), fusion_testkit::free_port());
    let aim_addr = format!("127.0.0.1:{grpc_port}");
    let route = Route {
        package: "fusion.aimarketing.v1".into(),
        upstream: format!("http://{aim_addr}"),
    };
    let stack = Stack::spawn(move |c| {
        c.rate_per_second = 1e9;
        c.rate_burst = 1e9;
        c.max_concurrency = 10_000;
        // The stack's own ai-marketing (in this process) gives way to the one measured.
        c.routes.retain(|r| r.package != route.package);
        c.routes.push(route);
    })
    .await;

    // ai-marketing as its own process, migrating its schema into the stack's database.
    let mut aimarketing: Child = Command::new(&binary)
        .arg("serve")
        .env(
            "AIMARKETING_DATABASE_URL",
            stack.db.app_url(fusion_aimarketing::SCHEMA),
        )
        .env("AIMARKETING_MIGRATION_DATABASE_URL", &stack.db.owner_url)
        .env(
            "AIMARKETING_JOBS_DATABASE_URL",
            stack.db.jobs_url(fusion_aimarketing::SCHEMA),
        )
        .env("AIMARKETING_GRPC_ADDR", &aim_addr)
        .env("AIMARKETING_ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env(
            "AIMARKETING_IDENTITY_URL",
            format!("http://{}", stack.identity_addr),
        )
        .env(
            "AIMARKETING_CRM_URL",
            format!("http://{}", stack.crm.grpc_addr()),
        )
        .env(
            "AIMARKETING_PROPERTY_URL",
            format!("http://{}", stack.property.grpc_addr()),
        )
        .env("AIMARKETING_DB_MAX_CONNECTIONS", "16")
        // An open stream holds one of the calls in flight for its whole life (256 by
        // default, more shed with OVERLOADED): room for the memory cell's 1,000.
        .env("AIMARKETING_MAX_IN_FLIGHT", "1100")
        .env("AI_OPENAI_BASE_URL", fake.base_url())
        .env("AI_OPENAI_API_KEY", fake.api_key())
        .env("AI_DEFAULT_MODEL", MODEL)
        .env("AI_IDLE_TIMEOUT_SECONDS", "300")
        .env("FUSION_PAGE_TOKEN_SECRET", "bench-page-token-secret")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATION_DATABASE_URL")
        .env_remove("SERVICE_CLIENT_SECRET")
        .stdout(Stdio::null())
        .spawn()
        .expect("fusion-aimarketing starts");
    let pid = aimarketing.id();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&aim_addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ai-marketing did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (idle_rss, _) = memory_kib(pid);

    let acme = stack.login("admin@acme.test").await.expect("login");
    let edge = stack.channel.clone();
    // The edge ejected ai-marketing while it was not up yet; its probe readmits it.
    fusion_testkit::until(
        Duration::from_secs(30),
        "ai-marketing through the edge",
        || async {
            ConversationServiceClient::new(edge.clone())
                .list_conversations(with_token(
                    &acme.token,
                    pb::ListConversationsRequest::default(),
                ))
                .await
                .ok()
        },
    )
    .await;
    let conversations = create_conversations(&edge, &acme, STREAMS).await;
    // Warm both paths (connections, key caches, statement caches).
    direct_cell(&fake, 1).await;
    edge_cell(&edge, &acme, &conversations, 1).await;

    let direct = direct_cell(&fake, secs).await;
    let through = edge_cell(&edge, &acme, &conversations, secs).await;
    let (after_cells, peak_cells) = memory_kib(pid);
    println!("| first token | streams | calls/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| the fake provider, called directly | {STREAMS} | {:.0} | {} | {} |",
        direct.rps,
        ms(direct.p50),
        ms(direct.p99)
    );
    println!(
        "| SendMessage through the edge | {STREAMS} | {:.0} | {} | {} |",
        through.rps,
        ms(through.p50),
        ms(through.p99)
    );
    println!(
        "| added by the edge and ai-marketing | | | {} | {} |",
        ms(through.p50.saturating_sub(direct.p50)),
        ms(through.p99.saturating_sub(direct.p99))
    );

    // 1,000 open streams, straight to ai-marketing over eight connections.
    fake.set_default_reply(
        Reply::deltas(["Dear", " Ann"]).between_chunks(Duration::from_secs(120)),
    );
    let before_open = fake.requests().len();
    let open_conversations = create_conversations(&edge, &acme, OPEN_STREAMS / 10).await;
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(
            Endpoint::from_shared(format!("http://{aim_addr}"))
                .expect("an address")
                .connect()
                .await
                .expect("ai-marketing answers"),
        );
    }
    let opening = Instant::now();
    let opened = join_all((0..OPEN_STREAMS).map(|i| {
        let mut client = ConversationServiceClient::new(channels[i % CONNECTIONS].clone());
        let mut request = with_token(
            &acme.token,
            pb::SendMessageRequest {
                conversation_id: open_conversations[i % open_conversations.len()],
                content: format!("Hold the line {i}"),
                request_id: String::new(),
            },
        );
        request.metadata_mut().insert(
            "x-tenant-id",
            acme.tenant_id.to_string().parse().expect("digits"),
        );
        async move {
            let mut stream = client
                .send_message(request)
                .await
                .expect("SendMessage starts")
                .into_inner();
            let first = stream.message().await.expect("a first response");
            assert!(first.is_some_and(|r| r.user_message.is_some()));
            stream
        }
    }))
    .await;
    let opened_in = opening.elapsed();
    // Every provider request is under way (headers and its first chunk received).
    fusion_testkit::until(
        Duration::from_secs(60),
        "every provider request",
        || async { (fake.requests().len() - before_open >= OPEN_STREAMS).then_some(()) },
    )
    .await;
    let mut held_peak = 0;
    for _ in 0..20 {
        held_peak = held_peak.max(memory_kib(pid).0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (held, _) = memory_kib(pid);

    let dropping = Instant::now();
    drop(opened);
    fusion_testkit::until(
        Duration::from_secs(60),
        "the provider to see every client go",
        || async {
            let requests = fake.requests();
            requests[before_open..]
                .iter()
                .all(|r| r.ending == Ending::ClientHungUp)
                .then_some(())
        },
    )
    .await;
    let stopped_in = dropping.elapsed();
    let admin = sqlx::PgPool::connect(&stack.db.admin_url)
        .await
        .expect("the administrator connects");
    fusion_testkit::until(
        Duration::from_secs(60),
        "the cancelled replies stored",
        || async {
            let cancelled: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM ai_marketing.ai_messages WHERE finish_reason = 'cancelled'",
            )
            .fetch_one(&admin)
            .await
            .expect("count");
            (cancelled >= OPEN_STREAMS as i64).then_some(())
        },
    )
    .await;
    let stored_in = dropping.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after_drop, _) = memory_kib(pid);

    println!();
    println!("| ai-marketing process memory | MiB |");
    println!("|---|---|");
    println!("| resident after start | {} |", mib(idle_rss));
    println!(
        "| resident after the latency cells | {} |",
        mib(after_cells)
    );
    println!(
        "| peak resident (VmHWM) after the latency cells | {} |",
        mib(peak_cells)
    );
    println!(
        "| resident holding {OPEN_STREAMS} open streams (peak of 20 samples) | {} |",
        mib(held_peak.max(held))
    );
    println!("| resident after they were dropped | {} |", mib(after_drop));
    println!();
    println!(
        "{OPEN_STREAMS} streams opened in {:.2} s; after they were dropped the provider saw every request stop within {:.2} s, and the {OPEN_STREAMS} partial replies were stored as cancelled within {:.2} s",
        opened_in.as_secs_f64(),
        stopped_in.as_secs_f64(),
        stored_in.as_secs_f64()
    );
    aimarketing.kill().expect("ai-marketing stops");
    aimarketing.wait().expect("ai-marketing reaped");
}
