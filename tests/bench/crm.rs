//! CRM under load, in one run: `LeadService/GetLead` and a filtered `ListLeads` (50 rows)
//! through the edge on 1,000,000 leads across 1,000 tenants at 16 and 64 streams,
//! beside `pgbench` running the equivalent SQL statement at the same concurrency;
//! `ImportLeads` rows/s beside a raw `COPY` of the same rows; and the crm process's
//! memory under that load.
//!
//! ```text
//! cargo build --release --bin fusion-crm
//! cargo run --release -p fusion-e2e --bin fusion-bench-crm [seconds-per-cell]
//! ```
//!
//! Identity, the edge and the load generator run in this process; crm runs as its own
//! process (the release `fusion-crm` binary beside this one) so its memory can be read
//! from `/proc`. PostgreSQL, crm, the edge and the load generator share the machine:
//! compare the columns of one run, not machines.

mod stats;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use fusion_e2e::with_token;
use fusion_edge::{Edge, EdgeConfig, Route};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::import_leads_request::Payload;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::identity::v1::LoginRequest;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_service::ServiceConfig;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};
use stats::{Cell, ms};

const TENANTS: i64 = 1000;
const LEADS_PER_TENANT: i64 = 1000;
/// Tenants that exist in identity and are called with; the rest are data only.
const CALLERS: i64 = 8;
const IMPORT_ROWS: usize = 100_000;
const PASSWORD: &str = "bench password 1";
const FILTER: &str = r#"status = "hot" AND score >= 50"#;
/// The columns a lead read selects (as the service's select list does).
const COLUMNS: &str = "id, tenant_id, assigned_to, first_name, last_name, email, phone, phone_e164, \
    address, suburb, state, postcode, country, source, source_detail, status, stage, score, tags, \
    custom_fields, notes, last_contacted_at, converted_at, converted_contact_id, converted_deal_id, \
    merged_into_id, version, created_at, updated_at, deleted_at";

/// Loads one tenant's pipeline and leads as the application role (ids run in tenant
/// order, so tenant t's leads are (t-1)*1000+1 ..= t*1000).
async fn load_tenant(db: &fusion_db::Db, tenant: i64) {
    let mut tx = db.begin(tenant).await.expect("tenant transaction");
    sqlx::query(
        "INSERT INTO crm.lead_statuses (tenant_id, key, label, position)
         VALUES ($1, 'new', 'New', 0), ($1, 'nurture', 'Nurture', 10), ($1, 'hot', 'Hot', 20)",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .expect("statuses");
    sqlx::query(
        "INSERT INTO crm.deal_stages (tenant_id, key, label, position, outcome)
         VALUES ($1, 'property_enquiry', 'Property enquiry', 0, 'open')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .expect("stages");
    sqlx::query(
        "INSERT INTO crm.leads (tenant_id, first_name, last_name, email, phone, phone_e164,
                                suburb, state, source, status, score, tags, created_at)
         SELECT $1, 'Buyer', 'Lead ' || n, 'lead' || n || '@t' || $1 || '.example',
                '04' || lpad((n * 7919 % 100000000)::text, 8, '0'),
                '+614' || lpad((n * 7919 % 100000000)::text, 8, '0'),
                'Yeronga', 'QLD', 'website',
                CASE n % 5 WHEN 0 THEN 'hot' WHEN 1 THEN 'nurture' ELSE 'new' END,
                n % 101,
                CASE WHEN n % 7 = 0 THEN '[\"vip\"]'::jsonb ELSE '[]'::jsonb END,
                now() - make_interval(mins => n::int)
           FROM generate_series(1, $2) n",
    )
    .bind(tenant)
    .bind(LEADS_PER_TENANT)
    .execute(&mut *tx)
    .await
    .expect("leads");
    tx.commit().await.expect("commit");
}

/// The release `fusion-crm` binary beside this one.
fn crm_binary() -> PathBuf {
    let path = std::env::current_exe()
        .expect("own path")
        .with_file_name("fusion-crm");
    assert!(
        path.exists(),
        "build it first: cargo build --release --bin fusion-crm"
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

#[derive(Clone, Copy)]
enum Call {
    Get,
    List,
}

/// Runs `call` from `streams` concurrent clients for `secs`, each request as a random
/// calling tenant, while sampling crm's memory.
async fn run(
    edge: &Channel,
    tokens: &[(i64, String)],
    call: Call,
    streams: usize,
    secs: u64,
    peak_rss: &Arc<AtomicU64>,
    crm_pid: u32,
) -> Cell {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let sampler = {
        let peak = peak_rss.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                peak.fetch_max(memory_kib(crm_pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..streams)
        .map(|s| {
            let mut client = LeadServiceClient::new(edge.clone());
            let tokens = tokens.to_vec();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = s;
                while Instant::now() < deadline {
                    i += 1;
                    let (tenant, token) = &tokens[i % tokens.len()];
                    let started = Instant::now();
                    match call {
                        Call::Get => {
                            let id = (tenant - 1) * LEADS_PER_TENANT
                                + 1
                                + (i as i64 * 7919) % LEADS_PER_TENANT;
                            client
                                .get_lead(with_token(token, pb::GetLeadRequest { id }))
                                .await
                                .expect("GetLead succeeds under load");
                        }
                        Call::List => {
                            let page = client
                                .list_leads(with_token(
                                    token,
                                    pb::ListLeadsRequest {
                                        filter: FILTER.into(),
                                        page_size: 50,
                                        ..Default::default()
                                    },
                                ))
                                .await
                                .expect("ListLeads succeeds under load")
                                .into_inner();
                            assert_eq!(page.leads.len(), 50);
                        }
                    }
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
    sampler.await.ok();
    Cell::over(all, Duration::from_secs(secs))
}

/// Where pgbench connects: host, port, administrator.
#[derive(Clone)]
struct Admin {
    host: String,
    port: u16,
    user: String,
}

/// Runs pgbench with `script` at `clients` for `secs` as the administrator (who is not
/// subject to row-level security, so the statement names the tenant itself); returns
/// transactions per second and the average latency in ms.
fn pgbench(admin: &Admin, database: &str, script: &str, clients: usize, secs: u64) -> (f64, f64) {
    let path = std::env::temp_dir().join(format!("fusion-bench-crm-{}.sql", std::process::id()));
    std::fs::write(&path, script).expect("script written");
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &secs.to_string(),
            "-f",
        ])
        .arg(&path)
        .args(["-h", &admin.host, "-p", &admin.port.to_string()])
        .args(["-U", &admin.user, database])
        .output()
        .expect("pgbench runs (it ships with PostgreSQL)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number_after = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l[prefix.len()..].split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (number_after("tps = "), number_after("latency average = "))
}

fn import_rows() -> Vec<pb::Lead> {
    (0..IMPORT_ROWS)
        .map(|n| pb::Lead {
            first_name: "Imported".into(),
            last_name: format!("Row {n}"),
            email: format!("import{n}@example.com"),
            phone: format!("04{:08}", n * 7919 % 100_000_000),
            suburb: "Yeronga".into(),
            state: "QLD".into(),
            source: "expo".into(),
            status: "new".into(),
            score: Some((n % 101) as i32),
            ..Default::default()
        })
        .collect()
}

/// The same rows as CSV for COPY, in the columns the import writes.
fn import_csv(tenant: i64) -> String {
    let mut csv = String::new();
    for n in 0..IMPORT_ROWS {
        let digits = format!("{:08}", n * 7919 % 100_000_000);
        csv.push_str(&format!(
            "{tenant},Imported,Row {n},import{n}@example.com,04{digits},+614{digits},Yeronga,QLD,expo,new,{},[],\"{{\"\"fields\"\": []}}\"\n",
            n % 101
        ));
    }
    csv
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let crm_bin = crm_binary();
    let db = TestDatabase::create(&[
        (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
        (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
    ])
    .await;
    let identity = fusion_identity::Application::build(
        fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
            "identity",
            db.app_url("identity"),
        )),
        bind_ephemeral().await,
        bind_ephemeral().await,
    )
    .await
    .expect("identity starts");
    for t in 1..=CALLERS {
        let id = fusion_identity::bootstrap::ensure_tenant(
            &identity.state().db,
            &format!("bench{t}"),
            &format!("Bench {t}"),
            &format!("admin@bench{t}.test"),
            PASSWORD,
        )
        .await
        .expect("tenant");
        assert_eq!(id, t, "calling tenants are the first ids");
    }

    let loading = Instant::now();
    let app_db = db.app_db(fusion_crm::SCHEMA).await;
    for tenant in 1..=TENANTS {
        load_tenant(&app_db, tenant).await;
    }
    let admin_options = fusion_testkit::server().await.admin_options();
    let admin = Admin {
        host: admin_options.get_host().to_owned(),
        port: admin_options.get_port(),
        user: admin_options.get_username().to_owned(),
    };
    let on_db = sqlx::PgPool::connect_with(admin_options.database(&db.name))
        .await
        .expect("administrator on the bench database");
    sqlx::query("ANALYZE crm.leads")
        .execute(&on_db)
        .await
        .expect("analyze");
    println!(
        "loaded {} leads across {TENANTS} tenants in {:.1} s",
        TENANTS * LEADS_PER_TENANT,
        loading.elapsed().as_secs_f64()
    );

    // crm as its own process.
    let (grpc_port, admin_port) = (fusion_testkit::free_port(), fusion_testkit::free_port());
    let mut crm: Child = Command::new(&crm_bin)
        .env("CRM_DATABASE_URL", db.app_url(fusion_crm::SCHEMA))
        .env("CRM_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("CRM_ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env(
            "CRM_IDENTITY_URL",
            format!("http://{}", identity.grpc_addr()),
        )
        .env("CRM_PROPERTY_URL", "http://127.0.0.1:9")
        .env("CRM_DB_MAX_CONNECTIONS", "16")
        .env("FUSION_PAGE_TOKEN_SECRET", "bench-page-token-secret")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATION_DATABASE_URL")
        .stdout(Stdio::null())
        .spawn()
        .expect("fusion-crm starts");
    let crm_pid = crm.id();
    let crm_addr = format!("127.0.0.1:{grpc_port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&crm_addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "crm did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (idle_rss, _) = memory_kib(crm_pid);

    let mut config = EdgeConfig::new(vec![
        Route {
            package: "fusion.identity.v1".into(),
            upstream: format!("http://{}", identity.grpc_addr()),
        },
        Route {
            package: "fusion.crm.v1".into(),
            upstream: format!("http://{crm_addr}"),
        },
    ]);
    config.rate_per_second = 1e9;
    config.rate_burst = 1e9;
    config.max_concurrency = 10_000;
    let edge = Edge::build(config, bind_ephemeral().await, bind_ephemeral().await)
        .await
        .expect("edge starts");
    let channel = connect_channel(edge.grpc_addr()).await;
    let mut tokens = Vec::new();
    for t in 1..=CALLERS {
        let login = AuthServiceClient::new(channel.clone())
            .login(LoginRequest {
                email: format!("admin@bench{t}.test"),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner();
        tokens.push((t, login.access_token));
    }
    let peak = Arc::new(AtomicU64::new(0));
    // Warm connections, caches and plans.
    run(&channel, &tokens, Call::Get, 8, 2, &peak, crm_pid).await;
    run(&channel, &tokens, Call::List, 8, 2, &peak, crm_pid).await;

    let get_sql = format!(
        "\\set t random(1, {CALLERS})\n\\set n random(1, {LEADS_PER_TENANT})\n\
         SELECT {COLUMNS} FROM crm.leads WHERE tenant_id = :t AND id = (:t - 1) * {LEADS_PER_TENANT} + :n AND deleted_at IS NULL;\n"
    );
    let list_sql = format!(
        "\\set t random(1, {CALLERS})\n\
         SELECT {COLUMNS} FROM crm.leads WHERE tenant_id = :t AND deleted_at IS NULL AND status = 'hot' AND score >= 50 \
         ORDER BY created_at DESC, id DESC LIMIT 51;\n"
    );
    println!();
    println!(
        "| call | streams | through the edge req/s | p50 ms | p99 ms | pgbench tps | pgbench avg ms | edge / pgbench |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, call, sql) in [
        ("GetLead", Call::Get, &get_sql),
        ("ListLeads (filtered, 50 rows)", Call::List, &list_sql),
    ] {
        for streams in [16usize, 64] {
            let cell = run(&channel, &tokens, call, streams, secs, &peak, crm_pid).await;
            let (tps, avg) = {
                let name = db.name.clone();
                let sql = sql.clone();
                let admin = admin.clone();
                tokio::task::spawn_blocking(move || pgbench(&admin, &name, &sql, streams, secs))
                    .await
                    .expect("pgbench task")
            };
            println!(
                "| {name} | {streams} | {:.0} | {} | {} | {tps:.0} | {avg:.2} | {:.0}% |",
                cell.rps,
                ms(cell.p50),
                ms(cell.p99),
                100.0 * cell.rps / tps
            );
        }
    }
    let (_, peak_under_load) = memory_kib(crm_pid);

    // ImportLeads through the edge beside a raw COPY of the same rows.
    let (tenant, token) = tokens[CALLERS as usize - 1].clone();
    let rows = import_rows();
    let mut messages = vec![pb::ImportLeadsRequest {
        payload: Some(Payload::Options(pb::ImportLeadsOptions::default())),
    }];
    let mut rest = rows.into_iter().peekable();
    while rest.peek().is_some() {
        messages.push(pb::ImportLeadsRequest {
            payload: Some(Payload::Batch(pb::ImportLeadsBatch {
                leads: rest.by_ref().take(1000).collect(),
            })),
        });
    }
    let importing = Instant::now();
    let result = LeadServiceClient::new(channel.clone())
        .import_leads(with_token(&token, futures::stream::iter(messages)))
        .await
        .expect("import succeeds")
        .into_inner();
    let import_secs = importing.elapsed().as_secs_f64();
    assert_eq!(result.created_count as usize, IMPORT_ROWS);
    let (_, peak_after_import) = memory_kib(crm_pid);

    let csv = import_csv(tenant);
    let mut conn = on_db.acquire().await.expect("connection");
    let copying = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY crm.leads (tenant_id, first_name, last_name, email, phone, phone_e164, suburb, \
             state, source, status, score, tags, custom_fields) FROM STDIN (FORMAT csv)",
        )
        .await
        .expect("copy starts");
    copy.send(csv.as_bytes()).await.expect("copy data");
    let copied = copy.finish().await.expect("copy ends");
    let copy_secs = copying.elapsed().as_secs_f64();
    assert_eq!(copied as usize, IMPORT_ROWS);

    println!();
    println!("| load | rows | seconds | rows/s | of raw COPY |");
    println!("|---|---|---|---|---|");
    let import_rate = IMPORT_ROWS as f64 / import_secs;
    let copy_rate = IMPORT_ROWS as f64 / copy_secs;
    println!(
        "| ImportLeads through the edge (batches of 1000) | {IMPORT_ROWS} | {import_secs:.2} | {import_rate:.0} | {:.0}% |",
        100.0 * import_rate / copy_rate
    );
    println!(
        "| raw COPY as the administrator | {IMPORT_ROWS} | {copy_secs:.2} | {copy_rate:.0} | 100% |"
    );
    println!();
    println!("| crm process memory | MiB |");
    println!("|---|---|");
    println!("| resident after start | {:.1} |", idle_rss as f64 / 1024.0);
    println!(
        "| peak resident during the read cells (sampled every 50 ms) | {:.1} |",
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    println!(
        "| peak resident (VmHWM) after the read cells | {:.1} |",
        peak_under_load as f64 / 1024.0
    );
    println!(
        "| peak resident (VmHWM) after the import | {:.1} |",
        peak_after_import as f64 / 1024.0
    );
    crm.kill().ok();
    crm.wait().ok();
}
